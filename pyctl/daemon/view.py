"""What the slow path may know of the switch: ``SwitchView`` says what, ``PlanView``
reads it from the plan the fast path runs, so both halves see the same facts."""
from __future__ import annotations

from typing import NamedTuple, Protocol

from fastpath.source_rule import BROADCAST, may_send_from

__all__ = ["Route", "SwitchView", "PlanView"]


class Route(NamedTuple):
    """Where the fast path sends a destination: out of ``port_id`` to ``next_hop``
    (the destination itself when it is on the port's link)."""
    port_id: int
    next_hop: int


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

    def icmp_source(self, port_id: int) -> int | None:
        """The switch's own address that ICMP errors and ARP requests sent out
        of this port come from (None: ICMP errors are not sent, ARP requests go
        out as probes from 0.0.0.0)."""


class PlanView:
    """The ``SwitchView`` of a running daemon: the compiler's plan and the datapath's FIB."""

    def __init__(self, compiler, datapath):
        self._compiler = compiler
        self._dp = datapath

    @property
    def _plan(self):
        return self._compiler.plan

    def port_namespace(self, port_id):
        entry = self._plan.ports.get(port_id)
        return None if entry is None else entry[0]

    def port_scope(self, port_id):
        ns = self.port_namespace(port_id)
        entry = None if ns is None else self._plan.namespaces.get(ns)
        return None if entry is None else entry[0]

    def port_mac(self, port_id):
        entry = self._plan.ports.get(port_id)
        return None if entry is None else entry[1]

    def owner(self, scope, ip):
        return self._plan.addresses.get((scope, ip))

    def _port_of(self, ns):
        for pid, (owner, _) in self._plan.ports.items():
            if owner == ns:
                return pid
        return None

    def route(self, scope, ip):
        owner = self.owner(scope, ip)
        if owner is not None and owner != scope:
            port = self._port_of(owner)
            return None if port is None else Route(port, ip)
        found = self._dp.lookup_route(scope, ip)
        if found is None:
            return None
        port, gateway = found
        return Route(port, gateway or ip)

    def source_allowed(self, port_id, ip):
        ns = self.port_namespace(port_id)
        if ns is None:
            return False
        scope, is_l3 = self._plan.namespaces[ns]
        owner = BROADCAST if (scope, ip) in self._plan.broadcasts else self.owner(scope, ip)
        return may_send_from(is_l3, ns, owner, ip)

    def icmp_source(self, port_id):
        """The scope's own address on the endpoint's subnet, else any of the scope's own."""
        ns = self.port_namespace(port_id)
        if ns is None:
            return None
        scope = self._plan.namespaces[ns][0]
        own = [ip for (s, ip), owner in self._plan.addresses.items() if s == scope and owner == scope]
        if not own:
            return None
        mine = [ip for (s, ip), owner in self._plan.addresses.items() if s == scope and owner == ns]
        for candidate in own:
            mask = (0xFFFFFFFF << (32 - self._plan.prefixes[(scope, candidate)])) & 0xFFFFFFFF
            if any((candidate ^ addr) & mask == 0 for addr in mine):
                return candidate                    # on the endpoint's subnet: its gateway
        return own[0]
