"""The compile rules: the model's facts turned into plan entries, one entry at a time.

There is one set of rules.  ``PlanBuilder.update(reader, marks)`` recompiles
the marked entries (``pyctl.compile.event_marks``) from the model's read API
(``Switch.read()``), and those that depend on them through the plan's indexes
(``pyctl.compile.plan_index``): the routes via a gateway whose holder or whose
holder's port changed, the listeners of a directed broadcast, the members of a
multicast group.  The full build is the same update with everything marked
(``PlanBuilder.build``, ``compile_plan``).

The rules, per entry:

- a namespace: ``(scope, is_l3)``; its IPv4 groups (not link-local 224.0.0.0/24,
  which reach the whole scope without an entry) make it a member in ``multicast``;
- a port: ``(namespace, MAC bytes, served by DHCP)`` (``port_options.dhcp_served``);
- an IPv4 address held in a scope (loopback and IPv6 stay in the model): its holder
  in ``addresses``; an L3 holding an address on a /30-or-wider subnet listens to
  that subnet's directed broadcast (``broadcasts``);
- an IPv4 route: out of its port if it names one, else out of the port of the L3
  that holds its gateway; neither: ``unresolved`` (not installed).
"""
import ipaddress

from pyctl.compile.event_marks import Marks
from pyctl.compile.plan import GONE, Plan, fast_path_ipv4
from pyctl.compile.plan_index import Edit, PlanIndex
from pyctl.model.port_options import dhcp_served

__all__ = ["PlanBuilder", "compile_plan", "LINK_LOCAL_PREFIX"]

LINK_LOCAL_PREFIX = 0xE00000      # 224.0.0.0/24, as ip >> 8
_ROUTE_WHY = "gateway {} is reachable through no port"


def _mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def _multicast_groups(groups):
    return frozenset(int(g) for g in groups
                     if g.version == 4 and int(g) >> 8 != LINK_LOCAL_PREFIX)


def everything(reader):
    """Marks covering the whole model."""
    marks = Marks()
    marks.namespaces.update(reader.namespace_ids())
    marks.scopes.update(reader.scope_ids())
    marks.ports.update(reader.port_ids())
    return marks


def compile_plan(switch):
    """The plan of the whole model (what a full sync installs)."""
    with switch.read() as reader:
        return PlanBuilder.build(reader).plan


class PlanBuilder:
    """Keeps a ``PlanIndex`` (a plan and its indexes) equal to the model's plan."""

    def __init__(self, index):
        self.index = index

    @classmethod
    def build(cls, reader):
        """A builder holding the plan of the whole model."""
        builder = cls(PlanIndex(Plan()))
        builder.update(reader, everything(reader))
        return builder

    @property
    def plan(self):
        return self.index.plan

    def update(self, reader, marks):
        """Recompile the marked entries from ``reader``; returns the ``Edit``."""
        index = self.index
        edit = Edit(index)
        index.touched_bcasts, index.touched_multicast = set(), set()
        namespaces, ports = set(marks.namespaces), set(marks.ports)
        addrs, routes = set(marks.addresses), set(marks.routes)
        for scope in marks.scopes:
            self._expand_scope(reader, scope, namespaces, addrs, routes)
        for ns in namespaces:
            self._namespace(reader, edit, ns, ports, routes)
        for pid in ports:
            self._port(reader, edit, pid)
        for scope, ip in addrs:
            self._address(reader, edit, scope, ip, routes)
        for key in routes:
            self._route(reader, edit, key)
        for key in index.touched_bcasts:
            listeners = index.bcast_listeners.get(key)
            edit.put("broadcasts", key, tuple(sorted(listeners)) if listeners else GONE)
        for key in index.touched_multicast:
            members = index.multicast_members.get(key)
            edit.put("multicast", key, tuple(sorted(members)) if members else GONE)
        return edit

    def _expand_scope(self, reader, scope, namespaces, addrs, routes):
        """Every address and route of L2 ``scope``: those the plan has, those the model has."""
        index = self.index
        namespaces.add(scope)
        addrs.update((scope, ip) for ip in index.scope_addrs.get(scope, ()))
        routes.update((scope,) + key for key in index.scope_routes.get(scope, ()))
        for ip in reader.held_ips(scope):
            value = fast_path_ipv4(ip)
            if value is not None:
                addrs.add((scope, value))
        for network in reader.route_networks(scope):
            if network.version == 4:
                routes.add((scope, int(network.network_address), network.prefixlen))

    def _namespace(self, reader, edit, ns, ports, routes):
        index = self.index
        value = reader.namespace(ns)
        if value is None:
            entry, port_ids, multicast = GONE, set(), GONE
        else:
            entry = (value.scope_id, value.is_l3)
            port_ids = set(reader.port_ids_of(ns))
            groups = _multicast_groups(reader.groups_of(ns))
            multicast = (value.scope_id, groups) if groups else GONE
        changed = edit.put("namespaces", ns, entry)
        edit.put("ns_multicast", ns, multicast)
        known = index.ns_ports.get(ns, set())
        ports |= port_ids | known
        if changed or port_ids != known:
            # routes via this namespace's addresses go out of its port (or of none now)
            for key in index.addresses_of(ns):
                routes.update(index.gw_routes.get(key, ()))

    def _port(self, reader, edit, pid):
        # A port that comes, goes or moves changes the routes via its namespaces'
        # addresses: every such change marks those namespaces too (``_namespace``).
        port = reader.port(pid)
        if port is None:
            edit.put("ports", pid, GONE)
            return
        ns = reader.namespace(port.ns)
        edit.put("ports", pid, (port.ns, _mac_bytes(port.mac),
                                dhcp_served(port.options, ns is not None and ns.is_l3)))

    def _address(self, reader, edit, scope, ip, routes):
        holding = reader.holding(scope, ipaddress.IPv4Address(ip))
        if holding is None:
            owner = held = GONE
        else:
            owner = holding.holder
            held = (owner, holding.address.network.prefixlen)
        edit.put("addresses", (scope, ip), owner)
        edit.put("held", (scope, ip), held)
        routes.update(self.index.gw_routes.get((scope, ip), ()))

    def _route(self, reader, edit, key):
        scope, prefix, plen = key
        route = reader.route(scope, ipaddress.IPv4Network((prefix, plen)))
        if route is None:
            for table in ("route_src", "routes", "unresolved"):
                edit.put(table, key, GONE)
            return
        index = self.index
        name = reader.namespace(scope).name
        gateway = int(ipaddress.IPv4Address(route.via)) if route.via else 0
        port_id = None if route.port is None else reader.port_id(route.port)
        edit.put("route_src", key, (name, route.dst, gateway, port_id))
        if port_id is None:
            owner = index.plan.addresses.get((scope, gateway))
            entry = index.plan.namespaces.get(owner)
            port_id = index.port_of(owner) if entry is not None and entry[1] else None
        if port_id is None:
            edit.put("routes", key, GONE)
            edit.put("unresolved", key, (name, route.dst, _ROUTE_WHY.format(route.via)))
        else:
            edit.put("routes", key, (port_id, gateway))
            edit.put("unresolved", key, GONE)
