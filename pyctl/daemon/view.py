"""What the slow path may know of the switch: ``SwitchView`` says what, ``PlanView``
reads it from the plan the fast path runs, so both halves see the same facts.

``PlanView`` answers from the plan's tables and indexes (``Compiler.index``,
``pyctl.compile.plan_index.PlanIndex``) in O(1) or O(answer), never from a scan of
the ports or addresses.

Addresses are the plan's keys in both families: an IPv4 address a host-order
``int``, an IPv6 address an ``ipaddress.IPv6Address``; an answer comes in the
family of the question.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

from fastpath.source_rule import BROADCAST, may_send_from
from pyctl.errors import TapswitchError
from pyctl.compile.plan import address_owner, key_family

__all__ = ["Route", "SwitchView", "PlanView"]


class Route(NamedTuple):
    """Where the fast path sends a destination: out of ``port_id`` to ``next_hop``
    (the destination itself when it is on the port's link), in its family."""
    port_id: int
    next_hop: object


class SwitchView(Protocol):
    """The read-only facts about the switch that the slow path needs.

    Every method answers None for what does not exist (an unknown port, an
    address nobody owns): the slow path then counts a drop."""

    def port_namespace(self, port_id: int) -> int | None:
        """The namespace the port is attached to."""

    def port_scope(self, port_id: int) -> int | None:
        """The scope (L2) of that namespace: itself for an L2, the parent for an L3."""

    def port_mac(self, port_id: int) -> bytes | None:
        """The switch-side MAC of the port: what endpoints see as their gateway."""

    def owner(self, scope: int, ip: int) -> int | None:
        """The namespace owning ``ip`` in ``scope``; the scope itself means the
        address is one of the switch's own."""

    def route(self, scope: int, ip: int) -> Route | None:
        """The fast path's forwarding decision for ``ip`` in ``scope``: owned by
        an L3 -> that namespace's port; else the longest-prefix route."""

    def source_allowed(self, port_id: int, ip: int) -> bool:
        """The source rule (``fastpath.source_rule``): may a frame entering at
        ``port_id`` come from ``ip``?"""

    def icmp_source(self, port_id: int, version: int = 4):
        """The switch's own address of family ``version`` that ICMP errors and ARP
        requests (or neighbour solicitations) sent out of this port come from (None:
        IPv4: ICMP errors are not sent, ARP requests go out as probes from 0.0.0.0;
        IPv6: the port's link-local address is used)."""

    def port_mtu(self, port_id: int) -> int | None:
        """The port's MTU: larger frames to it are punted ``too_big``."""

    def port_is_router(self, port_id: int) -> bool:
        """Whether a router stands behind the port (its router advertisements and
        redirects may reach the scope)."""

    def advertises(self, scope: int) -> bool:
        """Whether L2 ``scope`` sends IPv6 router advertisements."""

    def advertising_scopes(self) -> list:
        """Every L2 that sends IPv6 router advertisements."""

    def scope_ports(self, scope: int) -> list:
        """The ids of every port of L2 ``scope`` (its own and its L3s')."""

    def own_networks(self, scope: int, version: int) -> list:
        """The subnets of the L2 ``scope``'s own addresses of family ``version``."""


class PlanView:
    """The ``SwitchView`` of a running daemon: the compiler's plan and the datapath's FIB."""

    def __init__(self, compiler, datapath):
        self._compiler = compiler
        self._dp = datapath

    @property
    def _index(self):
        return self._compiler.index

    def port_namespace(self, port_id):
        entry = self._index.plan.ports.get(port_id)
        return None if entry is None else entry[0]

    def port_place(self, port_id):
        """``(namespace, scope, is_l3)`` of the port, or None."""
        plan = self._index.plan
        entry = plan.ports.get(port_id)
        place = None if entry is None else plan.namespaces.get(entry[0])
        return None if place is None else (entry[0], place[0], place[1])

    def port_scope(self, port_id):
        place = self.port_place(port_id)
        return None if place is None else place[1]

    def port_mac(self, port_id):
        entry = self._index.plan.ports.get(port_id)
        return None if entry is None else entry[1]

    def ports_of(self, ns):
        """The ids of namespace ``ns``'s ports, lowest first."""
        return self._index.ports_of(ns)

    def scope_ports(self, scope):
        """The ids of every port of L2 ``scope`` (its own and its L3s'), lowest first."""
        return self._index.scope_ports(scope)

    def port_mtu(self, port_id):
        """The port's MTU (its ``mtu`` option; an attached interface's own; else 1500),
        or None."""
        info = self._index.port_info.get(port_id)
        return None if info is None else info[0]

    def port_is_router(self, port_id):
        """True if the port's ``router`` option says a router stands behind it."""
        info = self._index.port_info.get(port_id)
        return info is not None and info[1]

    def advertises(self, scope):
        """True if L2 ``scope`` sends IPv6 router advertisements (its ``advertise`` option)."""
        return dict(self._index.scope_options.get(scope, ())).get("advertise", False)

    def advertising_scopes(self):
        """The L2s whose ``advertise`` option is on."""
        return sorted(s for s, options in self._index.scope_options.items()
                      if dict(options).get("advertise", False))

    def own_networks(self, scope, version):
        """The subnets of the L2 ``scope``'s own addresses of family ``version``."""
        return self._index.own_networks(scope, version)

    def owner(self, scope, ip):
        entry = self._index.plan.addresses.get((scope, ip))
        return None if entry is None else address_owner(entry)

    def route(self, scope, ip):
        owner = self.owner(scope, ip)
        if owner is not None and owner != scope:
            port = self._index.port_of(owner)
            return None if port is None else Route(port, ip)
        if key_family(ip) not in self._compiler.families:
            return None                            # a datapath without that family
        try:
            found = self._dp.lookup_route(scope, ip)
        except TapswitchError:
            return None                            # no address a route leads to (multicast, ...)
        if found is None:
            return None
        port, gateway = found
        return Route(port, gateway or ip)

    def source_allowed(self, port_id, ip):
        place = self.port_place(port_id)
        if place is None:
            return False
        ns, scope, is_l3 = place
        owner = BROADCAST if (scope, ip) in self._index.plan.broadcasts else self.owner(scope, ip)
        return may_send_from(is_l3, ns, owner, ip)

    def icmp_source(self, port_id, version=4):
        """The scope's own address of family ``version`` on a subnet of the endpoint's
        addresses (the lowest such), else the scope's lowest own address of that family."""
        place = self.port_place(port_id)
        if place is None:
            return None
        ns, scope, _ = place
        index = self._index
        if ns != scope:
            near = [index.own_address_near(scope, ip) for _, ip in index.addresses_of(ns)
                    if key_family(ip) == version]
            near = [ip for ip in near if ip is not None]
            if near:
                return min(near)                   # on the endpoint's subnet: its gateway
        return index.own_address(scope, version)
