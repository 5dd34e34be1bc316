"""The verb-drift check: every view of the control verbs against the verb table.

``problems(table, views)`` lists every way the views disagree with ``table``
(a dict like ``pyctl.control.verb_table.VERBS``), both ways: a verb missing
from a view, a view's command / method / doc row that is no verb, and
parameters that differ in name, order or whether they are required.
``Views.current()`` gathers the real views; tests feed drifted copies too.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
from typing import Any

# Public methods of the model that are no verb: reads the compiler, the daemon and the
# control server use, and the model's own machinery.
MODEL_OWN = {"namespace", "scope_of", "may_send_from", "port", "as_namespace", "snapshot",
             "subscribe", "watch", "transaction", "read", "namespace_options", "set_capacity",
             "socket_opened", "socket_closed", "netns_delegated", "netns_must_be_created"}
# Public methods of Topology that are no verb: building tenants, the life cycle.
RIG_OWN = {"l2", "tenant", "attach", "start", "close", "client"}
# ctl subcommands that are no verb.
CTL_OWN = {"call", "capture"}      # client-side subcommands: any verb; the capture-* verbs' client


@dataclasses.dataclass
class Views:
    dispatchers: dict[str, Any]      # "standard" / "daemon" -> Dispatcher
    ctl: argparse.ArgumentParser     # the `tapswitch ctl` parser
    model: tuple[type, ...]          # Switch, ActingContext
    rig: type                        # Topology
    doc: str                         # docs/control.md

    @classmethod
    def current(cls, daemon_dispatcher) -> "Views":
        from pyctl.control.ctl import add_ctl_parser
        from pyctl.control.verb_docs import DOC
        from pyctl.control.verbs import standard_dispatcher
        from pyctl.model.switch import ActingContext, Switch
        from pyctl.rig.topology import Topology
        sub = argparse.ArgumentParser(prog="tapswitch").add_subparsers()
        return cls({"standard": standard_dispatcher(), "daemon": daemon_dispatcher},
                   add_ctl_parser(sub), (Switch, ActingContext), Topology, DOC.read_text())


def _declared(verb) -> list[tuple[str, bool]]:
    return [(p.name, p.required) for p in verb.params]


def _signature(method) -> list[tuple[str, bool]]:
    params = list(inspect.signature(method).parameters.values())[1:]      # after self
    return [(p.name, p.default is p.empty) for p in params]


def _public_methods(cls) -> dict[str, Any]:
    out = {}
    for name in dir(cls):
        value = getattr(cls, name)
        if (not name.startswith("_") and callable(value)
                and not hasattr(value, "deprecated_alias_of")):
            out[name] = value
    return out


def _ctl_commands(parser: argparse.ArgumentParser) -> dict[str, list[tuple[str, bool, bool]]]:
    """ctl subcommand -> [(dest, positional, required)], in the order they were added."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, command in sub.choices.items():
        out[name] = [(a.dest, not a.option_strings, not a.option_strings and a.nargs is None)
                     for a in command._actions
                     if not isinstance(a, argparse._HelpAction) and a.dest != "json"]
    return out


def _dispatch_problems(table, dispatchers) -> list[str]:
    out = []
    wanted = {"standard": {n for n, v in table.items() if v.served_by != "daemon"},
              "daemon": set(table)}
    for which, dispatcher in dispatchers.items():
        served = {v.name: v for v in dispatcher.verbs()}
        for name in sorted(wanted[which] - set(served)):
            out.append(f"{name}: the {which} dispatcher does not serve it")
        for name in sorted(set(served) - set(table)):
            out.append(f"{name}: the {which} dispatcher serves it, but it is no verb")
        for name in sorted(set(served) & set(table)):
            if served[name] != table[name]:
                out.append(f"{name}: the {which} dispatcher's declaration differs from the table")
    return out


def _ctl_problems(table, parser) -> list[str]:
    out = []
    commands = _ctl_commands(parser)
    for name, verb in table.items():
        if name not in commands:
            out.append(f"{name}: no ctl subcommand")
            continue
        want = [(p.name, not p.is_option, p.required) for p in verb.params]
        if commands[name] != want:
            out.append(f"{name}: ctl takes {commands[name]}, the table declares {want}")
    for name in sorted(set(commands) - set(table) - CTL_OWN):
        out.append(f"{name}: a ctl subcommand that is no verb")
    return out


def _api_problems(table, cls, verbs, own) -> list[str]:
    out = []
    methods = _public_methods(cls)
    for verb in verbs:
        method = methods.get(verb.py_name)
        if method is None:
            out.append(f"{verb.name}: {cls.__name__} has no method {verb.py_name}")
        elif _signature(method) != _declared(verb):
            out.append(f"{verb.name}: {cls.__name__}.{verb.py_name} takes {_signature(method)}, "
                       f"the table declares {_declared(verb)}")
    names = {v.py_name for v in verbs}
    for name in sorted(set(methods) - names - own):
        known = {v.py_name for v in table.values()}
        why = "a verb it should not offer" if name in known else "no verb"
        out.append(f"{cls.__name__}.{name} is {why} (declare it, or list it as its own)")
    return out


def _doc_problems(table, doc) -> list[str]:
    from pyctl.control.verb_docs import BEGIN, END, update
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        return ["docs/control.md: the generated verb list's markers are missing"]
    rows = [line.split("`")[1] for line in doc[start:end].splitlines() if line.startswith("| `")]
    out = [f"{n}: no line in docs/control.md" for n in table if n not in rows]
    out += [f"{n}: a line in docs/control.md, but no verb" for n in rows if n not in table]
    if update(doc, table) != doc:
        out.append("docs/control.md: the verb list differs from the table "
                   "(python -m pyctl.control.verb_docs)")
    return out


def problems(table: dict, views: Views) -> list[str]:
    """Every disagreement between ``table`` and ``views`` (empty: none)."""
    model_verbs = [v for v in table.values() if v.served_by == "model"]
    rig_verbs = [v for v in table.values() if v.rig]
    out = _dispatch_problems(table, views.dispatchers)
    out += _ctl_problems(table, views.ctl)
    for cls in views.model:
        out += _api_problems(table, cls, model_verbs, MODEL_OWN)
    out += _api_problems(table, views.rig, rig_verbs, RIG_OWN)
    out += _doc_problems(table, views.doc)
    return out
