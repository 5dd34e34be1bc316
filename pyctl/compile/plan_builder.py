"""The compile rules: the model's facts turned into plan entries, one entry at a time.

There is one set of rules.  ``PlanBuilder.update(reader, marks)`` recompiles
the marked entries (``pyctl.compile.event_marks``) from the model's read API
(``Switch.read()``), and those that depend on them through the plan's indexes
(``pyctl.compile.plan_index``): the routes via a gateway whose holder or whose
holder's port changed, the listeners of a directed broadcast, the members of a
multicast group.  The full build is the same update with everything marked
(``PlanBuilder.build``, ``compile_plan``).

The rules, per entry:

Both families follow the same rules, each address-keyed entry in the family of
its key (``pyctl.compile.plan``: IPv4 as ints, IPv6 as ``IPv6Address``):

- a namespace: ``(scope, is_l3)``; an L2 with the ``directed_broadcast`` option
  is in ``directed``;
- a membership (not of a group of link scope: 224.0.0.0/24 and ff02::/16 reach
  the sender's subnet or the scope without an entry, and no narrower ones are
  joined) makes the namespace a member of the group in ``multicast``.  A join or
  leave marks that membership alone (``Marks.memberships``): it costs one entry
  and its group's member list, not the namespace's other groups (issue 14 item
  10); a namespace recompiled whole (created, destroyed) has all of them redone;
- a port: ``(namespace, MAC bytes, dhcp_server, served by DHCPv4)`` (its
  ``dhcp_server`` option; ``port_options.dhcp_served``), and its MTU for a
  datapath that takes IPv6; for the slow path ``port_info`` (its MTU, whether a
  router stands behind it), and an L2's ``scope_options``;
- an address held in a scope (loopback stays in the model): its holder and its
  subnet's prefix length in ``addresses``; an L3 holding an IPv4 address on a
  /30-or-wider subnet listens to that subnet's directed broadcast
  (``broadcasts``; IPv6 has none); an L3 holding an IPv6 address is a member of
  its solicited-node group in ``multicast`` (as a kernel joins the group of each
  of its addresses: a datagram to it reaches the owners only), a membership of
  the address, not of the model's groups (no quota, no snooping limit, no MLD
  leave ends it; it comes and goes with the address);
- a route: out of its port if it names one, else out of the port of the L3
  that holds its gateway; neither: ``unresolved`` (not installed).  A connected
  route (the subnet of an L2's own address, either family, ``pyctl.model.subnets``)
  is on-link out of the port that leads there; with none it is not installed (nor
  unresolved: the subnet's namespaces are reached by address).
"""
import ipaddress

from pyctl.compile.event_marks import Marks
from pyctl.compile.plan import (FAMILIES, GONE, Plan, address_of, address_owner, fast_path_key,
                                key_family, network_of)
from pyctl.compile.plan_index import Edit, PlanIndex
from pyctl.model.addressing import is_link_scope_group
from pyctl.model.port_options import DEFAULT_MTU, dhcp_served

__all__ = ["PlanBuilder", "compile_plan"]

_ROUTE_WHY = "gateway {} is reachable through no port"
_ON_LINK = {4: 0, 6: None}        # the gateway of an on-link route, per family


def _mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def everything(reader):
    """Marks covering the whole model."""
    marks = Marks()
    marks.namespaces.update(reader.namespace_ids())
    marks.scopes.update(reader.scope_ids())
    marks.ports.update(reader.port_ids())
    return marks


def compile_plan(switch, families=FAMILIES, link_mtu=None):
    """The plan of the whole model (what a full sync installs into a datapath that
    takes ``families``; ``link_mtu``: PlanBuilder's)."""
    with switch.read() as reader:
        return PlanBuilder.build(reader, families, link_mtu).plan


class PlanBuilder:
    """Keeps a ``PlanIndex`` (a plan and its indexes) equal to the model's plan, in
    the IP versions ``families`` (what the datapath takes: ``plan.datapath_families``).
    ``link_mtu(name)``: the MTU of the existing interface an ``attach`` port serves
    (the daemon reads the kernel's; None: unknown), which the model does not hold --
    the switch does not configure that interface; without it such a port counts as
    DEFAULT_MTU."""

    def __init__(self, index, families=FAMILIES, link_mtu=None):
        self.index = index
        self.families = frozenset(families)
        self.link_mtu = link_mtu

    @classmethod
    def build(cls, reader, families=FAMILIES, link_mtu=None):
        """A builder holding the plan of the whole model."""
        builder = cls(PlanIndex(Plan()), families, link_mtu)
        builder.update(reader, everything(reader))
        return builder

    def port_mtu(self, port):
        """The MTU the plan gives ``port``: its ``mtu`` option, an attached interface's
        own (``link_mtu``), else DEFAULT_MTU."""
        if port.options.get("kind") == "attach" and self.link_mtu is not None:
            return self.link_mtu(port.name) or DEFAULT_MTU
        return port.options.get("mtu", DEFAULT_MTU)

    def _key(self, ip):
        """The plan key of ``ip`` if the plan holds its family, else None."""
        key = fast_path_key(ip)
        return key if key is not None and ip.version in self.families else None

    def _group_key(self, group):
        """The plan key of a joined group, or None for one the plan has no entry of
        (link scope, or a family the datapath does not take)."""
        return None if is_link_scope_group(group) else self._key(group)

    @property
    def plan(self):
        return self.index.plan

    def update(self, reader, marks):
        """Recompile the marked entries from ``reader``; returns the ``Edit``."""
        index = self.index
        edit = Edit(index)
        index.touched_bcasts, index.touched_multicast = set(), set()
        namespaces, ports = set(marks.namespaces), set(marks.ports)
        addrs = {key for key in marks.addresses if key_family(key[1]) in self.families}
        routes = {key for key in marks.routes if key_family(key[1]) in self.families}
        for scope in marks.scopes:
            self._expand_scope(reader, scope, namespaces, addrs, routes)
        for scope in marks.connected:
            for net in reader.connected_networks(scope):
                prefix = self._key(net.network_address)
                if prefix is not None:
                    routes.add((scope, prefix, net.prefixlen))
        for ns in namespaces:
            self._namespace(reader, edit, ns, ports, routes)
        for ns, group in marks.memberships:
            if ns not in namespaces:      # else done with the namespace's other groups
                self._membership(reader, edit, ns, group)
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
            key = self._key(ip)
            if key is not None:
                addrs.add((scope, key))
        for network in reader.route_networks(scope):
            key = self._key(network.network_address)
            if key is not None:
                routes.add((scope, key, network.prefixlen))

    def _namespace(self, reader, edit, ns, ports, routes):
        index = self.index
        value = reader.namespace(ns)
        if value is None:
            entry, port_ids, groups, options, directed = GONE, set(), set(), GONE, GONE
        else:
            entry = (value.scope_id, value.is_l3)
            port_ids = set(reader.port_ids_of(ns))
            groups = {key for key in map(self._group_key, reader.groups_of(ns))
                      if key is not None}
            options = tuple(sorted(reader.options_of(ns).items())) or GONE
            directed = True if reader.options_of(ns).get("directed_broadcast") else GONE
        changed = edit.put("namespaces", ns, entry)
        for group in index.ns_groups.get(ns, set()) - groups:
            edit.put("memberships", (ns, group), GONE)
        for group in groups:
            edit.put("memberships", (ns, group), value.scope_id)
        edit.put("scope_options", ns, options)
        edit.put("directed", ns, directed)
        known = index.ns_ports.get(ns, set())
        ports |= port_ids | known
        if changed or port_ids != known:
            # routes via this namespace's addresses go out of its port (or of none now)
            for key in index.addresses_of(ns):
                routes.update(index.gw_routes.get(key, ()))

    def _membership(self, reader, edit, ns, group):
        """Namespace ``ns``'s membership of ``group`` (an ``ipaddress`` address)."""
        key = self._group_key(group)
        if key is None:
            return
        value = reader.namespace(ns)
        member = value is not None and reader.is_member(ns, group)
        edit.put("memberships", (ns, key), value.scope_id if member else GONE)

    def _port(self, reader, edit, pid):
        # A port that comes, goes or moves changes the routes via its namespaces'
        # addresses: every such change marks those namespaces too (``_namespace``).
        port = reader.port(pid)
        if port is None:
            edit.put("ports", pid, GONE)
            edit.put("port_info", pid, GONE)
            return
        ns = reader.namespace(port.ns)
        mtu = self.port_mtu(port)
        entry = (port.ns, _mac_bytes(port.mac), port.options.get("dhcp_server", False),
                 dhcp_served(port.options, ns is not None and ns.is_l3))
        if 6 in self.families:
            entry += (mtu,)               # the fast path's too_big bound, both families
        edit.put("ports", pid, entry)
        edit.put("port_info", pid, (mtu, port.options.get("router", False)))

    def _address(self, reader, edit, scope, ip, routes):
        holding = reader.holding(scope, address_of(ip))
        if holding is None:
            held = GONE
        else:
            held = (holding.holder, holding.address.network.prefixlen)
        edit.put("addresses", (scope, ip), held)
        edit.put("held", (scope, ip), held)
        routes.update(self.index.gw_routes.get((scope, ip), ()))

    def _route(self, reader, edit, key):
        scope, prefix, plen = key
        network = network_of(prefix, plen)
        route = reader.route(scope, network)
        if route is None:
            for table in ("route_src", "routes", "unresolved"):
                edit.put(table, key, GONE)
            return
        index = self.index
        name = reader.namespace(scope).name
        gateway = (fast_path_key(ipaddress.ip_address(route.via)) if route.via
                   else _ON_LINK[network.version])
        port_id = None if route.port is None else reader.port_id(route.port)
        if route.connected and port_id is None:      # on-link, leading nowhere: not installed
            for table in ("route_src", "routes", "unresolved"):
                edit.put(table, key, GONE)
            return
        edit.put("route_src", key, (name, route.dst, gateway, port_id))
        if port_id is None:
            owner = index.plan.addresses.get((scope, gateway))
            entry = None if owner is None else index.plan.namespaces.get(address_owner(owner))
            port_id = index.port_of(address_owner(owner)) if entry is not None and entry[1] else None
        if port_id is None:
            edit.put("routes", key, GONE)
            edit.put("unresolved", key, (name, route.dst, _ROUTE_WHY.format(route.via)))
        else:
            edit.put("routes", key, (port_id, gateway))
            edit.put("unresolved", key, GONE)
