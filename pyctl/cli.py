# PYTHON_ARGCOMPLETE_OK  (argcomplete's global completion: see pyctl.cli_help)
"""The `tapswitch` command: run a daemon, check a config, drive a daemon, run the demo.

    tapswitch [--log-level LEVEL] [--log-format text|json] COMMAND ...
    tapswitch run CONFIG.toml [--socket PATH] [--cpus LIST] [--poll-us N]
    tapswitch check CONFIG.toml [--json] [--file-only]
    tapswitch ctl [--socket PATH] [--json] VERB [ARGS...]
    tapswitch demo

Logging (pyctl.ops.logsetup) goes to stderr, one line per record with a UTC timestamp,
or one JSON object per line; ``--log-level`` and ``--log-format`` are taken before or
after the command's name.  The daemon's default level, info, shows the audit log of control
operations (logger ``tapswitch.audit``); the other commands default to warning.

``ctl`` verbs are the control socket's (docs/control.md), made from the verb
table by ``pyctl.control.ctl``: ip-like positional arguments; output is a
table for people, or the raw result with --json.  Exit status: 0 ok, 1 the
switch (or the config) refused, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from pyctl import cli_help, errors
from pyctl.control import ctl

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------- parser

# pyctl.ops.logsetup's LEVELS and FORMATS (not imported here: `ctl` stays lean)
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_LOG_FORMATS = ("text", "json")


def _logging_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--log-level", choices=_LOG_LEVELS, default=default,
                        help="log records at this level and above to stderr (default: info "
                             "for run, warning for the other commands)")
    parser.add_argument("--log-format", choices=_LOG_FORMATS, default=default,
                        help="text lines, or one JSON object per line (default: text)")


def _parser(ctl_verb: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tapswitch", description=(
        "A userspace switch giving TAP endpoints the L2/L3 network-namespace model."))
    p.add_argument("--version", action=cli_help.VersionAction)
    _logging_options(p, None)
    # also after the command's name; SUPPRESS keeps a subcommand from resetting them
    after = argparse.ArgumentParser(add_help=False)
    _logging_options(after, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon with a topology file", parents=[after])
    run.add_argument("config", metavar="CONFIG.toml")
    run.add_argument("--socket", help="admin control socket (overrides the file's)")
    run.add_argument("--cpus", metavar="LIST",
                     help="the packet thread's CPUs, e.g. 1 or 0-1,3 (overrides [daemon] cpus)")
    run.add_argument("--poll-us", type=int, metavar="N",
                     help="poll N microseconds after a busy batch before sleeping, 0..1000 "
                          "(overrides [daemon] poll_us; 0: off)")

    check = sub.add_parser("check", help="validate a topology file without running it",
                           parents=[after])
    check.add_argument("config", metavar="CONFIG.toml")
    check.add_argument("--json", action="store_true", help="print the resulting model (or the "
                                                           "errors) as JSON")
    check.add_argument("--file-only", action="store_true",
                       help="check the file and the model only, not this host (privileges, "
                            "links and kernel namespaces that exist, sockets, limits)")

    sub.add_parser("demo", help="build a small topology with real traffic, show it, clean up",
                   parents=[after])
    ctl.add_ctl_parser(sub, parents=[after], only=ctl_verb)
    return p


# ------------------------------------------------------------------ main

def _ctl(ns: argparse.Namespace, out, err) -> int:
    ctl.run(ns, out, err)
    return EXIT_OK


def _check(ns: argparse.Namespace, out, err) -> int:
    from pyctl.config.validate import validate
    facts = None
    if not ns.file_only:
        from pyctl.daemon.ownership import HostAndStateFacts
        facts = HostAndStateFacts()
    report = validate(ns.config, facts=facts)
    cfg = report.config
    if report.errors:
        if ns.json:
            print(json.dumps({"errors": [{"file": e.source, "line": e.line, "key": e.key,
                                          "code": e.code, "reason": e.reason}
                                         for e in report.errors]}, indent=2), file=out)
        for e in report.errors:
            print(f"tapswitch: {e.code}: {e.message}", file=err)
        if len(report.errors) > 1:
            print(f"tapswitch: {cfg.source}: {len(report.errors)} errors", file=err)
        return EXIT_REFUSED
    if ns.json:
        print(json.dumps(report.switch.snapshot(), indent=2), file=out)
        return EXIT_OK
    for note in report.notes:
        print(f"note: {note}", file=out)
    addresses = len(cfg.root_addresses) + sum(len(n.addresses) for n in cfg.namespaces)
    counts = [(len(cfg.namespaces), "namespace"), (addresses, "address"),
              (len(cfg.ports), "port"), (len(cfg.routes), "route")]
    print(f"{cfg.source}: ok: " + ", ".join(
        f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}" for n, word in counts),
        file=out)
    return EXIT_OK


def _run(ns: argparse.Namespace, out, err) -> int:
    from pyctl.daemon import service
    status = service.run_config(ns.config, socket=ns.socket, cpus=ns.cpus, poll_us=ns.poll_us)
    return EXIT_OK if status is None else int(status)


def _demo(ns: argparse.Namespace, out, err) -> int:
    from pyctl.rig import demo
    status = demo.main()
    return EXIT_OK if status is None else int(status)


_COMMANDS = {"ctl": _ctl, "check": _check, "run": _run, "demo": _demo}


def _configure_logging(ns: argparse.Namespace, err):
    """The handler on stderr (pyctl.ops.logsetup); None for a `ctl` call that asked for no
    logging (it logs nothing of its own, and loads no logging module for it)."""
    if ns.command == "ctl" and ns.log_level is None and ns.log_format is None:
        return None
    from pyctl.ops import logsetup
    level = ns.log_level or ("info" if ns.command == "run" else "warning")
    return logsetup.configure(level, ns.log_format or "text", stream=err)


def main(argv: list[str] | None = None, *, stdout=None, stderr=None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if "_ARGCOMPLETE" in os.environ:       # the shell asks what may come: every verb
        cli_help.complete(_parser())
    parser = _parser(ctl.verb_of(sys.argv[1:] if argv is None else argv))
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:          # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = _configure_logging(ns, err)
    try:
        return _COMMANDS[ns.command](ns, out, err)
    except errors.TapswitchError as exc:
        print(f"tapswitch: {exc.code}: {exc.message}", file=err)
        hint = cli_help.privilege_hint(exc)
        if hint:
            print(f"tapswitch: {hint}", file=err)
        return EXIT_REFUSED
    except PermissionError as exc:      # the kernel's refusal, not wrapped in ours
        print(f"tapswitch: {exc}", file=err)
        print(f"tapswitch: {cli_help.privilege_hint(exc) or 'permission denied'}", file=err)
        return EXIT_REFUSED
    except ImportError as exc:
        if type(exc).__name__ != "CoreNotBuilt":    # fastpath.CoreNotBuilt: say it, no traceback
            raise
        print(f"tapswitch: {exc}", file=err)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:            # `tapswitch ctl ... | head`
        return EXIT_OK
    finally:
        if handler is not None:
            from pyctl.ops import logsetup
            logsetup.unconfigure(handler)


if __name__ == "__main__":
    sys.exit(main())
