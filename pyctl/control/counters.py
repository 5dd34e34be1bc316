"""The fast path's counters as the control socket gives them, and as a table for people.

``select(raw, api)`` names ``Datapath.counters()`` (ids become names), keeps
what ``api`` may see (the Switch: everything; a namespace's acting context:
its subtree) and applies the ``counters`` verb's filters::

    {"namespaces": {name: {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
                           "reasons": {reason: n}}},
     "ports": {name: {"namespace": name, "rx_packets", ...}},
     "reasons": {reason: n}}      # switch-wide: the administrator's, unfiltered only

The daemon adds ``"groups": {scope: {group: {"rx_packets", "rx_bytes", "copies"}}}``
(``pyctl.daemon.multicast.group_counters``).

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
        "namespaces": {shown[i]: value for i, value in raw["namespaces"].items() if i in shown},
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
    # Imported here: `tapswitch ctl` loads the compiled fast path only to print counters.
    from fastpath import verdicts
    return frozenset(verdicts.REASON_NAMES[r] for r in verdicts.DROP_REASONS)


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{name}={n}" for name, n in sorted(reasons.items()) if n)


def format_counters(counters: dict[str, Any], title: str | None = None) -> str:
    """Namespaces (traffic, drops, every reason seen), ports, groups, switch-wide reasons."""
    drops = _drop_names()
    tables = []
    if counters["namespaces"]:
        rows = []
        for name, c in counters["namespaces"].items():
            reasons = c.get("reasons", {})
            rows.append([name, *(c[k] for k in _TRAFFIC),
                         sum(n for r, n in reasons.items() if r in drops), _reasons(reasons)])
        tables.append(table(rows, ["NAMESPACE", *_TRAFFIC_HEADER, "DROPPED", "REASONS"],
                            right=range(1, 6)))
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
    total = counters.get("reasons", {})
    dropped = _reasons({r: n for r, n in total.items() if r in drops})
    punted = _reasons({r: n for r, n in total.items() if r not in drops})
    if dropped:
        out.append(f"dropped: {dropped}")
    if punted:
        out.append(f"to the slow path: {punted}")
    return "\n".join(out)
