"""The model's internal, mutable state: namespace and port records, the
address-holder index of each L2 scope, id allocation, and the snapshot.

Only the model's verbs change it, and only through the ``State`` methods that write
(``put``, ``pop``, ``add``, ``discard``, ``append``, ``remove``, ``take_id``,
``release_id``, ``add_namespace``): inside a transaction each write logs the step that
undoes it (``begin``/``rollback``/``end``), so a rollback costs what the transaction
changed, not the size of the state.  Everything here is plain data (dataclasses,
dicts, lists), so ``==`` compares two states exactly and a deep copy is a full
checkpoint (the atomicity tests compare a rollback with one).
"""
import heapq
from dataclasses import dataclass, field
from typing import Optional

from pyctl.model.addressing import sort_key
from pyctl.model.values import L2, Namespace, Port

ROOT_ID = 0
ROOT_NAME = "init"
CATEGORIES = ("namespaces", "addresses", "routes", "ports", "groups")
# What quotas count (pyctl.model.quotas): here, so that a record can start its counters.
QUOTA_KEYS = ("namespaces", "addresses", "routes", "ports", "groups", "sockets")


@dataclass
class NamespaceRecord:
    id: int
    uid: int                      # never reused: tells a namespace from a later one with its id
    name: str
    kind: str
    parent: Optional[int]
    children: dict = field(default_factory=dict)      # id -> None, in creation order (uid order)
    addresses: dict = field(default_factory=dict)     # ip -> interface, held by this namespace
    routes: dict = field(default_factory=dict)        # network -> Route (L2 only)
    ports: list = field(default_factory=list)         # port names, in attach order
    groups: set = field(default_factory=set)          # multicast group ips
    options: dict = field(default_factory=dict)       # an L2's (pyctl.model.namespace_options)
    socket: bool = False          # a control socket acts as it (the server says so)
    quota: dict = field(default_factory=dict)         # key -> limit its parent set (L2)
    usage: dict = field(default_factory=lambda: dict.fromkeys(QUOTA_KEYS, 0))  # its subtree's
    netns: set = field(default_factory=set)           # kernel namespaces delegated to an L2

    def value(self):
        return Namespace(self.id, self.name, self.kind, self.parent)

    def clone(self):
        # addresses, routes, groups and options hold immutable values: copying the
        # containers is enough
        return NamespaceRecord(self.id, self.uid, self.name, self.kind, self.parent,
                               dict(self.children), dict(self.addresses), dict(self.routes),
                               list(self.ports), set(self.groups), dict(self.options),
                               self.socket, dict(self.quota), dict(self.usage),
                               set(self.netns))


@dataclass
class PortRecord:
    name: str
    id: int
    ns: int
    mac: str
    options: dict

    def value(self):
        return Port(self.name, self.id, self.ns, self.mac, _copy_options(self.options))

    def clone(self):
        return PortRecord(self.name, self.id, self.ns, self.mac, _copy_options(self.options))


def _copy_options(options):
    return {key: list(val) if isinstance(val, list) else val for key, val in options.items()}


class IdAllocator:
    """Smallest free id first (like the kernel's idr), so id-indexed tables stay small."""

    def __init__(self, first=0):
        self.next = first
        self.free = []                # heap of released ids below ``next``

    def take(self):
        if self.free:
            return heapq.heappop(self.free)
        self.next += 1
        return self.next - 1

    def release(self, ident):
        heapq.heappush(self.free, ident)

    def untake(self, ident, was_free):
        """Undo the ``take()`` that returned ``ident`` (``was_free``: it came from the free
        ids; the log undoes newest first, so nothing was taken after it)."""
        if was_free:
            heapq.heappush(self.free, ident)
        else:
            self.next -= 1

    def unrelease(self, ident):
        """Undo ``release(ident)``."""
        self.free.remove(ident)
        heapq.heapify(self.free)

    def clone(self):
        copied = IdAllocator(self.next)
        copied.free = list(self.free)
        return copied

    def __eq__(self, other):
        return (isinstance(other, IdAllocator) and self.next == other.next
                and sorted(self.free) == sorted(other.free))


@dataclass
class State:
    namespaces: dict = field(default_factory=dict)   # id -> NamespaceRecord
    by_name: dict = field(default_factory=dict)      # name -> id
    holders: dict = field(default_factory=dict)      # L2 id -> {ip: holder id} for its scope
    ports: dict = field(default_factory=dict)        # port name -> PortRecord
    port_names: dict = field(default_factory=dict)   # port id -> port name
    macs: dict = field(default_factory=dict)         # mac -> port name
    namespace_ids: IdAllocator = field(default_factory=IdAllocator)
    port_ids: IdAllocator = field(default_factory=IdAllocator)
    next_uid: int = 0
    capacity: dict = field(default_factory=dict)     # table -> size of the switch's own
    # IPv4 subnet edges: L2 id -> {network or broadcast ip: (interfaces of that subnet held)}
    edges: dict = field(default_factory=dict)
    own_networks: dict = field(default_factory=dict)  # L2 id -> {network: own addresses on it}
    # kernel namespaces (pyctl.model.kernel_reach): delegated ones, and those ports name
    netns_delegated: dict = field(default_factory=dict)   # name -> the L2 it is delegated to
    netns_ports: dict = field(default_factory=dict)       # name -> frozenset of port names
    netns_create_only: set = field(default_factory=set)   # first named by a delegated client
    version: int = 0
    versions: dict = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    # The undo log of the open transaction: [(function, args)], newest last; None outside.
    log: Optional[list] = field(default=None, compare=False, repr=False)
    _saved: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def with_root(cls):
        state = cls()
        state.add_namespace(ROOT_NAME, L2, None)
        return state

    def __deepcopy__(self, memo):
        """A full checkpoint, sharing only immutable values (fast: used by transactions)."""
        return State(
            namespaces={i: r.clone() for i, r in self.namespaces.items()},
            by_name=dict(self.by_name),
            holders={i: dict(h) for i, h in self.holders.items()},
            ports={n: p.clone() for n, p in self.ports.items()},
            port_names=dict(self.port_names), macs=dict(self.macs),
            namespace_ids=self.namespace_ids.clone(), port_ids=self.port_ids.clone(),
            next_uid=self.next_uid, capacity=dict(self.capacity),
            edges={i: dict(e) for i, e in self.edges.items()},
            own_networks={i: dict(n) for i, n in self.own_networks.items()},
            netns_delegated=dict(self.netns_delegated), netns_ports=dict(self.netns_ports),
            netns_create_only=set(self.netns_create_only), version=self.version,
            versions=dict(self.versions))

    # -- the undo log -------------------------------------------------------------

    def begin(self):
        """Start logging the writes (a transaction opens)."""
        self.log = []
        self._saved = (self.version, dict(self.versions), self.next_uid)

    def end(self):
        """Forget the log: the transaction's changes stay."""
        self.log, self._saved = None, ()

    def rollback(self):
        """Undo every write since ``begin()``, newest first; versions as they were."""
        log, self.log = self.log, None
        for undo, args in reversed(log):
            undo(*args)
        self.version, versions, self.next_uid = self._saved
        self.versions.update(versions)
        self._saved = ()

    def _logged(self, undo, *args):
        if self.log is not None:
            self.log.append((undo, args))

    # -- the writes (each logs its undo inside a transaction) ---------------------

    def put(self, mapping, key, value):
        """``mapping[key] = value``."""
        if self.log is not None:
            if key in mapping:
                self.log.append((mapping.__setitem__, (key, mapping[key])))
            else:
                self.log.append((mapping.__delitem__, (key,)))
        mapping[key] = value

    def set(self, obj, name, value):
        """``setattr(obj, name, value)`` (a record's flag)."""
        self._logged(setattr, obj, name, getattr(obj, name))
        setattr(obj, name, value)

    def pop(self, mapping, key):
        """``del mapping[key]``; returns what it held."""
        value = mapping.pop(key)
        self._logged(mapping.__setitem__, key, value)
        return value

    def add(self, items, item):
        """``items.add(item)`` (a set; the item is not in it)."""
        items.add(item)
        self._logged(items.remove, item)

    def discard(self, items, item):
        """``items.remove(item)`` (a set)."""
        items.remove(item)
        self._logged(items.add, item)

    def append(self, items, item):
        """``items.append(item)`` (a list)."""
        items.append(item)
        self._logged(items.pop)

    def remove(self, items, item):
        """``items.remove(item)`` (a list; the undo puts it back where it was)."""
        at = items.index(item)
        del items[at]
        self._logged(items.insert, at, item)

    def remove_child(self, parent, child):
        """Take ``child`` (a record) from ``parent``'s children; the undo puts it back in
        its place (children are in uid order)."""
        del parent.children[child.id]
        self._logged(self._put_child_back, parent, child.id, child.uid)

    def _put_child_back(self, parent, ident, uid):
        children = parent.children
        last = next(reversed(children), None)
        children[ident] = None
        if last is not None and self.namespaces[last].uid > uid:      # not the newest
            order = sorted(children, key=lambda c: uid if c == ident else self.namespaces[c].uid)
            children.clear()
            children.update(dict.fromkeys(order))

    def take_id(self, allocator):
        was_free = bool(allocator.free)
        ident = allocator.take()
        self._logged(allocator.untake, ident, was_free)
        return ident

    def release_id(self, allocator, ident):
        allocator.release(ident)
        self._logged(allocator.unrelease, ident)

    def add_namespace(self, name, kind, parent):
        ident = self.take_id(self.namespace_ids)
        record = NamespaceRecord(ident, self.next_uid, name, kind, parent)
        self.next_uid += 1              # (put back by rollback)
        self.put(self.namespaces, ident, record)
        self.put(self.by_name, name, ident)
        if kind == L2:
            self.put(self.holders, ident, {})
        if parent is not None:
            self.put(self.namespaces[parent].children, ident, None)
        return record

    def note_netns(self, port, add, by_delegate=False):
        """Port record ``port`` was added (``add``; by a delegated client: ``by_delegate``)
        or removed: who uses its kernel namespace (``pyctl.model.kernel_reach``)."""
        netns = port.options.get("netns")
        if netns is None:
            return
        users = self.netns_ports.get(netns, frozenset())
        if add:
            if (not users and by_delegate and netns not in self.netns_delegated
                    and netns not in self.netns_create_only):
                self.add(self.netns_create_only, netns)
            self.put(self.netns_ports, netns, users | {port.name})
            return
        users = users - {port.name}
        if users:
            self.put(self.netns_ports, netns, users)
        elif netns in self.netns_ports:
            self.pop(self.netns_ports, netns)
            if netns in self.netns_create_only:
                self.discard(self.netns_create_only, netns)

    def scope_id(self, record):
        """The L2 whose address space and routes ``record`` uses."""
        return record.id if record.kind == L2 else record.parent

    def subtree(self, record):
        """``record`` and its descendants, parents before children (tree order)."""
        out, stack = [], [record.id]
        while stack:
            node = self.namespaces[stack.pop()]
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def is_within(self, record, top):
        """True when ``record`` is ``top`` or one of its descendants."""
        ident = record.id
        while ident is not None:
            if ident == top.id:
                return True
            ident = self.namespaces[ident].parent
        return False

    def snapshot(self):
        """Plain JSON-able data of the whole state (ids' allocator aside), in tree order."""
        namespaces = []
        for rec in self.subtree(self.namespaces[ROOT_ID]):
            namespaces.append({
                "id": rec.id, "name": rec.name, "kind": rec.kind, "parent": rec.parent,
                "addresses": [str(i) for i in sorted(rec.addresses.values(), key=sort_key)],
                "routes": [route.to_dict() for _, route in
                           sorted(rec.routes.items(), key=lambda item: sort_key(item[0]))],
                "ports": list(rec.ports),
                "groups": [str(g) for g in sorted(rec.groups, key=sort_key)],
                "options": dict(rec.options),
            })
            if rec.kind == L2:                  # quotas are an L2's (pyctl.model.quotas)
                namespaces[-1]["quota"] = dict(sorted(rec.quota.items()))
                namespaces[-1]["netns"] = sorted(rec.netns)
        ports = [self.ports[self.port_names[i]].value().to_dict() for i in sorted(self.port_names)]
        return {"version": self.version, "versions": dict(self.versions),
                "namespaces": namespaces, "ports": ports}
