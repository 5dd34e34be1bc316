"""What the slow path may know of the switch (``pyctl.daemon.slowpath.SwitchView``),
read from the plan the fast path runs, so both halves see the same facts.

Each answer comes from the plan's tables and indexes (``Compiler.index``,
``pyctl.compile.plan_index.PlanIndex``) in O(1) or O(answer), never from a
scan of the ports or addresses.
"""
from __future__ import annotations

from pyctl.daemon.slowpath import Route

__all__ = ["PlanView"]


class PlanView:
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

    def owner(self, scope, ip):
        return self._index.plan.addresses.get((scope, ip))

    def route(self, scope, ip):
        owner = self.owner(scope, ip)
        if owner is not None and owner != scope:
            port = self._index.port_of(owner)
            return None if port is None else Route(port, ip)
        found = self._dp.lookup_route(scope, ip)
        if found is None:
            return None
        port, gateway = found
        return Route(port, gateway or ip)

    def source_allowed(self, port_id, ip):
        place = self.port_place(port_id)
        if place is None:
            return False
        ns, scope, is_l3 = place
        owner = self.owner(scope, ip)
        if is_l3:
            return owner == ns
        return owner is None or owner == ns

    def icmp_source(self, port_id):
        """The scope's own address on a subnet of the endpoint's addresses (the lowest
        such), else the scope's lowest own address."""
        place = self.port_place(port_id)
        if place is None:
            return None
        ns, scope, _ = place
        index = self._index
        if ns != scope:
            near = [index.own_address_near(scope, ip) for _, ip in index.addresses_of(ns)]
            near = [ip for ip in near if ip is not None]
            if near:
                return min(near)                   # on the endpoint's subnet: its gateway
        return index.own_address(scope)
