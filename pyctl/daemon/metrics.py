"""The daemon's metrics in the Prometheus text format (``pyctl.ops.exposition``): what
`tapswitch ctl counters --format prometheus` prints and the HTTP listener serves.

``exposition(daemon, api, counters)`` writes the families of what ``api`` sees
(``counters`` is ``Daemon.counters``' result for it, already limited and filtered):

- every socket: per namespace the frames and bytes in and out, the drops by reason and,
  apart, the slow-path hand-offs by kind and what the slow path dropped; per port the
  same traffic and whether it is up; the multicast groups' traffic; the control
  operations by namespace, verb and result;
- the admin only (the admin socket, and the HTTP listener, which is admin-level): the
  switch-wide drops and hand-offs, the packet loop's I/O counters and virtio-net header
  refusals, the slow path's and the IGMP snooper's counters and holdings, the tables'
  sizes and limits, the ports up and failed, the uptime.

A namespace's socket so sees only its own series (an L2's: its subtree's).  Names follow
the JSON of ``counters``: ``tapswitch_namespace_rx_packets_total`` is ``rx_packets`` (the
frames the switch received from the namespace).
"""
from __future__ import annotations

import time

from fastpath import reasons as reason_table
from pyctl.control.counters import split
from pyctl.ops.exposition import CONTENT_TYPE, Family, render

__all__ = ["exposition", "CONTENT_TYPE"]

_TRAFFIC_HELP = {
    "rx_packets": "frames the switch received from {what}",
    "rx_bytes": "bytes the switch received from {what}",
    "tx_packets": "frames (and fan-out copies) the switch sent to {what}",
    "tx_bytes": "bytes the switch sent to {what}",
}


def _traffic(kind: str, rows: dict, labels) -> list[Family]:
    out = []
    for key, text in _TRAFFIC_HELP.items():
        family = Family(f"tapswitch_{kind}_{key}_total", "counter", text.format(what=f"the {kind}"))
        for name, value in rows.items():
            family.add(value[key], **labels(name, value))
        out.append(family)
    return out


def _namespaces(counters: dict) -> list[Family]:
    rows = counters["namespaces"]
    out = _traffic("namespace", rows, lambda name, _: {"namespace": name})
    drops = Family("tapswitch_namespace_drops_total", "counter",
                   "frames the namespace sent that the switch dropped, by reason")
    slow = Family("tapswitch_namespace_slowpath_total", "counter",
                  "frames the namespace sent that went to the slow path, by kind (not drops)")
    slow_drops = Family("tapswitch_namespace_slowpath_drops_total", "counter",
                        "frames the namespace sent that the slow path dropped (or whose ICMP "
                        "error it did not send), by event")
    for name, value in rows.items():
        dropped, handed = split(value.get("reasons", {}))
        for reason, n in sorted(dropped.items()):
            drops.add(n, namespace=name, reason=reason)
        for kind, n in sorted(handed.items()):
            slow.add(n, namespace=name, kind=kind)
        for event, n in sorted(value.get("slowpath_drops", {}).items()):
            slow_drops.add(n, namespace=name, event=event)
    return out + [drops, slow, slow_drops]


def _ports(daemon, api, counters: dict) -> list[Family]:
    rows = counters["ports"]
    out = _traffic("port", rows, lambda name, value: {"port": name, "namespace": value["namespace"]})
    up = Family("tapswitch_port_up", "gauge", "1 while the port's TAP forwards, 0 when it failed "
                                             "or could not be opened")
    cost = Family("tapswitch_port_tx_cost_seconds", "gauge", "what writing a frame to the port "
                  "costs the packet thread (its tenant's stack runs in the write), estimated")
    excess = Family("tapswitch_port_tx_cost_excess_seconds", "gauge", "what writing to the "
                    "port took beyond the limit and has not paid back (held over 20 ms)")
    held = Family("tapswitch_port_tx_cost_held", "gauge", "1 while the port is held to its "
                  "share of the packet thread for what its frames cost (docs/security.md)")
    drops = Family("tapswitch_port_tx_cost_drops_total", "counter",
                   "frames to the port dropped while it was held")
    ids = {p.name: p.id for p in api.ports()}
    for name, value in rows.items():
        status = daemon.ports.status(ids[name], with_cost=True) if name in ids else {}
        labels = {"port": name, "namespace": value["namespace"]}
        up.add(int(status.get("state") == "up"), **labels)
        if "tx_cost_us" in status:
            cost.add(status["tx_cost_us"] / 1e6, **labels)
            excess.add(status["tx_cost_excess_us"] / 1e6, **labels)
            held.add(int(status["tx_cost_held"]), **labels)
            drops.add(status["tx_cost_drops"], **labels)
    return out + [up, cost, excess, held, drops]


def _groups(counters: dict) -> list[Family]:
    families = {key: Family(f"tapswitch_group_{name}", "counter", text) for key, name, text in (
        ("rx_packets", "rx_packets_total", "multicast frames sent to the group"),
        ("rx_bytes", "rx_bytes_total", "their bytes"),
        ("copies", "copies_total", "copies of them delivered to members"))}
    for scope, groups in counters.get("groups", {}).items():
        for group, value in groups.items():
            for key, family in families.items():
                family.add(value[key], scope=scope, group=group)
    return list(families.values())


def _control(daemon, api) -> Family:
    family = Family("tapswitch_control_operations_total", "counter",
                    "control socket requests, by the namespace of the socket, verb and result")
    if daemon.control is None:
        return family
    visible = {ns.name for ns in api.namespaces()}
    for (namespace, verb, result), n in sorted(daemon.control.dispatcher.audit.snapshot().items()):
        if namespace in visible:
            family.add(n, namespace=namespace, verb=verb, result=result)
    return family


def _switch_wide(daemon, counters: dict) -> list[Family]:
    drops = Family("tapswitch_drops_total", "counter", "frames dropped, by reason, switch-wide")
    slow = Family("tapswitch_slowpath_total", "counter",
                  "frames handed to the slow path, by kind, switch-wide (not drops)")
    dropped, handed = split(counters.get("reasons", {}))
    for reason, n in sorted(dropped.items()):
        drops.add(n, reason=reason)
    for kind, n in sorted(handed.items()):
        slow.add(n, kind=kind)
    out = [drops, slow]
    loop = daemon.loop.stats()
    for stat in reason_table.LOOP_STATS:
        out.append(Family(f"tapswitch_loop_{stat.name}_total", "counter",
                          f"packet loop: {stat.help}").add(loop[stat.name]))
    vnet = Family("tapswitch_vnet_refused_total", "counter",
                  "frames refused for their virtio-net header, by reason")
    for refusal in reason_table.VNET_REFUSALS[1:]:
        vnet.add(loop[refusal.name], reason=refusal.name)
    out.append(vnet)
    for name, source, text in (("slowpath_events", daemon.slowpath.counters,
                                "what the slow path did and refused (ARP, ICMP, neighbours)"),
                               ("igmp_events", daemon.multicast.counters,
                                "what the IGMP snooper and querier did and refused")):
        family = Family(f"tapswitch_{name}_total", "counter", text)
        for event, n in sorted(source.items()):
            family.add(n, event=event)
        out.append(family)
    out.append(Family("tapswitch_captures", "gauge", "switch-side captures running (ctl capture)")
               .add(daemon.captures.count))
    if daemon.metrics_http is not None:
        served = Family("tapswitch_metrics_requests_total", "counter",
                        "requests to the metrics listener, by status code (503: over its bound)")
        for code, n in sorted(dict(daemon.metrics_http.requests).items()):
            served.add(n, code=code)
        out.append(served)
    holds = Family("tapswitch_slowpath_holds", "gauge", "what the slow path holds now")
    for what, n in sorted(daemon.slowpath.gauges().items()):
        holds.add(n, what=what)
    out.append(holds)
    return out + _tables(daemon)


def _tables(daemon) -> list[Family]:
    plan = daemon.compiler.plan
    limits = daemon.settings.slowpath
    entries = Family("tapswitch_table_entries", "gauge", "entries in the switch's tables")
    limit = Family("tapswitch_table_limit", "gauge", "the most entries a table holds")
    sizes = {"namespaces": (len(plan.namespaces), daemon.datapath.max_namespaces),
             "ports": (len(plan.ports), daemon.datapath.max_ports),
             "addresses": (len(plan.addresses), None), "routes": (len(plan.routes), None),
             "multicast_groups": (len(plan.multicast), None),
             "neighbours": (daemon.slowpath.gauges()["neighbours"], limits.neighbours)}
    for table, (n, most) in sizes.items():
        entries.add(n, table=table)
        if most is not None:
            limit.add(most, table=table)
    ports = Family("tapswitch_ports", "gauge", "ports by state")
    ports.add(len(daemon.ports.open), state="up").add(len(daemon.ports.failed), state="failed")
    uptime = Family("tapswitch_uptime_seconds", "gauge", "seconds since the daemon started")
    uptime.add(round(time.monotonic() - (daemon.started_at or time.monotonic()), 3))
    info = Family("tapswitch_info", "gauge", "the daemon's build and settings")
    info.add(1, io_backend=daemon.loop.backend)
    return [entries, limit, ports, uptime, info]


def exposition(daemon, api, counters: dict, *, whole: bool = True) -> str:
    """The Prometheus text of what ``api`` (the Switch: the admin) sees; ``whole``: the
    counters were not filtered to a namespace or a port (the switch-wide series then come
    with the admin's)."""
    families = _namespaces(counters) + _ports(daemon, api, counters) + _groups(counters)
    families.append(_control(daemon, api))
    if api.acting is None and whole:
        families += _switch_wide(daemon, counters)
    return render(families)
