"""Compile the model (pyctl's truth) into the fast path's tables.

``compile_plan(snapshot)`` turns a model snapshot into a ``Plan``: passive,
comparable data in the fast path's terms (ids, host-order IPv4 ints, MAC
bytes).  ``Compiler.sync()`` applies the difference between the plan the
datapath runs and the model's current one, inside ``datapath.update()``, so a
batch sees either all of a change or none of it (Snabb's "apply the diff").

``sync()`` costs what changed, not what the model holds: the compiler watches
the model (``Switch.watch``), turns each change into marks of the entries it
may touch (``pyctl.compile.plan_builder``) and recompiles only those, from the
model's state, into the plan it keeps; the diff is then the entries whose
value moved.  A rolled-back transaction hands its changes back as marks, so a
sync after it recompiles them from the restored state.  ``compile_plan`` is
the oracle the incremental plan is tested against, and ``sync(force=True)``
recompiles everything.

If the datapath refuses a write (a table full), every write already made in
this sync is undone in reverse order and the error goes on: the datapath is
left running the previous plan, and the compiler keeps the marks to retry.
Call ``sync()`` inside the model's ``transaction()`` and the model is rolled
back too.

Only IPv4 reaches the fast path; IPv6 addresses stay in the model.
"""
import ipaddress
import logging
import weakref
from dataclasses import dataclass, field

from pyctl.compile.plan_builder import GONE, LINK_LOCAL_PREFIX, PlanBuilder, marks_of

log = logging.getLogger("tapswitch.compiler")

__all__ = ["Plan", "compile_plan", "Compiler"]


@dataclass
class Plan:
    namespaces: dict = field(default_factory=dict)   # ns id -> (scope id, is_l3)
    ports: dict = field(default_factory=dict)        # port id -> (ns id, mac bytes)
    addresses: dict = field(default_factory=dict)    # (scope, ip) -> owner ns id
    prefixes: dict = field(default_factory=dict)     # (scope, ip) -> prefix length (not a table)
    broadcasts: dict = field(default_factory=dict)   # (scope, directed bcast ip) -> tuple(ns ids)
    #   (the L3s of the scope with an address on a subnet, /30 or wider, of that broadcast)
    routes: dict = field(default_factory=dict)       # (scope, prefix, plen) -> (port id, gateway ip)
    groups: dict = field(default_factory=dict)       # (scope, group ip) -> tuple(member ns ids)
    unresolved: dict = field(default_factory=dict)   # (scope, prefix, plen) -> (L2 name, dst, why):
    #   routes of the model the datapath cannot use


def _mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def compile_plan(snapshot):
    """The fast path's view of a model snapshot (``Switch.snapshot()``)."""
    plan = Plan()
    kinds = {ns["id"]: ns for ns in snapshot["namespaces"]}
    port_ids = {p["name"]: p["id"] for p in snapshot["ports"]}
    ns_port = {}
    for port in snapshot["ports"]:
        plan.ports[port["id"]] = (port["ns"], _mac_bytes(port["mac"]))
        ns_port.setdefault(port["ns"], port["id"])

    subnets = {}   # (scope, directed broadcast) -> L3 namespaces with an address on such a subnet
    for ns in snapshot["namespaces"]:
        is_l3 = ns["kind"] == "l3"
        scope = ns["parent"] if is_l3 else ns["id"]
        plan.namespaces[ns["id"]] = (scope, is_l3)
        for text in ns["addresses"]:
            iface = ipaddress.ip_interface(text)
            if iface.version != 4 or iface.ip.is_loopback:
                continue
            plan.addresses[(scope, int(iface.ip))] = ns["id"]
            plan.prefixes[(scope, int(iface.ip))] = iface.network.prefixlen
            if is_l3 and iface.network.prefixlen <= 30:
                bcast = int(iface.network.broadcast_address)
                subnets.setdefault((scope, bcast), set()).add(ns["id"])
    for key, members in subnets.items():
        plan.broadcasts[key] = tuple(sorted(members))

    # Multicast: the members of each IPv4 group, per scope.  Link-local groups
    # (224.0.0.0/24) reach the whole scope without a table entry (the model
    # refuses joining them; a snapshot from elsewhere may still hold one).
    members = {}
    for ns in snapshot["namespaces"]:
        scope = plan.namespaces[ns["id"]][0]
        for text in ns["groups"]:
            group = ipaddress.ip_address(text)
            if group.version == 4 and int(group) >> 8 != LINK_LOCAL_PREFIX:
                members.setdefault((scope, int(group)), []).append(ns["id"])
    plan.groups = {key: tuple(sorted(ids)) for key, ids in members.items()}

    for ns in snapshot["namespaces"]:
        if ns["kind"] != "l2":
            continue
        scope = ns["id"]
        for route in ns["routes"]:
            network = ipaddress.ip_network(route["dst"])
            if network.version != 4:
                continue
            gateway = int(ipaddress.ip_address(route["via"])) if route["via"] else 0
            if route["port"] is not None:
                port_id = port_ids[route["port"]]
            else:
                # A gateway that is one of the scope's tenants: out of its port.
                owner = plan.addresses.get((scope, gateway))
                port_id = ns_port.get(owner) if owner is not None and kinds[owner]["kind"] == "l3" else None
                if port_id is None:
                    key = (scope, int(network.network_address), network.prefixlen)
                    plan.unresolved[key] = (ns["name"], route["dst"],
                                            f"gateway {route['via']} is reachable through no port")
                    continue
            plan.routes[(scope, int(network.network_address), network.prefixlen)] = (port_id, gateway)
    return plan


class _Undo:
    """The writes of one sync, undone in reverse order when a later one fails."""

    def __init__(self):
        self.steps = []

    def do(self, write, undo):
        write()
        self.steps.append(undo)

    def rollback(self):
        for undo in reversed(self.steps):
            try:
                undo()
            except Exception:  # pragma: no cover - a rollback write of what was there before
                log.exception("rollback step failed")


class _PlanDiff:
    """Two whole plans as an ``Edit`` shows one update (the full sync's diff)."""

    def __init__(self, old, new):
        self.old_plan, self.new_plan = old, new
        self._users = None

    def changes(self, table):
        old, new = getattr(self.old_plan, table), getattr(self.new_plan, table)
        out = [(k, v, new.get(k, GONE)) for k, v in old.items() if new.get(k, GONE) != v]
        return out + [(k, GONE, v) for k, v in new.items() if k not in old]

    def old(self, table, key):
        return getattr(self.old_plan, table).get(key, GONE)

    def new(self, table, key):
        return getattr(self.new_plan, table).get(key, GONE)

    def port_users(self, port, before):
        """The routes out of ``port`` in the old (``before``) or the new plan."""
        if self._users is None:
            self._users = ({}, {})
            for index, plan in zip(self._users, (self.new_plan, self.old_plan)):
                for key, (pid, _) in plan.routes.items():
                    index.setdefault(pid, set()).add(key)
        return self._users[before].get(port, set())


class _EditDiff:
    """An incremental update's ``Edit`` with the lookups ``Compiler._apply`` needs."""

    def __init__(self, edit, builder):
        self.edit, self.builder = edit, builder
        self.changes, self.old = edit.changes, edit.old

    def new(self, table, key):
        return self.builder.tables[table].get(key, GONE)

    def port_users(self, port, before):
        now = self.builder.port_routes.get(port, set())
        if not before:
            return now
        changed = self.edit.before.get("routes", {})
        users = {k for k in now if k not in changed}          # unchanged: as they were
        users.update(k for k, v in changed.items() if v is not GONE and v[0] == port)
        return users


class Compiler:
    """Keeps a ``fastpath.Datapath`` running the model's current plan."""

    def __init__(self, switch, datapath):
        self.switch = switch
        self.datapath = datapath
        self._builder = PlanBuilder(Plan())
        self._full = True             # the next sync recompiles everything
        self._marks = set()           # what may differ from the plan since the last sync
        self._undoable = {}           # version -> marks of a change a rollback may undo
        self.synced_version = None
        ref = weakref.ref(self)

        def watcher(event, undone):
            compiler = ref()
            if compiler is None:
                unwatch()
            else:
                compiler._note(event, undone)

        def committed(event):
            compiler = ref()
            if compiler is None:
                unsubscribe()
            else:
                compiler._undoable.pop(event.version, None)
        unwatch = switch.watch(watcher)
        unsubscribe = switch.subscribe(committed)

    @property
    def plan(self):
        """The plan the datapath runs, updated in place by each sync (do not change
        it; assigning one makes the next sync diff the model's full plan against it)."""
        return self._builder.plan

    @plan.setter
    def plan(self, plan):
        self._builder = PlanBuilder(plan)
        self._full = True

    def _note(self, event, undone):
        """A change of the model (or its undoing): mark what it may touch."""
        if undone:
            marks = self._undoable.pop(event.version, None)
        else:
            try:
                marks = marks_of(self.switch._state, event)
            except Exception:         # pragma: no cover - an event this compiler misreads
                log.exception("cannot tell what %s touches: the next sync recompiles all",
                              event.kind)
                marks = None
            self._undoable[event.version] = marks
        if marks is None:
            self._full = True
        else:
            self._marks |= marks

    def sync(self, force=False):
        """Apply the model's changes since the last sync; returns the plan."""
        with self.switch._lock:       # the model's state is read, not copied
            return self._sync(force)

    def _sync(self, force):
        if force:
            self._full = True
        if not self._full and not self._marks:
            self.synced_version = self.switch.version
            return self.plan
        state = self.switch._state
        full, marks = self._full, self._marks
        self._full, self._marks = False, set()
        old_builder = self._builder
        if full:
            builder = PlanBuilder(Plan())
            builder.update(state, _everything(state))
            diff = _PlanDiff(old_builder.plan, builder.plan)
        else:
            builder = old_builder
            edit = builder.update(state, marks)
            diff = _EditDiff(edit, builder)
        undo = _Undo()
        try:
            with self.datapath.update():
                try:
                    self._apply(diff, undo)
                except BaseException:
                    undo.rollback()
                    raise
        except BaseException:
            if full:
                self._full = True
            else:
                edit.revert()
                self._marks |= marks
            raise
        self._builder = builder
        for key, _, why in diff.changes("unresolved"):
            if why is not GONE:
                log.warning("route %s in %s is not installed: %s", why[1], why[0], why[2])
        self.synced_version = self.switch.version
        return self.plan

    def _apply(self, diff, undo):
        """Removals first (what goes away or changes: routes, broadcasts, groups,
        addresses, ports, then namespaces, children first), then additions in the
        reverse order (namespaces parents first, ports, addresses, broadcasts,
        groups, routes)."""
        dp = self.datapath
        ports = diff.changes("ports")
        moved_ports = {p for p, old, new in ports
                       if old is not GONE and (new is GONE or new[0] != old[0])}
        routes = diff.changes("routes")
        stale = {k: old for k, old, _ in routes if old is not GONE}
        for pid in moved_ports:
            stale.update((k, diff.old("routes", k)) for k in diff.port_users(pid, True))
        for key, value in stale.items():
            undo.do(lambda k=key: dp.remove_route(*k),
                    lambda k=key, v=value: dp.add_route(*k, *v))
        broadcasts = diff.changes("broadcasts")
        for key, old, _ in broadcasts:
            if old is not GONE:
                undo.do(lambda k=key: dp.remove_broadcast(*k),
                        lambda k=key, v=old: dp.set_broadcast(*k, v))
        # A group whose members change is first narrowed to the members that stay
        # (it never names a namespace about to go) and set in full once the new
        # namespaces exist, so it keeps its entry (and its counters) throughout;
        # a group that goes, or keeps no member in between, is removed.
        groups = diff.changes("groups")
        interim = {}                     # group key -> its members between the phases
        for key, old, new in groups:
            if old is GONE:
                continue
            keep = tuple(n for n in (() if new is GONE else new)
                         if diff.old("namespaces", n) is not GONE
                         and diff.old("namespaces", n) == diff.new("namespaces", n))
            if keep == old:
                interim[key] = keep
            elif keep:
                interim[key] = keep
                undo.do(lambda k=key, v=keep: dp.set_group(*k, v),
                        lambda k=key, v=old: dp.set_group(*k, v))
            else:
                interim[key] = None
                undo.do(lambda k=key: dp.remove_group(*k),
                        lambda k=key, v=old: dp.set_group(*k, v))
        addresses = diff.changes("addresses")
        for key, old, _ in addresses:
            if old is not GONE:
                undo.do(lambda k=key: dp.remove_address(*k),
                        lambda k=key, v=old: dp.add_address(*k, v))
        old_ports = {p: old for p, old, _ in ports}
        for pid in moved_ports:
            undo.do(lambda p=pid: dp.remove_port(p),
                    lambda p=pid, v=old_ports[pid]: dp.set_port(p, *v))
        # Children (L3) before parents (L2), deepest ids last created first.
        namespaces = diff.changes("namespaces")
        for nid, old, _ in sorted((c for c in namespaces if c[1] is not GONE),
                                  key=lambda c: (not c[1][1], -c[0])):
            undo.do(lambda n=nid: dp.remove_namespace(n),
                    lambda n=nid, v=old: dp.set_namespace(n, *v))

        for nid, _, new in sorted((c for c in namespaces if c[2] is not GONE),
                                  key=lambda c: (c[2][1], c[0])):
            undo.do(lambda n=nid, v=new: dp.set_namespace(n, *v),
                    lambda n=nid: dp.remove_namespace(n))
        for pid, old, new in ports:
            if new is GONE:
                continue
            if old is not GONE and pid not in moved_ports:     # same namespace, new MAC
                undo.do(lambda p=pid, v=new: dp.set_port(p, *v),
                        lambda p=pid, v=old: dp.set_port(p, *v))
            else:
                undo.do(lambda p=pid, v=new: dp.set_port(p, *v),
                        lambda p=pid: dp.remove_port(p))
        for key, _, new in addresses:
            if new is not GONE:
                undo.do(lambda k=key, v=new: dp.add_address(*k, v),
                        lambda k=key: dp.remove_address(*k))
        for key, _, new in broadcasts:
            if new is not GONE:
                undo.do(lambda k=key, v=new: dp.set_broadcast(*k, v),
                        lambda k=key: dp.remove_broadcast(*k))
        for key, _, new in groups:
            if new is GONE:
                continue
            before = interim.get(key)
            if before == new:
                continue                 # narrowed to exactly its new members above
            undo.do(lambda k=key, v=new: dp.set_group(*k, v),
                    (lambda k=key, v=before: dp.set_group(*k, v)) if before
                    else (lambda k=key: dp.remove_group(*k)))
        fresh = {k: new for k, _, new in routes if new is not GONE}
        for pid in moved_ports:
            fresh.update((k, diff.new("routes", k)) for k in diff.port_users(pid, False))
        for key, value in fresh.items():
            undo.do(lambda k=key, v=value: dp.add_route(*k, *v),
                    lambda k=key: dp.remove_route(*k))


def _everything(state):
    """Marks covering the whole model (a full sync)."""
    marks = {("ns", ident) for ident in state.namespaces}
    marks |= {("scope", ident) for ident, record in state.namespaces.items() if record.kind == "l2"}
    return marks | {("port", pid) for pid in state.port_names}
