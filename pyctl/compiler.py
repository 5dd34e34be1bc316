"""Compile the model (pyctl's truth) into the fast path's tables.

``compile_plan(snapshot)`` turns a model snapshot into a ``Plan``: passive,
comparable data in the fast path's terms (ids, host-order IPv4 ints, MAC
bytes).  ``Compiler.sync()`` applies the difference between the plan the
datapath runs and the model's current one, inside ``datapath.update()``, so a
batch sees either all of a change or none of it (Snabb's "apply the diff").

If the datapath refuses a write (a table full), every write already made in
this sync is undone in reverse order and the error goes on: the datapath is
left running the previous plan.  Call ``sync()`` inside the model's
``transaction()`` and the model is rolled back too.

Only IPv4 reaches the fast path; IPv6 addresses stay in the model.
"""
import ipaddress
import logging
from dataclasses import dataclass, field

log = logging.getLogger("tapswitch.compiler")

__all__ = ["Plan", "compile_plan", "Compiler"]


@dataclass
class Plan:
    namespaces: dict = field(default_factory=dict)   # ns id -> (scope id, is_l3)
    ports: dict = field(default_factory=dict)        # port id -> (ns id, mac bytes)
    addresses: dict = field(default_factory=dict)    # (scope, ip) -> owner ns id
    prefixes: dict = field(default_factory=dict)     # (scope, ip) -> prefix length (not a table)
    broadcasts: dict = field(default_factory=dict)   # (scope, directed bcast ip) -> tuple(ns ids)
    routes: dict = field(default_factory=dict)       # (scope, prefix, plen) -> (port id, gateway ip)
    groups: dict = field(default_factory=dict)       # (scope, group ip) -> tuple(member ns ids)
    unresolved: list = field(default_factory=list)   # routes of the model the datapath cannot use (why)


_LINK_LOCAL_PREFIX = 0xE00000      # 224.0.0.0/24, as ip >> 8


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

    subnets = {}   # (scope, network) -> L3 namespaces with an address in it
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
                subnets.setdefault((scope, iface.network), set()).add(ns["id"])
    for (scope, network), members in subnets.items():
        plan.broadcasts[(scope, int(network.broadcast_address))] = tuple(sorted(members))

    # Multicast: the members of each IPv4 group, per scope.  Link-local groups
    # (224.0.0.0/24) reach the whole scope without a table entry (the model
    # refuses joining them; a snapshot from elsewhere may still hold one).
    members = {}
    for ns in snapshot["namespaces"]:
        scope = plan.namespaces[ns["id"]][0]
        for text in ns["groups"]:
            group = ipaddress.ip_address(text)
            if group.version == 4 and int(group) >> 8 != _LINK_LOCAL_PREFIX:
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
                    plan.unresolved.append((ns["name"], route["dst"],
                                            f"gateway {route['via']} is reachable through no port"))
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


class Compiler:
    """Keeps a ``fastpath.Datapath`` running the model's current plan."""

    def __init__(self, switch, datapath):
        self.switch = switch
        self.datapath = datapath
        self.plan = Plan()
        self.synced_version = None

    def sync(self, force=False):
        """Apply the model's changes since the last sync; returns the new plan."""
        if not force and self.synced_version == self.switch.version:
            return self.plan
        new = compile_plan(self.switch.snapshot())
        undo = _Undo()
        with self.datapath.update():
            try:
                self._apply(self.plan, new, undo)
            except BaseException:
                undo.rollback()
                raise
        for name, dst, why in new.unresolved:
            if (name, dst, why) not in self.plan.unresolved:
                log.warning("route %s in %s is not installed: %s", dst, name, why)
        self.plan = new
        self.synced_version = self.switch.version
        return new

    def _apply(self, old, new, undo):
        """Removals first (what goes away or changes: routes, broadcasts, groups,
        addresses, ports, then namespaces, children first), then additions in the
        reverse order (namespaces parents first, ports, addresses, broadcasts,
        groups, routes)."""
        dp = self.datapath

        def gone(table_old, table_new):
            return [k for k, v in table_old.items() if table_new.get(k) != v]

        def fresh(table_old, table_new):
            return [k for k, v in table_new.items() if table_old.get(k) != v]

        moved_ports = {p for p in gone(old.ports, new.ports)
                       if p not in new.ports or new.ports[p][0] != old.ports[p][0]}
        stale_routes = set(gone(old.routes, new.routes))
        stale_routes |= {k for k, (port, _) in old.routes.items() if port in moved_ports}
        for key in stale_routes:
            undo.do(lambda k=key: dp.remove_route(*k),
                    lambda k=key, v=old.routes[key]: dp.add_route(*k, *v))
        for key in gone(old.broadcasts, new.broadcasts):
            undo.do(lambda k=key: dp.remove_broadcast(*k),
                    lambda k=key, v=old.broadcasts[key]: dp.set_broadcast(*k, v))
        # A group whose members change is first narrowed to the members that stay
        # (it never names a namespace about to go) and set in full once the new
        # namespaces exist, so it keeps its entry (and its counters) throughout;
        # a group that goes, or keeps no member in between, is removed.
        interim = {}                     # group key -> its members between the phases
        for key in gone(old.groups, new.groups):
            keep = tuple(n for n in new.groups.get(key, ())
                         if n in old.namespaces and old.namespaces[n] == new.namespaces.get(n))
            if keep == old.groups[key]:
                interim[key] = keep
            elif keep:
                interim[key] = keep
                undo.do(lambda k=key, v=keep: dp.set_group(*k, v),
                        lambda k=key, v=old.groups[key]: dp.set_group(*k, v))
            else:
                interim[key] = None
                undo.do(lambda k=key: dp.remove_group(*k),
                        lambda k=key, v=old.groups[key]: dp.set_group(*k, v))
        for key in gone(old.addresses, new.addresses):
            undo.do(lambda k=key: dp.remove_address(*k),
                    lambda k=key, v=old.addresses[key]: dp.add_address(*k, v))
        for pid in moved_ports:
            undo.do(lambda p=pid: dp.remove_port(p),
                    lambda p=pid, v=old.ports[pid]: dp.set_port(p, *v))
        # Children (L3) before parents (L2), deepest ids last created first.
        for nid in sorted(gone(old.namespaces, new.namespaces),
                          key=lambda n: (not old.namespaces[n][1], -n)):
            undo.do(lambda n=nid: dp.remove_namespace(n),
                    lambda n=nid, v=old.namespaces[nid]: dp.set_namespace(n, *v))

        for nid in sorted(fresh(old.namespaces, new.namespaces),
                          key=lambda n: (new.namespaces[n][1], n)):
            undo.do(lambda n=nid, v=new.namespaces[nid]: dp.set_namespace(n, *v),
                    lambda n=nid: dp.remove_namespace(n))
        for pid in fresh(old.ports, new.ports):
            if pid in old.ports and pid not in moved_ports:     # same namespace, new MAC
                undo.do(lambda p=pid, v=new.ports[pid]: dp.set_port(p, *v),
                        lambda p=pid, v=old.ports[pid]: dp.set_port(p, *v))
            else:
                undo.do(lambda p=pid, v=new.ports[pid]: dp.set_port(p, *v),
                        lambda p=pid: dp.remove_port(p))
        for key in fresh(old.addresses, new.addresses):
            undo.do(lambda k=key, v=new.addresses[key]: dp.add_address(*k, v),
                    lambda k=key: dp.remove_address(*k))
        for key in fresh(old.broadcasts, new.broadcasts):
            undo.do(lambda k=key, v=new.broadcasts[key]: dp.set_broadcast(*k, v),
                    lambda k=key: dp.remove_broadcast(*k))
        for key in fresh(old.groups, new.groups):
            before = interim.get(key)
            if before == new.groups[key]:
                continue                 # narrowed to exactly its new members above
            undo.do(lambda k=key, v=new.groups[key]: dp.set_group(*k, v),
                    (lambda k=key, v=before: dp.set_group(*k, v)) if before
                    else (lambda k=key: dp.remove_group(*k)))
        routes = set(fresh(old.routes, new.routes))
        routes |= {k for k, (port, _) in new.routes.items() if port in moved_ports}
        for key in routes:
            undo.do(lambda k=key, v=new.routes[key]: dp.add_route(*k, *v),
                    lambda k=key: dp.remove_route(*k))
