"""The `tapswitch` command: run a daemon, check a config, drive a daemon, run the demo.

    tapswitch run CONFIG.toml [--socket PATH] [--cpus LIST] [--poll-us N]
    tapswitch check CONFIG.toml [--json]
    tapswitch ctl [--socket PATH] [--json] VERB [ARGS...]
    tapswitch demo

``ctl`` verbs are the control socket's (docs/control.md), made from the verb
table by ``pyctl.control.ctl``: ip-like positional arguments; output is a
table for people, or the raw result with --json.  Exit status: 0 ok, 1 the
switch (or the config) refused, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys

from pyctl import errors
from pyctl.control import ctl

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------- parser

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tapswitch", description=(
        "A userspace switch giving TAP endpoints the L2/L3 network-namespace model."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon with a topology file")
    run.add_argument("config", metavar="CONFIG.toml")
    run.add_argument("--socket", help="admin control socket (overrides the file's)")
    run.add_argument("--cpus", metavar="LIST",
                     help="the packet thread's CPUs, e.g. 1 or 0-1,3 (overrides [daemon] cpus)")
    run.add_argument("--poll-us", type=int, metavar="N",
                     help="poll N microseconds after a busy batch before sleeping, 0..1000 "
                          "(overrides [daemon] poll_us; 0: off)")

    check = sub.add_parser("check", help="validate a topology file without running it")
    check.add_argument("config", metavar="CONFIG.toml")
    check.add_argument("--json", action="store_true", help="print the resulting model")

    sub.add_parser("demo", help="build a small topology with real traffic, show it, clean up")
    ctl.add_ctl_parser(sub)
    return p


# ------------------------------------------------------------------ main

def _ctl(ns: argparse.Namespace, out) -> int:
    ctl.run(ns, out)
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
    status = daemon.run_config(ns.config, socket=ns.socket, cpus=ns.cpus, poll_us=ns.poll_us)
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
