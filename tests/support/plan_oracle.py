"""The test oracle of the compiler: the plan of a model snapshot, written from the
rules in docs/architecture.md straight over ``Switch.snapshot()``, sharing no code
with ``pyctl.compile`` (whose one set of rules works incrementally over the
model's read API).  A rule broken there shows up as a difference here."""
import ipaddress

from pyctl.compile.plan import Plan

LINK_LOCAL = ipaddress.ip_network("224.0.0.0/24")
SOLICITED_NODE = ipaddress.ip_network("ff02::1:ff00:0/104")


def _fast_path(ip, families=(4,)):
    return ip.version in families and not ip.is_loopback and not ip.is_link_local


def _key(ip):
    """IPv4 as a host-order int, IPv6 as the address itself."""
    return int(ip) if ip.version == 4 else ip


def _listed(value):
    """A port option of one string or a list, as a list (none: empty)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _joined(group, families):
    """A group a table holds: not 224.0.0.0/24, not an IPv6 scope of link or below."""
    if group.version not in families:
        return False
    if group.version == 4:
        return group not in LINK_LOCAL
    return int(group.packed[1]) & 0xF > 2


def expected_plan(snapshot, families=(4, 6)):
    """The fast path's tables for ``snapshot``, as a ``Plan`` (of the IP versions
    ``families``: what the datapath takes)."""
    plan = Plan()
    by_id = {ns["id"]: ns for ns in snapshot["namespaces"]}
    port_ids = {p["name"]: p["id"] for p in snapshot["ports"]}
    first_port = {}
    for port in sorted(snapshot["ports"], key=lambda p: p["id"]):
        options = port["options"]
        server = options.get("dhcp_server", False)
        served = (by_id[port["ns"]]["kind"] == "l3" and not server
                  and (options.get("kind") == "attach" or "address" not in options))
        plan.ports[port["id"]] = (port["ns"], bytes.fromhex(port["mac"].replace(":", "")),
                                  server, served)
        if 6 in families:             # a datapath with IPv6 bounds its frames by the port's MTU
            plan.ports[port["id"]] += (port["options"].get("mtu", 1500),)
        first_port.setdefault(port["ns"], port["id"])

    def scope_of(ns):
        return ns["parent"] if ns["kind"] == "l3" else ns["id"]

    listeners, members = {}, {}
    for ns in snapshot["namespaces"]:
        scope, is_l3 = scope_of(ns), ns["kind"] == "l3"
        plan.namespaces[ns["id"]] = (scope, is_l3)
        if ns.get("options", {}).get("directed_broadcast"):
            plan.directed[ns["id"]] = True
        for text in ns["addresses"]:
            iface = ipaddress.ip_interface(text)
            if not _fast_path(iface.ip, families):
                continue
            plan.addresses[(scope, _key(iface.ip))] = (ns["id"], iface.network.prefixlen)
            if is_l3 and iface.version == 4 and iface.network.prefixlen <= 30:
                key = (scope, int(iface.network.broadcast_address))
                listeners.setdefault(key, set()).add(ns["id"])
            if is_l3 and iface.version == 6:       # the solicited-node group of its address
                group = SOLICITED_NODE[int(iface.ip) & 0xFFFFFF]
                members.setdefault((scope, group), set()).add(ns["id"])
        for text in ns["groups"]:
            group = ipaddress.ip_address(text)
            if _joined(group, families):
                members.setdefault((scope, _key(group)), set()).add(ns["id"])
    plan.broadcasts = {key: tuple(sorted(ids)) for key, ids in listeners.items()}
    plan.multicast = {key: tuple(sorted(ids)) for key, ids in members.items()}

    for ns in snapshot["namespaces"]:
        given = {ipaddress.ip_network(r["dst"]) for r in ns["routes"]}
        for text in ns["addresses"] if ns["kind"] == "l2" else ():
            network = ipaddress.ip_interface(text).network     # connected, unless given
            if (network in given or network.prefixlen == network.max_prefixlen
                    or not _fast_path(network.network_address, families)):
                continue
            leading = [p["id"] for p in snapshot["ports"] if p["ns"] == ns["id"]
                       and any(ipaddress.ip_interface(a).ip in network
                               for a in _listed(p["options"].get("address")))]
            if leading:
                plan.routes[(ns["id"], _key(network.network_address), network.prefixlen)] = \
                    (min(leading), 0 if network.version == 4 else None)
        for route in ns["routes"]:
            network = ipaddress.ip_network(route["dst"])
            if network.version not in families:
                continue
            key = (ns["id"], _key(network.network_address), network.prefixlen)
            if route["via"]:
                gateway = _key(ipaddress.ip_address(route["via"]))
            else:
                gateway = 0 if network.version == 4 else None
            if route["port"] is not None:
                port = port_ids[route["port"]]
            else:                     # via a tenant (an L3) of the scope: out of its port
                owner = plan.addresses.get((ns["id"], gateway), (None,))[0]
                tenant = owner is not None and by_id[owner]["kind"] == "l3"
                port = first_port.get(owner) if tenant else None
            if port is None:
                plan.unresolved[key] = (ns["name"], route["dst"],
                                        f"gateway {route['via']} is reachable through no port")
            else:
                plan.routes[key] = (port, gateway)
    return plan


def expected_view(snapshot, version=4):
    """What the slow path's ``PlanView`` answers for each port of ``snapshot``:
    ``{port id: ((ns, scope, is_l3), the ns's port ids, icmp source of family
    version)}``, by scanning."""
    by_id = {ns["id"]: ns for ns in snapshot["namespaces"]}

    def held(ns):
        return [i for i in map(ipaddress.ip_interface, ns["addresses"])
                if _fast_path(i.ip, (version,))]

    out = {}
    for port in snapshot["ports"]:
        ns = by_id[port["ns"]]
        scope = ns["parent"] if ns["kind"] == "l3" else ns["id"]
        own = held(by_id[scope])
        near = [o.ip for o in own if ns["id"] != scope
                and any(mine.ip in o.network for mine in held(ns))]
        source = min(near) if near else min((o.ip for o in own), default=None)
        ports = sorted(p["id"] for p in snapshot["ports"] if p["ns"] == ns["id"])
        out[port["id"]] = ((ns["id"], scope, ns["kind"] == "l3"), ports,
                           None if source is None else _key(source))
    return out
