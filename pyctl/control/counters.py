"""The fast path's counters as the control socket gives them, and as a table for people.

``select(raw, api)`` names ``Datapath.counters()`` (ids become names), keeps
what ``api`` may see (the Switch: everything; a namespace's acting context:
its subtree) and applies the ``counters`` verb's filters::

    {"namespaces": {name: {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
                           "reasons": {reason: n},       # every reason: drops and hand-offs
                           "drops": {reason: n},         # the frames dropped, by reason
                           "slowpath": {kind: n},        # handed to the slow path, by kind
                           "slowpath_drops": {event: n}}},   # what the slow path dropped
     "ports": {name: {"namespace": name, "rx_packets", ...}},
     "reasons": {reason: n}}      # switch-wide: the administrator's, unfiltered only

A reason's verdict (fastpath/reasons.py) says whether its frames were dropped or handed
to the slow path (ARP, to the switch's own address, ...): the two are kept apart
(``split``), in the table too.

The daemon adds ``"groups": {scope: {group: {"rx_packets", "rx_bytes", "copies"}}}``
(``pyctl.daemon.multicast.group_counters``) and each namespace's ``slowpath_drops``
(``pyctl.daemon.slow_counters``: the frames the slow path dropped of the namespace's,
or whose ICMP error it did not send).

``counted(api, ...)`` says which namespace and port ids such an answer may hold,
so that the daemon reads only those counters (an answer costs its size, not the
switch's): None is "all" (the administrator's unfiltered view).

``format_counters(counters)`` is the table `tapswitch ctl counters` prints and
the daemon prints when it stops.
"""
from __future__ import annotations

from typing import Any

from pyctl import errors
from pyctl.control.tables import table
from pyctl.control.verb_table import VERBS

__all__ = ["PARAMS", "select", "counted", "format_counters"]

# The `counters` verb's arguments (declared in the verb table; the daemon serves it).
PARAMS = VERBS["counters"].params

_TRAFFIC = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")
_TRAFFIC_HEADER = ["RX PACKETS", "RX BYTES", "TX PACKETS", "TX BYTES"]


def select(raw: dict, api, *, namespace=None, port=None) -> dict:
    """Counters named and limited to what ``api`` sees.

    ``namespace`` keeps that namespace and its ports; ``port`` keeps that port
    alone; both: that port, which must be in that namespace.  A name ``api``
    cannot see is ``NotFound``, exactly as for every other verb."""
    names = {ns.id: ns.name for ns in api.namespaces()}
    ports = {p.id: p for p in api.ports()}
    shown = names
    if namespace is not None:
        ns = api.namespace(namespace)
        shown = {ns.id: ns.name}
        ports = {i: p for i, p in ports.items() if p.ns == ns.id}
    if port is not None:
        wanted = api.port(port)
        if namespace is not None and wanted.ns != ns.id:
            raise errors.InvalidArgument(f"port '{wanted.name}' is not in namespace '{ns.name}' "
                                         f"(it is in '{names[wanted.ns]}')")
        ports = {wanted.id: wanted}
        if namespace is None:
            shown = {}
    whole = api.acting is None and namespace is None and port is None
    return {
        "namespaces": {shown[i]: _with_split(value) for i, value in raw["namespaces"].items()
                       if i in shown},
        "ports": {ports[i].name: {"namespace": names[ports[i].ns], **value}
                  for i, value in raw["ports"].items() if i in ports},
        "reasons": dict(raw["reasons"]) if whole else {},
    }


def counted(api, *, namespace=None, port=None) -> tuple:
    """``(namespace ids, port ids)`` that ``select`` may keep for these arguments, each
    None for "every one" (the administrator, unfiltered)."""
    if api.acting is None and namespace is None and port is None:
        return None, None
    if port is not None:
        wanted = api.port(port)
        ns_ids = [] if namespace is None else [api.namespace(namespace).id]
        return ns_ids, [wanted.id]
    if namespace is not None:
        ns = api.namespace(namespace)
        return [ns.id], [p.id for p in api.ports(ns.id)]
    return [ns.id for ns in api.namespaces()], [p.id for p in api.ports()]


def _drop_names() -> frozenset[str]:
    from fastpath import verdicts       # a plain module: `tapswitch ctl` stays lean
    return frozenset(verdicts.REASON_NAMES[r] for r in verdicts.DROP_REASONS)


def split(reasons: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """``reasons`` as (drops, slow-path hand-offs), by each reason's verdict."""
    drops = _drop_names()
    return ({r: n for r, n in reasons.items() if r in drops},
            {r: n for r, n in reasons.items() if r not in drops})


def _with_split(value: dict) -> dict:
    drops, slow = split(value.get("reasons", {}))
    return {**value, "drops": drops, "slowpath": slow}


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{name}={n}" for name, n in sorted(reasons.items()) if n) or "-"


def format_loop_totals(stats: dict[str, Any], title: str | None = None) -> str:
    """The packet loop's frames in and out and each of its drop counters that is not zero
    (``PacketLoop.stats()``; which counters are drops: fastpath.reasons.LOOP_DROPS), e.g.
    what the daemon prints as it exits, after its ports let go of their last frames."""
    from fastpath.reasons import LOOP_DROPS   # a plain module, as in _drop_names
    drops = {c.name: stats.get(c.name, 0) for c in LOOP_DROPS}
    out = [f"-- {title} --"] if title else []
    out.append(f"frames in {stats.get('frames_in', 0)}, out {stats.get('frames_out', 0)}; "
               f"dropped by the loop: {_reasons(drops) if any(drops.values()) else 'none'}")
    return "\n".join(out)


def format_counters(counters: dict[str, Any], title: str | None = None) -> str:
    """Namespaces (traffic; drops and slow-path hand-offs apart, each with its reasons),
    ports, groups, switch-wide reasons."""
    tables = []
    if counters["namespaces"]:
        rows = []
        for name, c in counters["namespaces"].items():
            drops, slow = split(c.get("reasons", {}))
            rows.append([name, *(c[k] for k in _TRAFFIC), sum(drops.values()), _reasons(drops),
                         sum(slow.values()), _reasons(slow)])
        tables.append(table(rows, ["NAMESPACE", *_TRAFFIC_HEADER, "DROPPED", "DROP REASONS",
                                   "TO SLOW PATH", "SLOW-PATH KINDS"], right=(1, 2, 3, 4, 5, 7)))
    if counters["ports"]:
        rows = [[name, c.get("namespace"), *(c[k] for k in _TRAFFIC)]
                for name, c in counters["ports"].items()]
        tables.append(table(rows, ["PORT", "NAMESPACE", *_TRAFFIC_HEADER], right=range(2, 6)))
    groups = [[scope, group, c["rx_packets"], c["rx_bytes"], c["copies"]]
              for scope, by_group in counters.get("groups", {}).items()
              for group, c in by_group.items()]
    if groups:
        tables.append(table(groups, ["SCOPE", "GROUP", "RX PACKETS", "RX BYTES", "COPIES"],
                            right=range(2, 5)))
    out = [f"-- {title} --"] if title else []
    out.append("\n\n".join(tables) or "no counters to show")
    for name, c in counters["namespaces"].items():
        if any(c.get("slowpath_drops", {}).values()):
            out.append(f"slow path dropped of {name}'s: {_reasons(c['slowpath_drops'])}")
    dropped, punted = (_reasons(part) for part in split(counters.get("reasons", {})))
    if dropped != "-":
        out.append(f"dropped: {dropped}")
    if punted != "-":
        out.append(f"to the slow path: {punted}")
    return "\n".join(out)
