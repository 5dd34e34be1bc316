"""The test oracle of the compiler: the plan of a model snapshot, written from the
rules in docs/architecture.md straight over ``Switch.snapshot()``, sharing no code
with ``pyctl.compile`` (whose one set of rules works incrementally over the
model's read API).  A rule broken there shows up as a difference here."""
import ipaddress

from pyctl.compile.plan import Plan

LINK_LOCAL = ipaddress.ip_network("224.0.0.0/24")


def _fast_path(ip):
    return ip.version == 4 and not ip.is_loopback


def expected_plan(snapshot):
    """The fast path's tables for ``snapshot``, as a ``Plan``."""
    plan = Plan()
    by_id = {ns["id"]: ns for ns in snapshot["namespaces"]}
    port_ids = {p["name"]: p["id"] for p in snapshot["ports"]}
    first_port = {}
    for port in sorted(snapshot["ports"], key=lambda p: p["id"]):
        l3 = by_id[port["ns"]]["kind"] == "l3"
        served = l3 and (port["options"].get("kind") == "attach" or "address" not in port["options"])
        plan.ports[port["id"]] = (port["ns"], bytes.fromhex(port["mac"].replace(":", "")), served)
        first_port.setdefault(port["ns"], port["id"])

    def scope_of(ns):
        return ns["parent"] if ns["kind"] == "l3" else ns["id"]

    listeners, members = {}, {}
    for ns in snapshot["namespaces"]:
        scope, is_l3 = scope_of(ns), ns["kind"] == "l3"
        plan.namespaces[ns["id"]] = (scope, is_l3)
        for text in ns["addresses"]:
            iface = ipaddress.ip_interface(text)
            if not _fast_path(iface.ip):
                continue
            plan.addresses[(scope, int(iface.ip))] = ns["id"]
            if is_l3 and iface.network.prefixlen <= 30:
                key = (scope, int(iface.network.broadcast_address))
                listeners.setdefault(key, set()).add(ns["id"])
        for text in ns["groups"]:
            group = ipaddress.ip_address(text)
            if group.version == 4 and group not in LINK_LOCAL:
                members.setdefault((scope, int(group)), set()).add(ns["id"])
    plan.broadcasts = {key: tuple(sorted(ids)) for key, ids in listeners.items()}
    plan.multicast = {key: tuple(sorted(ids)) for key, ids in members.items()}

    for ns in snapshot["namespaces"]:
        for route in ns["routes"]:
            network = ipaddress.ip_network(route["dst"])
            if network.version != 4:
                continue
            key = (ns["id"], int(network.network_address), network.prefixlen)
            gateway = int(ipaddress.ip_address(route["via"])) if route["via"] else 0
            if route["port"] is not None:
                port = port_ids[route["port"]]
            else:                     # via a tenant (an L3) of the scope: out of its port
                owner = plan.addresses.get((ns["id"], gateway))
                tenant = owner is not None and by_id[owner]["kind"] == "l3"
                port = first_port.get(owner) if tenant else None
            if port is None:
                plan.unresolved[key] = (ns["name"], route["dst"],
                                        f"gateway {route['via']} is reachable through no port")
            else:
                plan.routes[key] = (port, gateway)
    return plan


def expected_view(snapshot):
    """What the slow path's ``PlanView`` answers for each port of ``snapshot``:
    ``{port id: ((ns, scope, is_l3), the ns's port ids, icmp source)}``, by scanning."""
    by_id = {ns["id"]: ns for ns in snapshot["namespaces"]}

    def v4(ns):
        return [i for i in map(ipaddress.ip_interface, ns["addresses"]) if _fast_path(i.ip)]

    out = {}
    for port in snapshot["ports"]:
        ns = by_id[port["ns"]]
        scope = ns["parent"] if ns["kind"] == "l3" else ns["id"]
        own = v4(by_id[scope])
        near = [int(o.ip) for o in own if ns["id"] != scope
                and any(mine.ip in o.network for mine in v4(ns))]
        source = min(near) if near else min((int(o.ip) for o in own), default=None)
        ports = sorted(p["id"] for p in snapshot["ports"] if p["ns"] == ns["id"])
        out[port["id"]] = ((ns["id"], scope, ns["kind"] == "l3"), ports, source)
    return out
