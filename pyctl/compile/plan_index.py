"""A ``Plan`` with the indexes that say what depends on what, and the questions
the daemon asks of it.

``PlanIndex`` holds the plan's tables and five of its own, each entry what one
piece of the model contributes: ``held`` ((scope, ip) -> (owner, prefix
length)), ``memberships`` ((ns, group) -> scope: one entry per membership, so a
join or leave is one write whatever the namespace's other groups), ``route_src``
((scope, prefix, plen) -> (L2 name, dst, gateway, port id or None)), and what
only the slow path reads: ``port_info`` (port id -> (MTU, router)) and
``scope_options`` (L2 id -> its options, as sorted pairs).  Every
write goes through an ``Edit``, which keeps the indexes in step and records the
entry's previous value, so the diff is the entries that moved and
``Edit.revert()`` puts tables and indexes back exactly.

The indexes answer the compile rules (``pyctl.compile.plan_builder``: the routes
via a gateway, the listeners of a directed broadcast, the members of a group)
and the slow path's view (``pyctl.daemon.view.PlanView``: a namespace's ports,
the scope's own address on an endpoint's subnet), each in O(1) or O(answer).
Keys are in either family (``pyctl.compile.plan``); the scope's own addresses
are indexed per family, so a question about one family answers in it.
"""
import ipaddress
from collections import Counter

from fastpath.ipv6 import solicited_node
from pyctl.compile.plan import GONE, PLAN_TABLES, address_of, key_family

__all__ = ["PlanIndex", "Edit"]

_BITS = {4: 32, 6: 128}
_MASKS = {v: [((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1) for plen in range(bits + 1)]
          for v, bits in _BITS.items()}


def _subnet(ip, plen):
    """``(family, plen, network as an int)``: the subnet of plan key ``ip``."""
    version = key_family(ip)
    return (version, plen, int(ip) & _MASKS[version][plen])


class PlanIndex:
    def __init__(self, plan):
        self.plan = plan
        self.held = {}            # (scope, ip) -> (owner ns, prefix length)
        self.memberships = {}     # (ns, group key) -> scope: groups wider than link scope
        self.route_src = {}       # (scope, prefix, plen) -> (L2 name, dst, gateway int, port id)
        self.port_info = {}       # port id -> (MTU, router: bool)
        self.scope_options = {}   # L2 id -> ((key, value), ...) of its options, when it has some
        self.tables = {name: getattr(plan, name) for name in PLAN_TABLES}
        self.tables.update(held=self.held, memberships=self.memberships,
                           route_src=self.route_src, port_info=self.port_info,
                           scope_options=self.scope_options)
        self.scope_members = {}   # scope -> {ns} whose scope it is (itself included)
        self.ns_ports = {}        # ns -> {port ids}
        self.port_routes = {}     # port id -> {route keys} of installed routes
        self.ns_addrs = {}        # ns -> {(scope, ip)} it holds
        self.scope_addrs = {}     # scope -> {ip} held in it
        self.bcast_listeners = {}  # (scope, bcast) -> Counter(L3 ns -> addresses on such subnets)
        self.own_subnets = {}     # (scope, family, plen, network int) -> {ip} the scope holds there
        self.own_prefixes = {}    # (scope, family) -> Counter(plen) of the addresses it holds
        self.own_lowest = {}      # (scope, family) -> its lowest own ip (a cache, filled when asked)
        self.scope_routes = {}    # scope -> {(prefix, plen)} of its routes
        self.gw_routes = {}       # (scope, gateway) -> {route keys} of routes without a port
        self.multicast_members = {}   # (scope, group) -> Counter(ns -> its reasons to be one:
        #   its membership (memberships), each of its IPv6 addresses of that solicited-node group)
        self.ns_groups = {}       # ns -> {group keys} of its memberships
        self.touched_bcasts = set()       # derived entries to recompute after an update
        self.touched_multicast = set()

    # -- questions ------------------------------------------------------------------

    def ports_of(self, ns):
        """The ids of the ports of namespace ``ns``, lowest first."""
        return sorted(self.ns_ports.get(ns, ()))

    def port_of(self, ns):
        """The lowest port id of ``ns`` (an L3 has at most one), or None."""
        ports = self.ns_ports.get(ns)
        return min(ports) if ports else None

    def scope_ports(self, scope):
        """The ids of every port of L2 ``scope``'s namespaces (its own, its L3s'), lowest first."""
        return sorted(p for ns in self.scope_members.get(scope, ())
                      for p in self.ns_ports.get(ns, ()))

    def own_networks(self, scope, version):
        """The subnets of the addresses of family ``version`` the L2 ``scope`` holds itself."""
        out = set()
        for key in self.ns_addrs.get(scope, ()):
            if key_family(key[1]) == version:
                _, plen = self.held[key]
                out.add(ipaddress.ip_network((address_of(key[1]), plen), strict=False))
        return sorted(out)

    def addresses_of(self, ns):
        """``{(scope, ip)}`` that ``ns`` holds."""
        return self.ns_addrs.get(ns, frozenset())

    def own_address_near(self, scope, ip):
        """The lowest address the L2 ``scope`` holds itself on a subnet holding ``ip``
        (of ``ip``'s family)."""
        version = key_family(ip)
        found = [own for plen in self.own_prefixes.get((scope, version), ())
                 for own in self.own_subnets.get((scope,) + _subnet(ip, plen), ())]
        return min(found) if found else None

    def own_address(self, scope, version=4):
        """The lowest address of family ``version`` the L2 ``scope`` holds itself, or None."""
        key = (scope, version)
        if key not in self.own_lowest:
            own = [ip for _, ip in self.ns_addrs.get(scope, ()) if key_family(ip) == version]
            if not own:
                return None
            self.own_lowest[key] = min(own)
        return self.own_lowest[key]

    # -- keeping the indexes --------------------------------------------------------

    def index(self, table, key, value):
        self._index(table, key, value, True)

    def unindex(self, table, key, value):
        self._index(table, key, value, False)

    def _index(self, table, key, value, add):
        if table == "ports":
            _set_edit(self.ns_ports, value[0], key, add)
        elif table == "namespaces":
            _set_edit(self.scope_members, value[0], key, add)
        elif table == "routes":
            _set_edit(self.port_routes, value[0], key, add)
        elif table == "held":
            self._index_held(key, value, add)
        elif table == "route_src":
            _set_edit(self.scope_routes, key[0], key[1:], add)
            if value[3] is None:
                _set_edit(self.gw_routes, (key[0], value[2]), key, add)
        elif table == "memberships":
            ns, group = key
            _set_edit(self.ns_groups, ns, group, add)
            self._member(value, group, ns, add)

    def _member(self, scope, group, ns, add):
        _count_edit(self.multicast_members, (scope, group), ns, add)
        self.touched_multicast.add((scope, group))

    def _index_held(self, key, value, add):
        (scope, ip), (owner, plen) = key, value
        _set_edit(self.ns_addrs, owner, key, add)
        _set_edit(self.scope_addrs, scope, ip, add)
        version = key_family(ip)
        if owner == scope:            # the L2's own address
            _set_edit(self.own_subnets, (scope,) + _subnet(ip, plen), ip, add)
            _count_edit(self.own_prefixes, (scope, version), plen, add)
            lowest = self.own_lowest.get((scope, version))
            if lowest is not None and (ip < lowest if add else ip == lowest):
                if add:
                    self.own_lowest[(scope, version)] = ip
                else:
                    del self.own_lowest[(scope, version)]
        elif version == 4 and plen <= 30:   # an L3 listening to its subnet's directed broadcast
            bkey = (scope, ip | (~_MASKS[4][plen] & 0xFFFFFFFF))
            _count_edit(self.bcast_listeners, bkey, owner, add)
            self.touched_bcasts.add(bkey)
        elif version == 6:                  # an L3 in its address's solicited-node group
            self._member(scope, solicited_node(ip), owner, add)


class Edit:
    """The writes of one update: each entry's value before it, to diff and to revert."""

    def __init__(self, index):
        self.index = index
        self.before = {}              # table name -> {key: value before (or GONE)}

    def put(self, table, key, value):
        index = self.index
        current = index.tables[table]
        old = current.get(key, GONE)
        if old == value:
            return False
        self.before.setdefault(table, {}).setdefault(key, old)
        if old is not GONE:
            index.unindex(table, key, old)
        if value is GONE:
            del current[key]
        else:
            current[key] = value
            index.index(table, key, value)
        return True

    def old(self, table, key):
        """The entry's value before this update."""
        before = self.before.get(table, {})
        if key in before:
            return before[key]
        return self.index.tables[table].get(key, GONE)

    def changes(self, table):
        """[(key, before, now)] of the entries whose value changed."""
        now = self.index.tables[table]
        return [(k, old, now.get(k, GONE)) for k, old in self.before.get(table, {}).items()
                if now.get(k, GONE) != old]

    def revert(self):
        undo, self.before = self.before, {}
        for table, entries in undo.items():
            for key, old in entries.items():
                self.put(table, key, old)
        self.before = {}


def _set_edit(index, key, item, add):
    if add:
        index.setdefault(key, set()).add(item)
    else:
        members = index[key]
        members.discard(item)
        if not members:
            del index[key]


def _count_edit(index, key, item, add):
    count = index.setdefault(key, Counter())
    count[item] += 1 if add else -1
    if count[item] == 0:
        del count[item]
    if not count:
        del index[key]
