"""`tapswitch ctl`: one subcommand per verb of the verb table, with ip-like arguments.

Made from ``pyctl.control.verb_table``: a verb's required arguments are
positional, in the table's order; optional ones are optional positionals, or
options where the table says so (a ``bool`` is a flag, an ``object`` a repeated
``KEY=VALUE`` option); help texts are the table's summaries and argument
helps; the result is printed by the verb's renderer, or raw with ``--json``.
``call VERB KEY=VALUE...`` reaches any verb, also one only a newer daemon knows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pyctl.control import render
from pyctl.control.declare import Param, Verb, json_or_text, keyvalue
from pyctl.control.verb_table import VERBS

__all__ = ["add_ctl_parser", "ctl_args", "run"]

# argparse dests that are not a verb's arguments
_OWN = ("command", "socket", "json", "verb", "params", "call_verb", "log_level", "log_format")

_COMPLETERS = {"namespace": "namespaces", "port": "ports"}     # a parameter's type -> the verb


def names_from_daemon(verb: str, key: str = "name"):
    """A completer: the ``key`` of each item the daemon's ``verb`` lists (namespaces,
    ports), asked on the socket the command line names; nothing when it does not answer."""
    def completer(prefix, parsed_args=None, **_):
        from pyctl.control.client import ControlClient
        try:
            with ControlClient(getattr(parsed_args, "socket", None), timeout=1.0) as client:
                items = client.call(verb)
        except Exception:           # no daemon, no permission: no suggestions
            return []
        return [str(item[key]) for item in items if str(item[key]).startswith(prefix)]
    return completer


def _add_param(parser: argparse.ArgumentParser, p: Param) -> None:
    kwargs: dict[str, Any] = {"help": p.help or None}
    if p.choices:
        kwargs["choices"] = p.choices
    if not p.is_option:
        if not p.required:
            kwargs["nargs"] = "?"
        action = parser.add_argument(p.name, **kwargs)
    else:
        kwargs["dest"] = p.name
        kwargs["default"] = None          # not given: the wire's default applies
        if p.type == "bool":
            kwargs["action"] = "store_true"
        elif p.type == "object":
            kwargs.update(action="append", metavar="KEY=VALUE")
        action = parser.add_argument(*p.cli_flags, **kwargs)
    if p.type == "int" and not p.is_option:
        action.type = int
    if p.type in _COMPLETERS:       # shell completion asks a running daemon (pyctl.cli_help)
        action.completer = names_from_daemon(_COMPLETERS[p.type])


def add_ctl_parser(sub, parents=(), only: str | None = None) -> argparse.ArgumentParser:
    """The ``ctl`` command and a subcommand per verb, on the ``sub`` subparsers
    (``parents``: the command's common options).  ``only``: the one verb the command line
    names (``verb_of``): a call builds its own verb's parser, not all of them, so its cost
    does not grow with the verb table."""
    ctl = sub.add_parser("ctl", help="talk to a running daemon", parents=list(parents),
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
    for verb in VERBS.values():
        if only is not None and verb.name != only:
            continue
        vp = verbs.add_parser(verb.name, help=verb.summary, description=verb.summary,
                              parents=[after])
        for p in verb.params:
            _add_param(vp, p)
    if only is None or only == "call":
        call = verbs.add_parser("call", help="any verb, with KEY=VALUE arguments (values are "
                                             "JSON when they parse)", parents=[after])
        call.add_argument("call_verb", metavar="VERB")
        call.add_argument("params", nargs="*", metavar="KEY=VALUE")
    if only is None or only == "capture":          # a client of the capture-* verbs
        from pyctl.control import capture_client
        capture_client.add_parser(verbs)
    return ctl


# Options of `tapswitch` and of `ctl` that take a value (verb_of skips the value).
_VALUED = frozenset(("--socket", "-s", "--log-level", "--log-format"))


def verb_of(argv: list[str]) -> str | None:
    """The verb of a `tapswitch ctl VERB ...` command line, when it is plain to see; None
    otherwise (another command, no verb, a verb this table lacks, completion): then every
    verb's parser is built and argparse says what is wrong."""
    words = iter(argv)
    seen_ctl = False
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif word.startswith("-"):
            continue
        elif not seen_ctl:
            if word != "ctl":
                return None
            seen_ctl = True
        else:
            return word if word in VERBS or word in ("call", "capture") else None
    return None


def _item(text: str) -> tuple[str, Any]:
    key, value = keyvalue(text)
    return key, json_or_text(value)


def ctl_args(ns: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The verb and its wire arguments from a parsed ``ctl`` command line."""
    if ns.verb == "call":
        return ns.call_verb, {key.replace("-", "_"): value
                              for key, value in map(_item, ns.params or [])}
    verb: Verb = VERBS[ns.verb]
    args = {k: v for k, v in vars(ns).items() if k not in _OWN}
    for p in verb.params:
        if p.type == "object" and args.get(p.name) is not None:
            args[p.name] = dict((p.item or _item)(text) for text in args[p.name])
    return ns.verb, args


def run(ns: argparse.Namespace, out, err=None) -> None:
    """Send the verb, print its result (raw with ``--json``)."""
    from pyctl.control.client import ConnectionFailed, ControlClient, default_socket_path
    verb, args = ctl_args(ns) if ns.verb != "capture" else ("capture", {})
    try:
        client = ControlClient(ns.socket)
    except ConnectionFailed as exc:
        path = ns.socket or default_socket_path()
        if os.path.exists(path) and not os.access(path, os.W_OK):
            exc.message += (" (a control socket is its owner's, mode 0600: run as that user, "
                            "e.g. with sudo, or use a namespace socket the admin opened for "
                            "you with socket-add)")
            exc.args = (exc.message,)
        raise
    with client:
        if ns.verb == "capture":
            from pyctl.control import capture_client
            return capture_client.run(ns, client, out, err if err is not None else sys.stderr)
        result = client.call(verb, **args)
    if ns.json:
        print(json.dumps(result, indent=2), file=out)
        return
    declared = VERBS.get(ns.verb)
    text = (declared.render if declared is not None and declared.render else render.generic)(result)
    if text:
        print(text, file=out)
