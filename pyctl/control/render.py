"""How `tapswitch ctl` shows a verb's result to people (``--json`` prints it raw).

Each verb of ``pyctl.control.verb_table`` names its renderer (a function here, or
``declare.Columns``); a verb without one, or one only a newer daemon knows, is
shown by ``generic``.
"""
from __future__ import annotations

from typing import Any

from pyctl.control.tables import table

__all__ = ["pairs", "inline", "quiet", "lines", "generic", "namespaces", "routes", "ports",
           "show", "addresses", "verbs", "multicast", "counters", "socket_path", "quota"]


def pairs(mapping: dict[str, Any]) -> str:
    """``key: value`` lines, the values aligned."""
    width = max((len(k) for k in mapping), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {inline(v)}" for k, v in mapping.items())


def inline(value: Any, sep: str = ", ") -> str:
    """One value on one line: lists joined, dicts as k=v, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return sep.join(inline(v) for v in value) or "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={inline(v, ',')}" for k, v in value.items()) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def quiet(result: Any) -> str:
    """Nothing: a configuring verb that worked."""
    return ""


def lines(result: list) -> str:
    return "\n".join(result)


def socket_path(result: dict) -> str:
    return result["path"]


def namespaces(result: list[dict]) -> str:
    depth: dict[int, int] = {}
    rows = []
    for ns in result:   # parents first
        depth[ns["id"]] = depth.get(ns["parent"], -1) + 1 if ns["parent"] in depth else 0
        rows.append([ns["id"], "  " * depth[ns["id"]] + ns["name"], ns["kind"],
                     ns.get("parent_name")])
    return table(rows, ["ID", "NAME", "KIND", "PARENT"])


def routes(result: list[dict]) -> str:
    return table([[r["dst"], r["via"], r["port"], "connected" if r.get("connected") else "static"]
                  for r in result], ["DESTINATION", "VIA", "PORT", "KIND"])


def _port_state(p: dict) -> str:
    excess = p.get("tx_cost_excess_us", 0)
    beyond = f", {excess / 1000:g} ms beyond the limit" if excess else ""
    held = (f" (held: {p['tx_cost_us']:g} us a frame{beyond}, {p['tx_cost_drops']} dropped)"
            if p.get("tx_cost_held") else "")
    return p["state"] + (f": {p['error']}" if p.get("error") else "") + held


def ports(result: list[dict]) -> str:
    """A daemon adds each port's state (up, failed: why, missing): a STATE column."""
    if any("state" in p for p in result):
        return table([[p["id"], p["name"], p["namespace"], p["mac"], inline(p["options"]),
                       _port_state(p)] for p in result],
                     ["ID", "NAME", "NAMESPACE", "MAC", "OPTIONS", "STATE"])
    return table([[p["id"], p["name"], p["namespace"], p["mac"], inline(p["options"])]
                  for p in result], ["ID", "NAME", "NAMESPACE", "MAC", "OPTIONS"])


def show(ns: dict) -> str:
    head = {"namespace": f"{ns['name']} (id {ns['id']}, {ns['kind']})",
            "parent": ns["parent_name"], "scope": ns["scope"], "children": ns["children"],
            "groups": ns["groups"], "options": ns.get("options") or {}}
    if ns.get("netns"):
        head["kernel namespaces"] = ns["netns"]
    out = [pairs(head), "addresses:"] + [f"  {a}" for a in ns["addresses"]]
    if ns["routes"]:
        out += ["routes" + (" (of " + ns["scope"] + ")" if ns["scope"] != ns["name"] else "") + ":"]
        out += ["  " + line for line in routes(ns["routes"]).splitlines()]
    if ns["ports"]:
        out += ["ports:"] + ["  " + line for line in ports(ns["ports"]).splitlines()]
    return "\n".join(out)


def addresses(result: list) -> str:
    if result and isinstance(result[0], dict):
        return table([[a["address"], a["owner"]] for a in result], ["ADDRESS", "OWNER"])
    return "\n".join(result)


def verbs(result: list[dict]) -> str:
    def args(v):
        return " ".join(p["name"] if p["required"] else f"[{p['name']}]" for p in v["params"])
    return table([[v["name"], v["access"], args(v), v["summary"]] for v in result],
                 ["VERB", "ACCESS", "ARGUMENTS", "SUMMARY"])


def multicast(result: dict) -> str:
    rows = [[scope, group, m["namespace"], m["origin"], m["expires_in"]]
            for scope, groups in result.items() for group, members in groups.items()
            for m in members]
    if not rows:
        return "no group memberships"
    return table(rows, ["SCOPE", "GROUP", "NAMESPACE", "ORIGIN", "EXPIRES IN (S)"], right=[4])


def counters(result: dict | str) -> str:
    """The counters as tables; ``--format prometheus``'s text as it came."""
    if isinstance(result, str):
        return result.rstrip("\n")
    from pyctl.control.counters import format_counters   # the reason table: only when shown
    return format_counters(result)


def reload(result: dict) -> str:
    """What a reload changed (or would change, with --dry-run)."""
    head = ("would change" if result.get("dry_run") else "changed") + f" ({result['file']}):"
    lines = [f"  {text}" for text in result["changed"]] or ["  nothing"]
    sockets = result.get("sockets", {})
    lines += [f"  socket of {n} opened" for n in sockets.get("opened", [])]
    lines += [f"  socket of {n} closed" for n in sockets.get("closed", [])]
    lines += [f"  [daemon] {k} changed: it takes effect at the next start"
              for k in result.get("restart_needed", [])]
    return "\n".join([head, *lines])


def generic(result: Any) -> str:
    """Whatever a verb without a renderer returns (a newer daemon's, ``call``)."""
    if result is None:
        return ""
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        keys = list(dict.fromkeys(k for r in result for k in r))
        return table([[inline(r.get(k)) for k in keys] for r in result],
                     [k.upper() for k in keys])
    if isinstance(result, list):
        return "\n".join(inline(r) for r in result)
    if isinstance(result, dict):
        return _sections(result)
    return str(result)


def _sections(mapping: dict[str, Any]) -> str:
    """Plain values aligned first, then each non-empty mapping as an indented section."""
    nested = {k: v for k, v in mapping.items() if isinstance(v, dict) and v}
    flat = {k: v for k, v in mapping.items() if k not in nested}
    out = [pairs(flat)] if flat else []
    for key, value in nested.items():
        out += [f"{key}:"] + ["  " + line for line in _sections(value).splitlines()]
    return "\n".join(out)


def quota(result: dict[str, Any]) -> str:
    """One line per quota key: its limit, what the subtree holds, the tightest limit above."""
    rows = [[key, inline(result["quota"][key]), result["usage"][key],
             inline(result["effective"][key])] for key in result["usage"]]
    return f"{result['namespace']}:\n" + table(rows, ["QUOTA", "LIMIT", "USED", "EFFECTIVE"])
