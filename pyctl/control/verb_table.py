"""THE verb table: every control verb, declared once (``pyctl.control.declare.Verb``).

From it come the control socket's argument checks and access gate
(``verbs.standard_dispatcher``, the daemon's verbs), `tapswitch ctl`'s
subcommands, arguments, help and renderers (``ctl``), the verb list of
docs/control.md (``verb_docs``) and the test rig's ``Topology`` verbs
(``pyctl.rig.verbs``).  The model's ``Switch`` / ``ActingContext`` methods of
the verbs ``served_by="model"`` are written by hand, with the names
(``Verb.py_name``) and argument orders declared here:
tests/control/test_verb_table.py fails when any of these views drifts.

A verb added here is served once something binds a handler to it: the model's
verbs and the server's in ``pyctl.control.verbs``, the daemon's in
``pyctl.daemon.daemon``.
"""
from __future__ import annotations

from typing import Any

from pyctl.control import render
from pyctl.control.declare import Columns, Param, Verb, json_or_text, keyvalue

__all__ = ["VERBS", "served_by"]

_NS = Param("namespace", "namespace", help="namespace name or id")
_NS_OPT = Param("namespace", "namespace", required=False,
                help="namespace name or id (default: the one this socket acts as)")
_ADDR = Param("address", "str", help="interface address A/N, e.g. 10.0.0.5/24")
_GROUP = Param("group", "str", help="multicast group address, e.g. 239.1.1.1 or ff05::1:3")
_VIA = Param("via", "str", required=False, option=True, help="next hop (gateway) address")
_PORT_OPT = Param("port", "port", required=False, option=True, help="a port of that L2")
_PREFIX = Param("prefix", "str", help="A/N, or default (0.0.0.0/0; ::/0 with an IPv6 via)")



def _port_option(text: str) -> tuple[str, Any]:
    """``-o KEY=VALUE`` of port-add: offloads is a comma list, and so are address and
    gateway when they hold a comma (``address=10.0.0.5/24,fd00::5/64``); other values
    JSON or text."""
    key, value = keyvalue(text, "port option ")
    if key == "offloads":
        return key, [v for v in value.split(",") if v]
    if key in ("address", "gateway") and "," in value and not value.startswith("["):
        return key, [v for v in value.split(",") if v]
    return key, json_or_text(value)


def _namespace_option(text: str) -> tuple[str, Any]:
    """``-o KEY=VALUE`` of namespace-set: values JSON or text (``advertise=true``,
    ``directed_broadcast=true``)."""
    key, value = keyvalue(text, "namespace option ")
    return key, json_or_text(value)


def _quota_item(text: str) -> tuple[str, Any]:
    """``-q KEY=LIMIT`` of quota-set: an integer, or ``none`` (no quota of its own)."""
    key, value = keyvalue(text, "quota ")
    return key, None if value.lower() in ("none", "null") else json_or_text(value)


_TABLE = (
    # -- about the connection ---------------------------------------------------
    Verb("ping", summary="check that the daemon answers", result='`"pong"`', render=str),
    Verb("version", summary="tapswitch and protocol versions, model version",
         result="`{tapswitch, protocol, model_version}` (`model_version`: the admin's; it "
                "counts every change of the switch)", render=render.pairs),
    Verb("whoami", summary="the namespace this socket acts as, and your credentials",
         result="`{namespace, id, kind, admin, scope, socket, peer: {pid, uid, gid}}`",
         render=render.pairs),
    Verb("verbs", summary="every verb with its arguments",
         result="every verb with its parameters and access", render=render.verbs),
    # -- namespaces -------------------------------------------------------------
    Verb("namespaces", served_by="model", rig=True, summary="visible namespaces, parents first",
         result="`[{id, name, kind, parent, parent_name}]`, parents first",
         render=render.namespaces),
    Verb("show", [_NS_OPT], summary="one namespace: addresses, routes, ports, groups",
         result="one namespace with `scope`, `children`, `addresses`, `routes`, `ports`, "
                "`groups`, `options` (its scope's), `netns` (kernel namespaces delegated to "
                "an L2)", render=render.show),
    Verb("create", [Param("name", "str", help="the new namespace's name"),
                    Param("kind", "str", choices=("l2", "l3"), help="l2 or l3"),
                    Param("parent", "namespace", required=False, option=True,
                          help="its parent L2 (default: the root, or the socket's L2)")],
         access="config", served_by="model", summary="create a namespace",
         result="the new namespace (`parent` defaults to the root, or the socket's L2)",
         render=render.quiet),
    Verb("namespace-set", [_NS, Param("options", "object", required=False, flags=("--option", "-o"),
                                      item=_namespace_option,
                                      help="KEY=VALUE, repeated: advertise=true (IPv6 router "
                                           "advertisements on the L2's links), "
                                           "directed_broadcast=true (let routed directed "
                                           "broadcasts in, RFC 2644)")],
         access="config", served_by="model", rig=True,
         summary="set options of an L2 (the keys given; the others stay)",
         result="null (see `show`: `options`)", render=render.quiet),
    Verb("netns-delegate", [_NS, Param("netns", "str", help="a kernel network namespace name")],
         access="config", served_by="model", rig=True,
         summary="let an L2's clients put ports into a kernel namespace",
         result="null (see `show`: `netns`; docs/security.md)", render=render.quiet),
    Verb("netns-revoke", [_NS, Param("netns", "str", help="a kernel network namespace name")],
         access="config", served_by="model", rig=True,
         summary="take a delegated kernel namespace back (no port may use it)",
         result="null", render=render.quiet),
    Verb("destroy", [_NS, Param("recursive", "bool", required=False, default=False,
                                flags=("--recursive", "-r"), help="with its whole subtree")],
         access="config", served_by="model", rig=True,
         summary="destroy a namespace (an L3's addresses return to its parent)",
         result="null; an L3's addresses return to its parent", render=render.quiet),
    # -- addresses --------------------------------------------------------------
    Verb("addresses", [_NS_OPT, Param("tagged", "bool", required=False, default=False,
                                      flags=("--tagged", "-t"),
                                      help="also the descendants' addresses, tagged")],
         served_by="model", rig=True, summary="addresses of a namespace (loopback included)",
         result='`["127.0.0.1/8", "::1/128", "10.1.0.10/24"]`; tagged: `[{address, owner}]` '
                "including descendants'", render=render.addresses),
    Verb("address-add", [_NS, _ADDR], access="config", served_by="model", rig=True,
         summary="create an address in an L2",
         result="null (addresses are created in an L2)", render=render.quiet),
    Verb("address-del", [_NS, _ADDR], access="config", served_by="model", rig=True,
         summary="delete an address of an L2", result="null (it must hold it, not a child)",
         render=render.quiet),
    Verb("push", [_ADDR, _NS], access="config", served_by="model", rig=True,
         summary="move an address of the parent L2 into an L3",
         result="null (from the L3's parent into the L3)", render=render.quiet),
    Verb("pull", [_ADDR, _NS], access="config", served_by="model", rig=True,
         summary="give an L3's address back to its parent",
         result="null (from the L3 back to its parent)", render=render.quiet),
    Verb("assign-and-push", [_ADDR, _NS], access="config", served_by="model", rig=True,
         summary="create an address in the parent and push it, in one step",
         result="null (the parent never holds it)", render=render.quiet),
    Verb("owner", [Param("address", "str", help="an IP address, e.g. 10.0.0.5"), _NS_OPT],
         served_by="model", rig=True, summary="which namespace holds an IP in a scope",
         result="the name of the namespace holding that IP in the scope, or null",
         render=render.inline),
    # -- routes -----------------------------------------------------------------
    Verb("routes", [_NS_OPT], served_by="model", rig=True,
         summary="routes a namespace uses (an L3: its parent's)",
         result="`[{dst, via, port, connected}]` (an L3: its parent's); `connected`: the "
                "subnet of an own IPv4 address", render=render.routes),
    Verb("route-add", [_NS, _PREFIX, _VIA, _PORT_OPT],
         access="config", served_by="model", rig=True, summary="add a route to an L2",
         result="the route (`prefix` may be `default`: 0.0.0.0/0, or ::/0 with an IPv6 `via`)",
         render=render.quiet),
    Verb("route-replace", [_NS, _PREFIX, _VIA, _PORT_OPT],
         access="config", served_by="model", rig=True,
         summary="change a route in one step (added if absent)",
         result="the route; the fast path sees the old one or the new, never none",
         render=render.quiet),
    Verb("route-del", [_NS, _PREFIX, _VIA, _PORT_OPT],
         access="config", served_by="model", rig=True, summary="delete a route of an L2",
         result="null", render=render.quiet),
    # -- ports ------------------------------------------------------------------
    Verb("ports", [Param("namespace", "namespace", required=False,
                         help="namespace name or id (default: every visible port)")],
         served_by="model", rig=True,
         summary="ports, their options and, under a daemon, their state",
         result="`[{id, name, ns, namespace, mac, options}]` (default: every visible port); "
                "the daemon adds `state` (`up`, `failed` with `error`, `missing`) and "
                "`kind` (how it is served: `auto` resolved); an up port also `tx_cost_us` "
                "(what writing a frame to it costs the packet thread), `tx_cost_excess_us` (what "
                "writing to it took beyond the limit, not yet paid back), `tx_cost_held` and "
                "`tx_cost_drops` ([security.md](security.md#a-tenants-own-stack-what-writing-to-it-costs))",
         render=render.ports),
    Verb("port-add", [Param("name", "str", help="interface name, at most 15 characters"), _NS,
                      Param("mac", "str", required=False, option=True,
                            help="default: generated, locally administered"),
                      Param("options", "object", required=False, flags=("--option", "-o"),
                            item=_port_option,
                            help="KEY=VALUE, repeated: kind=tap|veth|xdp|attach|auto, "
                                 "vnet_hdr=true, offloads=csum,tso4, txqueuelen=10000, mtu, "
                                 "netns, address=10.0.0.5/24,fd00::5/64, "
                                 "gateway=10.0.0.1,fd00::1, router=true, dhcp_lease_time, "
                                 "ring_frames=4096")],
         access="config", served_by="model", rig=True, summary="attach a port to a namespace",
         result="the port; options as in the config file", render=render.quiet),
    Verb("port-del", [Param("name", "port", help="port name or id")], access="config",
         served_by="model", rig=True, summary="remove a port", result="null", render=render.quiet),
    # -- multicast membership ---------------------------------------------------
    Verb("join", [_GROUP, _NS_OPT], access="member", served_by="model", rig=True,
         summary="join a multicast group (an L3 may, for itself)", result="null",
         render=render.quiet),
    Verb("leave", [_GROUP, _NS_OPT], access="member", served_by="model", rig=True,
         summary="leave a multicast group", result="null", render=render.quiet),
    Verb("groups", [_NS_OPT], served_by="model", rig=True,
         summary="multicast groups of a namespace", result='`["239.1.1.1"]`',
         render=render.lines),
    Verb("members", [_GROUP, _NS_OPT], served_by="model", rig=True,
         summary="members of a multicast group in a scope",
         result="names of the members in the scope", render=render.lines),
    # -- quotas -----------------------------------------------------------------
    Verb("quota-set", [_NS, Param("limits", "object", required=False, flags=("--quota", "-q"),
                                  item=_quota_item,
                                  help="KEY=LIMIT, repeated: namespaces, addresses, routes, "
                                       "ports, groups, sockets; LIMIT none removes it")],
         access="config", served_by="model", rig=True,
         summary="set quotas of an L2 below this one (all or none)",
         result="null (never more than its parent allows, nor less than it holds)",
         render=render.quiet),
    Verb("quota", [_NS_OPT], served_by="model", rig=True,
         summary="an L2's quotas, what its subtree holds, the tightest limit above it",
         result="`{namespace, quota: {key: limit}, usage: {key: n}, effective: {key: limit}}`",
         render=render.quota),
    # -- namespace control sockets ------------------------------------------------
    Verb("sockets", summary="namespace control sockets that are open",
         result="`[{namespace, path}]` of the visible namespace sockets",
         render=Columns((("NAMESPACE", "namespace"), ("PATH", "path")))),
    Verb("socket-add", [_NS], access="config",
         summary="open a control socket acting as a namespace", result="`{namespace, path}`",
         render=render.socket_path),
    Verb("socket-del", [_NS], access="config", summary="close a namespace's control socket",
         result="null", render=render.quiet),
    # -- the daemon's -----------------------------------------------------------
    Verb("counters", [Param("namespace", "namespace", required=False,
                            help="only this namespace and its ports (default: every visible one)"),
                      Param("port", "port", required=False, option=True,
                            flags=("--port", "-p"), help="only this port"),
                      Param("format", "str", required=False, option=True,
                            choices=("json", "prometheus"),
                            help="prometheus: the Prometheus text format (docs/operations.md)")],
         served_by="daemon", rig=True, summary="packet and drop counters",
         result="`{namespaces: {name: {rx_packets, rx_bytes, tx_packets, tx_bytes, reasons, "
                "drops, slowpath, slow_refused, slowpath_drops}}, "
                "ports: {name: {namespace, rx_packets, ...}}, reasons, "
                "groups: {scope: {group: {rx_packets, rx_bytes, copies}}}}` (below); "
                "with `format` `prometheus`: the metrics of what the socket sees, as text",
         render=render.counters),
    Verb("multicast", served_by="daemon",
         summary="group memberships: learned (with expiry) or configured",
         result="`{scope: {group: [{namespace, origin: learned\\|configured, expires_in}]}}` "
                "(docs/multicast.md)", render=render.multicast),
    Verb("reload", [Param("dry_run", "bool", required=False, default=False,
                          flags=("--dry-run", "-n"), help="say what would change, change nothing")],
         access="admin", served_by="daemon",
         summary="re-read the topology file and apply what changed, in one step",
         result="`{file, dry_run, changed: [what changed, [daemon.slowpath] and "
                "[daemon.control] limits, [daemon] metrics and tx_cost_* included], sockets: {opened, closed}, "
                "restart_needed: [[daemon] keys that take effect at the next start], ms}`; "
                "a file with errors: the refusal with every error, nothing changed",
         render=render.reload),
    # -- the switch-side capture (`tapswitch ctl capture` is its client) --------
    Verb("capture-start", [Param("target", "str", help="a port, or a namespace (its ports)"),
                           Param("drops", "bool", required=False, default=False,
                                 flags=("--drops",), help="the frames dropped, with the reason")],
         served_by="daemon", summary="start a switch-side capture of a port or a namespace",
         result="`{id, target, drops, ports}` (docs/operations.md); an L3's socket: its own "
                "traffic only", render=render.generic),
    Verb("capture-read", [Param("id", "int", help="the capture's id")], served_by="daemon",
         summary="the frames a capture copied since the last read",
         result="`{frames: [{port, direction: in\\|out\\|drop, reason, ts_ns, length, data "
                "(base64)}], more, lost, ring_overflow, ports}`", render=render.generic),
    Verb("capture-stop", [Param("id", "int", help="the capture's id")], served_by="daemon",
         summary="end a capture", result="`{seen, lost}`", render=render.generic),
    Verb("stats", served_by="daemon", rig=True,
         summary="the packet loop's, slow path's, IGMP/MLD snooper's and DHCP servers' counters",
         result="the packet loop's, slow path's (ARP, ND, ICMP, ICMPv6), IGMP/MLD snooper's "
                "(`igmp`: `igmp_*`, `mld_*`) and DHCP servers' (`dhcp`, `dhcp6`) counters, the ring "
                "ports' own (`rings`: by port name, with each receive ring's size, `rx_slots`), "
                "what the "
                "slow path holds (`slowpath_holds`: neighbours, stale ones, resolutions, waiting "
                "bytes, ICMP buckets), `capture` (the capture ring: on, copied, overflow; captures), "
                "`ports_up`, `ports_failed`, uptime, `control`, and per namespace what the slow "
                "path dropped of its frames (`slowpath_drops`); a namespace socket's client: its "
                "subtree's `ports_up`, `ports_failed`, `slowpath_drops`, uptime and its socket's "
                "`control` line",
                render=render.generic),
)

VERBS: dict[str, Verb] = {verb.name: verb for verb in _TABLE}
if len(VERBS) != len(_TABLE):
    raise ValueError("a verb is declared twice")


def served_by(who: str, table: dict[str, Verb] | None = None) -> list[Verb]:
    """The verbs ``who`` ("model", "server", "daemon") answers, in table order."""
    return [v for v in (VERBS if table is None else table).values() if v.served_by == who]
