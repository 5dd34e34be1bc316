"""The compiler's incremental half: which plan entries a model change may touch
("marks"), and a ``Plan`` kept up to date by recompiling only those.

A mark names a piece of the model by ids, resolved when the change happens
(``Switch.watch`` calls at once, also inside a transaction): ``("ns", id)``
a namespace's record (kind, scope, groups, ports), ``("scope", id)`` all of
an L2 scope, ``("addr", scope, ip)``, ``("route", scope, (prefix, plen))``,
``("port", id)``.  ``PlanBuilder.update(state, marks)`` recompiles the marked
entries from the model's state, and those that depend on them (the routes via
a gateway whose owner or its port changed, the broadcast and group lists an
address or a membership is part of), through indexes of the plan; every write
records the entry's previous value, so ``Edit.revert()`` puts plan and indexes
back exactly.  ``compile_plan(snapshot)`` (pyctl.compile.compiler) is the oracle: the
tests check the two agree after any sequence of changes.
"""
import ipaddress
from collections import Counter

from pyctl.model.addressing import parse_interface, parse_network
from pyctl.model.values import L2, L3

__all__ = ["GONE", "PlanBuilder", "Edit", "marks_of", "LINK_LOCAL_PREFIX"]

LINK_LOCAL_PREFIX = 0xE00000      # 224.0.0.0/24, as ip >> 8
_ROUTE_WHY = "gateway {} is reachable through no port"


class _Gone:
    def __repr__(self):
        return "GONE"


GONE = _Gone()                    # "no entry", as a value


def _ipv4(ip):
    """The int of an IPv4 address the fast path may hold (not loopback), else None."""
    if ip.version != 4 or ip.is_loopback:
        return None
    return int(ip)


def marks_of(state, event):
    """The marks of one change, read while ``state`` is the state right after it;
    ``None`` when the kind is unknown (the caller then recompiles everything)."""
    kind, d = event.kind, event.details
    if kind == "namespace.create":
        return {("ns", d["id"]), ("scope", d["id"])} if d["kind"] == L2 else {("ns", d["id"])}
    if kind == "namespace.destroy":
        marks = set()
        for gone in d["destroyed"]:
            marks.add(("ns", gone["id"]))
            if gone["kind"] == L2:
                marks.add(("scope", gone["id"]))
        for text in d["returned"]:             # an L3's addresses, back with its parent
            ip = _ipv4(parse_interface(text).ip)
            if ip is not None:
                marks.add(("addr", d["parent"], ip))
        return marks
    if kind.startswith("address."):
        scope_name = {"address.add": "namespace", "address.delete": "namespace",
                      "address.push": "from", "address.pull": "to",
                      "address.assign_and_push": "scope"}.get(kind)
        if scope_name is None:
            return None
        ip = _ipv4(parse_interface(d["address"]).ip)
        return set() if ip is None else {("addr", state.by_name[d[scope_name]], ip)}
    if kind in ("route.add", "route.delete"):
        network = parse_network(d["dst"])
        if network.version != 4:
            return set()
        key = (int(network.network_address), network.prefixlen)
        return {("route", state.by_name[d["namespace"]], key)}
    if kind in ("port.add", "port.delete"):
        return {("port", d["id"]), ("ns", d["ns"])}
    if kind in ("group.join", "group.leave"):
        return {("ns", d["id"])}
    return None


class Edit:
    """The writes of one update: each entry's value before it, to diff and to revert."""

    def __init__(self, builder):
        self.builder = builder
        self.before = {}              # table name -> {key: value before (or GONE)}

    def put(self, table, key, value):
        b = self.builder
        current = b.tables[table]
        old = current.get(key, GONE)
        if old == value:
            return False
        self.before.setdefault(table, {}).setdefault(key, old)
        if old is not GONE:
            b.unindex(table, key, old)
        if value is GONE:
            del current[key]
        else:
            current[key] = value
            b.index(table, key, value)
        return True

    def old(self, table, key):
        """The entry's value before this update."""
        before = self.before.get(table, {})
        if key in before:
            return before[key]
        return self.builder.tables[table].get(key, GONE)

    def changes(self, table):
        """[(key, before, now)] of the entries whose value changed."""
        now = self.builder.tables[table]
        return [(k, old, now.get(k, GONE)) for k, old in self.before.get(table, {}).items()
                if now.get(k, GONE) != old]

    def revert(self):
        undo, self.before = self.before, {}
        for table, entries in undo.items():
            for key, old in entries.items():
                self.put(table, key, old)
        self.before = {}


class PlanBuilder:
    """A ``Plan`` and the indexes that say what depends on what."""

    PLAN_TABLES = ("namespaces", "ports", "addresses", "prefixes", "broadcasts", "routes",
                   "groups", "unresolved")

    def __init__(self, plan):
        self.plan = plan
        # Tables beside the plan's: what each model piece contributes.
        self.contrib = {}     # (scope, ip) -> (owner ns, directed broadcast): an L3 on a subnet
        self.ns_groups = {}   # ns -> (scope, frozenset of IPv4 groups, not link-local)
        self.route_src = {}   # (scope, prefix, plen) -> (L2 name, dst, gateway int, port id or None)
        self.tables = {name: getattr(plan, name) for name in self.PLAN_TABLES}
        self.tables.update(contrib=self.contrib, ns_groups=self.ns_groups,
                           route_src=self.route_src)
        # Indexes of those tables.
        self.ns_ports = {}        # ns -> {port ids}
        self.ns_addrs = {}        # ns -> {(scope, ip)} it owns
        self.scope_addrs = {}     # scope -> {ip}
        self.scope_routes = {}    # scope -> {(prefix, plen)} of its IPv4 routes
        self.gw_routes = {}       # (scope, gateway) -> {route keys} of routes without a port
        self.port_routes = {}     # port id -> {route keys} of installed routes
        self.bcast_count = {}     # (scope, bcast) -> Counter(ns -> addresses on such subnets)
        self.members = {}         # (scope, group) -> {ns}
        self.touched_bcasts = set()
        self.touched_groups = set()

    # -- indexes ------------------------------------------------------------------

    def index(self, table, key, value):
        self._index(table, key, value, True)

    def unindex(self, table, key, value):
        self._index(table, key, value, False)

    def _index(self, table, key, value, add):
        if table == "ports":
            _set_edit(self.ns_ports, value[0], key, add)
        elif table == "addresses":
            _set_edit(self.ns_addrs, value, key, add)
            _set_edit(self.scope_addrs, key[0], key[1], add)
        elif table == "routes":
            _set_edit(self.port_routes, value[0], key, add)
        elif table == "route_src":
            _set_edit(self.scope_routes, key[0], key[1:], add)
            if value[3] is None:
                _set_edit(self.gw_routes, (key[0], value[2]), key, add)
        elif table == "contrib":
            bkey = (key[0], value[1])
            count = self.bcast_count.setdefault(bkey, Counter())
            count[value[0]] += 1 if add else -1
            if count[value[0]] == 0:
                del count[value[0]]
            if not count:
                del self.bcast_count[bkey]
            self.touched_bcasts.add(bkey)
        elif table == "ns_groups":
            scope, groups = value
            for group in groups:
                _set_edit(self.members, (scope, group), key, add)
                self.touched_groups.add((scope, group))

    # -- recompiling ----------------------------------------------------------------

    def update(self, state, marks):
        """Recompile the marked entries from ``state``; returns the ``Edit``."""
        edit = Edit(self)
        self.touched_bcasts, self.touched_groups = set(), set()
        namespaces, ports, addrs, routes = set(), set(), set(), set()
        for mark in marks:
            what = mark[0]
            if what == "ns":
                namespaces.add(mark[1])
            elif what == "port":
                ports.add(mark[1])
            elif what == "addr":
                addrs.add(mark[1:])
            elif what == "route":
                routes.add((mark[1],) + mark[2])
            elif what == "scope":
                self._expand_scope(state, mark[1], namespaces, addrs, routes)
        for ns in namespaces:
            self._namespace(state, edit, ns, ports, routes)
        for pid in ports:
            self._port(state, edit, pid, routes)
        for scope, ip in addrs:
            self._address(state, edit, scope, ip, routes)
        for key in routes:
            self._route(state, edit, key)
        for key in self.touched_bcasts:
            count = self.bcast_count.get(key)
            edit.put("broadcasts", key, tuple(sorted(count)) if count else GONE)
        for key in self.touched_groups:
            members = self.members.get(key)
            edit.put("groups", key, tuple(sorted(members)) if members else GONE)
        return edit

    def _expand_scope(self, state, scope, namespaces, addrs, routes):
        namespaces.add(scope)
        addrs.update((scope, ip) for ip in self.scope_addrs.get(scope, ()))
        routes.update((scope,) + key for key in self.scope_routes.get(scope, ()))
        record = state.namespaces.get(scope)
        if record is None or record.kind != L2:
            return
        for ip in state.holders[scope]:
            value = _ipv4(ip)
            if value is not None:
                addrs.add((scope, value))
        for network in record.routes:
            if network.version == 4:
                routes.add((scope, int(network.network_address), network.prefixlen))

    def _namespace(self, state, edit, ns, ports, routes):
        record = state.namespaces.get(ns)
        if record is None:
            entry, port_ids, groups = GONE, set(), GONE
        else:
            scope = state.scope_id(record)
            entry = (scope, record.kind == L3)
            port_ids = {state.ports[name].id for name in record.ports}
            groups = (scope, frozenset(int(g) for g in record.groups
                                       if g.version == 4 and int(g) >> 8 != LINK_LOCAL_PREFIX))
        changed = edit.put("namespaces", ns, entry)
        edit.put("ns_groups", ns, groups if groups is GONE or groups[1] else GONE)
        ports |= port_ids | self.ns_ports.get(ns, set())
        if changed or port_ids != self.ns_ports.get(ns, set()):
            # routes via this namespace's addresses go out of its port (or of none now)
            for scope, ip in self.ns_addrs.get(ns, ()):
                routes.update(self.gw_routes.get((scope, ip), ()))

    def _port(self, state, edit, pid, routes):
        name = state.port_names.get(pid)
        if name is None:
            entry = GONE
        else:
            port = state.ports[name]
            entry = (port.ns, bytes(int(part, 16) for part in port.mac.split(":")))
        old = self.plan.ports.get(pid)
        if edit.put("ports", pid, entry) and old is not None:
            routes.update(self.port_routes.get(pid, ()))
            for scope, ip in self.ns_addrs.get(old[0], ()):
                routes.update(self.gw_routes.get((scope, ip), ()))

    def _address(self, state, edit, scope, ip, routes):
        holders = state.holders.get(scope)
        holder = None if holders is None else holders.get(ipaddress.IPv4Address(ip))
        if holder is None:
            owner = prefix = contrib = GONE
        else:
            record = state.namespaces[holder]
            network = record.addresses[ipaddress.IPv4Address(ip)].network
            owner, prefix = holder, network.prefixlen
            contrib = GONE
            if record.kind == L3 and prefix <= 30:
                contrib = (holder, int(network.broadcast_address))
        edit.put("addresses", (scope, ip), owner)
        edit.put("prefixes", (scope, ip), prefix)
        edit.put("contrib", (scope, ip), contrib)
        routes.update(self.gw_routes.get((scope, ip), ()))

    def _route(self, state, edit, key):
        scope, prefix, plen = key
        record = state.namespaces.get(scope)
        route = None
        if record is not None and record.kind == L2:
            route = record.routes.get(ipaddress.IPv4Network((prefix, plen)))
        if route is None:
            for table in ("route_src", "routes", "unresolved"):
                edit.put(table, key, GONE)
            return
        gateway = int(ipaddress.IPv4Address(route.via)) if route.via else 0
        port_id = None if route.port is None else state.ports[route.port].id
        edit.put("route_src", key, (record.name, route.dst, gateway, port_id))
        if port_id is None:
            owner = self.plan.addresses.get((scope, gateway))
            entry = self.plan.namespaces.get(owner)
            owner_ports = self.ns_ports.get(owner) if entry is not None and entry[1] else None
            port_id = min(owner_ports) if owner_ports else None
        if port_id is None:
            edit.put("routes", key, GONE)
            edit.put("unresolved", key, (record.name, route.dst, _ROUTE_WHY.format(route.via)))
        else:
            edit.put("routes", key, (port_id, gateway))
            edit.put("unresolved", key, GONE)


def _set_edit(index, key, item, add):
    if add:
        index.setdefault(key, set()).add(item)
    else:
        members = index[key]
        members.discard(item)
        if not members:
            del index[key]
