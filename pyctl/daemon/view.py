"""What the slow path may know of the switch (``pyctl.daemon.slowpath.SwitchView``),
read from the plan the fast path runs, so both halves see the same facts."""
from __future__ import annotations

from fastpath.source_rule import BROADCAST, may_send_from
from pyctl.daemon.slowpath import Route

__all__ = ["PlanView"]


class PlanView:
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
