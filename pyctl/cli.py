"""The `tapswitch` command: run a daemon, check a config, drive a daemon, run the demo.

    tapswitch run CONFIG.toml [--socket PATH]
    tapswitch check CONFIG.toml [--json]
    tapswitch ctl [--socket PATH] [--json] VERB [ARGS...]
    tapswitch demo

``ctl`` verbs are the control socket's (docs/control.md), with ip-like
positional arguments; output is a table for people, or the raw result with
--json.  Exit status: 0 ok, 1 the switch (or the config) refused, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from pyctl import errors
from pyctl.control.counters import format_counters
from pyctl.control.tables import table

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


# ----------------------------------------------------------------- output

def _pairs(mapping: dict[str, Any]) -> str:
    width = max((len(k) for k in mapping), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {_inline(v)}" for k, v in mapping.items())


def _inline(value: Any, sep: str = ", ") -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return sep.join(_inline(v) for v in value) or "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={_inline(v, ',')}" for k, v in value.items()) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _render_namespaces(result: list[dict]) -> str:
    depth: dict[int, int] = {}
    rows = []
    for ns in result:   # parents first
        depth[ns["id"]] = depth.get(ns["parent"], -1) + 1 if ns["parent"] in depth else 0
        rows.append([ns["id"], "  " * depth[ns["id"]] + ns["name"], ns["kind"],
                     ns.get("parent_name")])
    return table(rows, ["ID", "NAME", "KIND", "PARENT"])


def _render_routes(result: list[dict]) -> str:
    return table([[r["dst"], r["via"], r["port"]] for r in result], ["DESTINATION", "VIA", "PORT"])


def _port_state(p: dict) -> str:
    return p["state"] + (f": {p['error']}" if p.get("error") else "")


def _render_ports(result: list[dict]) -> str:
    """A daemon adds each port's state (up, failed: why, missing): a STATE column."""
    if any("state" in p for p in result):
        return table([[p["id"], p["name"], p["namespace"], p["mac"], _inline(p["options"]),
                       _port_state(p)] for p in result],
                     ["ID", "NAME", "NAMESPACE", "MAC", "OPTIONS", "STATE"])
    return table([[p["id"], p["name"], p["namespace"], p["mac"], _inline(p["options"])]
                  for p in result], ["ID", "NAME", "NAMESPACE", "MAC", "OPTIONS"])


def _render_show(ns: dict) -> str:
    head = {"namespace": f"{ns['name']} (id {ns['id']}, {ns['kind']})",
            "parent": ns["parent_name"], "scope": ns["scope"], "children": ns["children"],
            "groups": ns["groups"]}
    out = [_pairs(head), "addresses:"] + [f"  {a}" for a in ns["addresses"]]
    if ns["routes"]:
        out += ["routes" + (" (of " + ns["scope"] + ")" if ns["scope"] != ns["name"] else "") + ":"]
        out += ["  " + line for line in _render_routes(ns["routes"]).splitlines()]
    if ns["ports"]:
        out += ["ports:"] + ["  " + line for line in _render_ports(ns["ports"]).splitlines()]
    return "\n".join(out)


def _render_addresses(result: list) -> str:
    if result and isinstance(result[0], dict):
        return table([[a["address"], a["owner"]] for a in result], ["ADDRESS", "OWNER"])
    return "\n".join(result)


def _render_verbs(result: list[dict]) -> str:
    def args(v):
        return " ".join(p["name"] if p["required"] else f"[{p['name']}]" for p in v["params"])
    return table([[v["name"], v["access"], args(v), v["summary"]] for v in result],
                 ["VERB", "ACCESS", "ARGUMENTS", "SUMMARY"])


def _render_multicast(result: dict) -> str:
    rows = [[scope, group, m["namespace"], m["origin"], m["expires_in"]]
            for scope, groups in result.items() for group, members in groups.items()
            for m in members]
    if not rows:
        return "no group memberships"
    return table(rows, ["SCOPE", "GROUP", "NAMESPACE", "ORIGIN", "EXPIRES IN (S)"], right=[4])


def _render_generic(result: Any) -> str:
    """Whatever a daemon-registered verb returns (stats, ...)."""
    if result is None:
        return ""
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        keys = list(dict.fromkeys(k for r in result for k in r))
        return table([[_inline(r.get(k)) for k in keys] for r in result],
                     [k.upper() for k in keys])
    if isinstance(result, list):
        return "\n".join(_inline(r) for r in result)
    if isinstance(result, dict):
        return _sections(result)
    return str(result)


def _sections(mapping: dict[str, Any]) -> str:
    """Plain values aligned first, then each non-empty mapping as an indented section."""
    nested = {k: v for k, v in mapping.items() if isinstance(v, dict) and v}
    flat = {k: v for k, v in mapping.items() if k not in nested}
    lines = [_pairs(flat)] if flat else []
    for key, value in nested.items():
        lines += [f"{key}:"] + ["  " + line for line in _sections(value).splitlines()]
    return "\n".join(lines)


def _quiet(result: Any) -> str:
    return ""


# ------------------------------------------------------------- ctl verbs

# verb -> (help, [(argparse args, kwargs)], renderer); positional names are the wire names.
def _ns(required: bool = True, help: str = "namespace name or id"):
    if required:
        return (("namespace",), {"help": help})
    return (("namespace",), {"nargs": "?", "help": help + " (default: the socket's own)"})


_ADDR = (("address",), {"help": "address with prefix, e.g. 10.0.0.5/24"})
_GROUP = (("group",), {"help": "multicast group, e.g. 239.1.1.1"})

_CTL: dict[str, tuple[str, list, Callable[[Any], str]]] = {
    "ping": ("check that the daemon answers", [], str),
    "version": ("versions of tapswitch, the protocol and the model", [], _pairs),
    "whoami": ("what this socket acts as, and your credentials", [], _pairs),
    "verbs": ("every verb the daemon knows", [], _render_verbs),
    "namespaces": ("list namespaces (a tree)", [], _render_namespaces),
    "show": ("one namespace in full", [_ns(False)], _render_show),
    "create": ("create a namespace", [
        (("name",), {}), (("kind",), {"choices": ("l2", "l3")}),
        (("--parent",), {"help": "parent L2 (default: the root, or the socket's L2)"})], _quiet),
    "destroy": ("destroy a namespace", [
        _ns(), (("--recursive", "-r"), {"action": "store_true", "default": None,
                                        "help": "with its whole subtree"})], _quiet),
    "addresses": ("addresses of a namespace", [
        _ns(False), (("--tagged", "-t"), {"action": "store_true", "default": None,
                                          "help": "also the descendants' addresses, tagged"})],
        _render_addresses),
    "address-add": ("create an address in an L2", [_ns(), _ADDR], _quiet),
    "address-del": ("delete an address of an L2", [_ns(), _ADDR], _quiet),
    "push": ("move an address of the parent L2 into an L3", [_ADDR, _ns()], _quiet),
    "pull": ("give an L3's address back to its parent", [_ADDR, _ns()], _quiet),
    "assign-and-push": ("create an address and push it into an L3 in one step",
                        [_ADDR, _ns()], _quiet),
    "owner": ("which namespace holds an IP", [(("address",), {}), _ns(False)], _inline),
    "routes": ("routes a namespace uses", [_ns(False)], _render_routes),
    "route-add": ("add a route to an L2", [
        _ns(), (("prefix",), {"help": "A/N or default"}), (("--via",), {}), (("--port",), {})],
        _quiet),
    "route-del": ("delete a route of an L2", [
        _ns(), (("prefix",), {}), (("--via",), {}), (("--port",), {})], _quiet),
    "ports": ("ports (TAPs)", [(("namespace",), {"nargs": "?", "help": "default: all visible"})],
              _render_ports),
    "port-add": ("attach a port to a namespace", [
        (("name",), {}), _ns(), (("--mac",), {}),
        (("--option", "-o"), {"action": "append", "metavar": "KEY=VALUE", "dest": "options",
                              "help": "vnet_hdr=true, offloads=csum,tso4, txqueuelen=10000, "
                                      "mtu, netns, address, gateway"})], _quiet),
    "port-del": ("remove a port", [(("name",), {})], _quiet),
    "join": ("join a multicast group", [_GROUP, _ns(False)], _quiet),
    "leave": ("leave a multicast group", [_GROUP, _ns(False)], _quiet),
    "groups": ("multicast groups of a namespace", [_ns(False)], "\n".join),
    "members": ("members of a multicast group in a scope", [_GROUP, _ns(False)], "\n".join),
    "multicast": ("group memberships: learned (with expiry) or configured", [],
                  _render_multicast),
    "sockets": ("namespace control sockets that are open", [],
                lambda r: table([[s["namespace"], s["path"]] for s in r], ["NAMESPACE", "PATH"])),
    "socket-add": ("open a control socket acting as a namespace", [_ns()],
                   lambda r: r["path"]),
    "socket-del": ("close a namespace's control socket", [_ns()], _quiet),
    "counters": ("packet and drop counters", [
        (("namespace",), {"nargs": "?", "help": "only this namespace and its ports "
                                                "(default: every visible one)"}),
        (("--port", "-p"), {"help": "only this port"})], format_counters),
    "stats": ("the packet loop's and slow path's counters", [], _render_generic),
}


def _port_option(text: str) -> tuple[str, Any]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise errors.InvalidArgument(f"port option {text!r}: expected KEY=VALUE")
    if key == "offloads":
        return key, [v for v in value.split(",") if v]
    return key, _value(value)


def _value(text: str) -> Any:
    """A KEY=VALUE value: JSON when it parses (numbers, true, lists), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _keyvalues(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise errors.InvalidArgument(f"{item!r}: expected KEY=VALUE")
        out[key.replace("-", "_")] = _value(value)
    return out


def _ctl_args(verb: str, ns: argparse.Namespace) -> dict[str, Any]:
    args = {k: v for k, v in vars(ns).items()
            if k not in ("command", "socket", "json", "verb", "params", "call_verb")}
    if verb == "port-add" and args.get("options") is not None:
        args["options"] = dict(_port_option(o) for o in args["options"])
    if verb == "call":
        args.update(_keyvalues(getattr(ns, "params", None) or []))
    return args


# ---------------------------------------------------------------- parser

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tapswitch", description=(
        "A userspace switch giving TAP endpoints the L2/L3 network-namespace model."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon with a topology file")
    run.add_argument("config", metavar="CONFIG.toml")
    run.add_argument("--socket", help="admin control socket (overrides the file's)")

    check = sub.add_parser("check", help="validate a topology file without running it")
    check.add_argument("config", metavar="CONFIG.toml")
    check.add_argument("--json", action="store_true", help="print the resulting model")

    sub.add_parser("demo", help="build a small topology with real traffic, show it, clean up")

    ctl = sub.add_parser("ctl", help="talk to a running daemon",
                         description="Verbs of the control socket; see docs/control.md.")
    ctl.add_argument("--socket", "-s", help="control socket (default: $TAPSWITCH_SOCKET or "
                                            "/run/tapswitch/control.sock)")
    ctl.add_argument("--json", "-j", action="store_true", help="print the raw JSON result")
    # --json is also accepted after the verb (`tapswitch ctl counters --json`);
    # SUPPRESS keeps a verb's parser from resetting the flag given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--json", "-j", action="store_true", default=argparse.SUPPRESS,
                       help="print the raw JSON result")
    verbs = ctl.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (help_text, arguments, _render) in _CTL.items():
        vp = verbs.add_parser(verb, help=help_text, description=help_text, parents=[after])
        for flags, kwargs in arguments:
            vp.add_argument(*flags, **kwargs)
    call = verbs.add_parser("call", help="any verb, with KEY=VALUE arguments (values are JSON "
                                         "when they parse)", parents=[after])
    call.add_argument("call_verb", metavar="VERB")
    call.add_argument("params", nargs="*", metavar="KEY=VALUE")
    return p


# ------------------------------------------------------------------ main

def _ctl(ns: argparse.Namespace, out) -> int:
    from pyctl.control.client import ControlClient
    verb = ns.call_verb if ns.verb == "call" else ns.verb
    args = _ctl_args(ns.verb, ns)
    with ControlClient(ns.socket) as client:
        result = client.call(verb, **args)
    if ns.json:
        print(json.dumps(result, indent=2), file=out)
        return EXIT_OK
    render = _CTL[ns.verb][2] if ns.verb in _CTL else _render_generic
    text = render(result)
    if text:
        print(text, file=out)
    return EXIT_OK


def _check(ns: argparse.Namespace, out) -> int:
    from pyctl import config
    cfg = config.load_config(ns.config)
    switch = config.check(cfg)
    if ns.json:
        print(json.dumps(switch.snapshot(), indent=2), file=out)
        return EXIT_OK
    addresses = len(cfg.root_addresses) + sum(len(n.addresses) for n in cfg.namespaces)
    counts = [(len(cfg.namespaces), "namespace"), (addresses, "address"),
              (len(cfg.ports), "port"), (len(cfg.routes), "route")]
    print(f"{cfg.source}: ok: " + ", ".join(
        f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}" for n, word in counts),
        file=out)
    return EXIT_OK


def _run(ns: argparse.Namespace, out) -> int:
    from pyctl.daemon import daemon
    status = daemon.run_config(ns.config, socket=ns.socket)
    return EXIT_OK if status is None else int(status)


def _demo(ns: argparse.Namespace, out) -> int:
    from pyctl.rig import demo
    status = demo.main()
    return EXIT_OK if status is None else int(status)


_COMMANDS = {"ctl": _ctl, "check": _check, "run": _run, "demo": _demo}


def main(argv: list[str] | None = None, *, stdout=None, stderr=None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        ns = _parser().parse_args(argv)
    except SystemExit as exc:          # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _COMMANDS[ns.command](ns, out)
    except errors.TapswitchError as exc:
        print(f"tapswitch: {exc.code}: {exc.message}", file=err)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:            # `tapswitch ctl ... | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
