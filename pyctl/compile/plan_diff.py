"""A change of the plan applied to a ``fastpath.Datapath``: which entries moved
(``PlanDiff`` between two whole plans, ``EditDiff`` of one incremental update)
and the writes that install them, in an order the datapath accepts and that
never leaves a batch a dangling id (``apply_diff``), each recorded with its
undo so a refused write puts the datapath back (``Undo``).
"""
import logging

from pyctl.compile.plan import GONE

__all__ = ["PlanDiff", "EditDiff", "Undo", "apply_diff"]

log = logging.getLogger("tapswitch.compiler")


class Undo:
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


class PlanDiff:
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


class EditDiff:
    """An incremental update's ``Edit`` with the lookups ``apply_diff`` needs."""

    def __init__(self, edit):
        self.edit, self.index = edit, edit.index
        self.changes, self.old = edit.changes, edit.old

    def new(self, table, key):
        return self.index.tables[table].get(key, GONE)

    def port_users(self, port, before):
        """The routes out of ``port`` before or after the update."""
        now = self.index.port_routes.get(port, set())
        if not before:
            return now
        changed = self.edit.before.get("routes", {})
        users = {k for k in now if k not in changed}          # unchanged: as they were
        users.update(k for k, v in changed.items() if v is not GONE and v[0] == port)
        return users


def _set_namespace(dp, nid, value, directed):
    """Write a namespace back as it was, with its directed-broadcast flag (the removal
    cleared it)."""
    dp.set_namespace(nid, *value)
    if directed:
        dp.set_directed_broadcast(nid, True)


def _set_port(dp, pid, value):
    """Write a plan's port (namespace, MAC, dhcp_server, serve_dhcp[, MTU]) to the datapath."""
    ns, mac, dhcp_server, serve_dhcp, *mtu = value
    dp.set_port(pid, ns, mac, *mtu, dhcp_server=dhcp_server, serve_dhcp=serve_dhcp)


def apply_diff(dp, diff, undo):
    """Write ``diff`` into datapath ``dp``, each write recorded in ``undo``.

    Removals first (what goes away or changes: routes, broadcasts, multicast
    groups, addresses, ports, then namespaces, children first), then additions
    in the reverse order (namespaces parents first, ports, addresses, the scopes'
    directed-broadcast flags, broadcasts, multicast groups, routes)."""
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
    # A directed broadcast whose listeners change while each new one exists already is
    # rewritten in place (one write: its entry stays); one that goes, or gains a
    # namespace made in this diff, is removed here and set again below.
    broadcasts = diff.changes("broadcasts")
    in_place = set()
    for key, old, new in broadcasts:
        if old is GONE:
            continue
        if new is not GONE and all(diff.old("namespaces", n) is not GONE
                                   and diff.old("namespaces", n) == diff.new("namespaces", n)
                                   for n in new):
            in_place.add(key)
            undo.do(lambda k=key, v=new: dp.set_broadcast(*k, v),
                    lambda k=key, v=old: dp.set_broadcast(*k, v))
        else:
            undo.do(lambda k=key: dp.remove_broadcast(*k),
                    lambda k=key, v=old: dp.set_broadcast(*k, v))
    # A multicast group whose members change is first narrowed to the members that stay
    # (it never names a namespace about to go) and set in full once the new
    # namespaces exist, so it keeps its entry (and its counters) throughout;
    # a group that goes, or keeps no member in between, is removed.
    multicast = diff.changes("multicast")
    interim = {}                     # group key -> its members between the phases
    for key, old, new in multicast:
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
                    lambda k=key, v=old: dp.add_address(*k, *v))
    old_ports = {p: old for p, old, _ in ports}
    for pid in moved_ports:
        undo.do(lambda p=pid: dp.remove_port(p),
                lambda p=pid, v=old_ports[pid]: _set_port(dp, p, v))
    # Children (L3) before parents (L2), deepest ids last created first.
    namespaces = diff.changes("namespaces")
    for nid, old, _ in sorted((c for c in namespaces if c[1] is not GONE),
                              key=lambda c: (not c[1][1], -c[0])):
        undo.do(lambda n=nid: dp.remove_namespace(n),
                lambda n=nid, v=old, d=diff.old("directed", nid) is not GONE:
                _set_namespace(dp, n, v, d))

    for nid, _, new in sorted((c for c in namespaces if c[2] is not GONE),
                              key=lambda c: (c[2][1], c[0])):
        undo.do(lambda n=nid, v=new: dp.set_namespace(n, *v),
                lambda n=nid: dp.remove_namespace(n))
    for pid, old, new in ports:
        if new is GONE:
            continue
        if old is not GONE and pid not in moved_ports:     # same namespace, new MAC
            undo.do(lambda p=pid, v=new: _set_port(dp, p, v),
                    lambda p=pid, v=old: _set_port(dp, p, v))
        else:
            undo.do(lambda p=pid, v=new: _set_port(dp, p, v),
                    lambda p=pid: dp.remove_port(p))
    for key, _, new in addresses:
        if new is not GONE:
            undo.do(lambda k=key, v=new: dp.add_address(*k, *v),
                    lambda k=key: dp.remove_address(*k))
    # a namespace written again above (removed and set) lost its flag in the datapath
    directed = {scope: (old, new) for scope, old, new in diff.changes("directed")}
    directed.update((nid, (GONE, diff.new("directed", nid))) for nid, old, new in namespaces
                    if old is not GONE and new is not GONE
                    and diff.new("directed", nid) is not GONE and nid not in directed)
    for scope, (old, new) in sorted(directed.items()):
        if diff.new("namespaces", scope) is GONE:
            continue                 # the scope went, its flag with it
        undo.do(lambda s=scope, v=new is not GONE: dp.set_directed_broadcast(s, v),
                lambda s=scope, v=old is not GONE: dp.set_directed_broadcast(s, v))
    for key, _, new in broadcasts:
        if new is not GONE and key not in in_place:
            undo.do(lambda k=key, v=new: dp.set_broadcast(*k, v),
                    lambda k=key: dp.remove_broadcast(*k))
    for key, _, new in multicast:
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
