"""How a control verb is declared: ``Verb`` (name, arguments, access, summary, what it
returns, how people see it, who serves it) and ``Param`` (one argument).

Every verb is declared once, in ``pyctl.control.verb_table``; the control
socket's argument checks and access gate (``pyctl.control.dispatch``), `tapswitch
ctl` (``pyctl.control.ctl``), the Python API's names and argument orders and the
verb list of docs/control.md come from those declarations.  A verb's Python
name is its wire name with '-' -> '_' (``Verb.py_name``); its arguments are
the same, in the same order, everywhere.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from pyctl import errors
from pyctl.control.record import REQUIRED, Record
from pyctl.control.tables import table

__all__ = ["Param", "Verb", "Columns", "ACCESS", "SERVED_BY", "TYPES", "keyvalue",
           "json_or_text"]

ACCESS = ("read", "config", "member", "admin")
# Who answers a verb: a method of the model (Switch / ActingContext, named py_name),
# the control server itself (connection, namespace sockets), or only a running daemon.
SERVED_BY = ("model", "server", "daemon")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "namespace": (lambda v: isinstance(v, str) or _is_int(v), "a namespace name or id"),
    "port": (lambda v: isinstance(v, str) or _is_int(v), "a port name or id"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
}


class Param(Record):
    """One argument of a verb.  On the wire it is a key of ``args``; for `tapswitch ctl`
    a positional argument, or an option when ``option`` (a ``bool`` is a flag, an
    ``object`` a repeated ``KEY=VALUE`` option that ``item`` parses)."""
    FIELDS = (
        ("name", REQUIRED),
        ("type", REQUIRED),             # a key of TYPES
        ("required", True),
        ("default", None),
        ("help", ""),
        ("option", False),              # ctl: --name instead of a positional argument
        ("flags", ()),                  # ctl: the option's spellings (default --name)
        ("choices", None),              # ctl: what it offers (the model validates)
        ("item", None, False),          # ctl: KEY=VALUE -> (key, value) of an object option
    )

    def check(self):
        if self.type not in TYPES:
            raise ValueError(f"unknown parameter type {self.type!r}")
        if self.option and self.required:
            raise ValueError(f"{self.name}: a required argument is positional")
        if self.type in ("bool", "object") and self.required:
            raise ValueError(f"{self.name}: a {self.type} argument is an option: not required")

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def is_option(self) -> bool:
        """ctl takes it as an option (flags), not as a positional argument."""
        return self.option or self.type in ("bool", "object")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required,
                "default": self.default, "help": self.help}


class Columns(Record):
    """A renderer: a list of dicts as a table, ``(HEADER, key)`` per column."""
    FIELDS = (("columns", REQUIRED),)

    def __call__(self, rows: list[dict]) -> str:
        return table([[row.get(key) for _, key in self.columns] for row in rows],
                     [header for header, _ in self.columns])


class Verb(Record):
    """One verb.  ``handler`` is unset in the table; a dispatcher binds one
    (``handler(session, **args)``) when it serves the verb."""
    FIELDS = (
        ("name", REQUIRED),
        ("params", ()),                 # Params, in order
        ("access", "read"),             # one of ACCESS
        ("summary", ""),
        ("result", ""),                 # docs: what a success returns
        ("render", None, False),        # ctl: the result for people; None: generic
        ("served_by", "server"),        # one of SERVED_BY
        ("rig", False),                 # the test rig's Topology offers it
        ("handler", None, False),
    )

    def check(self):
        object.__setattr__(self, "params", tuple(self.params))
        if self.access not in ACCESS:
            raise ValueError(f"{self.name}: access must be one of {ACCESS}")
        if self.served_by not in SERVED_BY:
            raise ValueError(f"{self.name}: served_by must be one of {SERVED_BY}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a parameter is declared twice")
        optional_seen = False
        for p in self.params:
            if p.is_option:
                continue
            if p.required and optional_seen:
                raise ValueError(f"{self.name}: {p.name} is required but follows an optional "
                                 f"positional argument")
            optional_seen = optional_seen or not p.required

    @property
    def py_name(self) -> str:
        """The Python API's name: the wire name with '-' -> '_'."""
        return self.name.replace("-", "_")

    def bind(self, handler: Callable[..., Any]) -> "Verb":
        """This verb served by ``handler(session, **args)``; its keyword names must be
        the parameters' (or it takes ``**kwargs``)."""
        _check_handler(self, handler)
        return self.replace(handler=handler)

    def check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The handler's keyword arguments: defaults filled, everything type-checked."""
        known = {p.name: p for p in self.params}
        extra = sorted(set(args) - set(known))
        if extra:
            allowed = ", ".join(known) or "none"
            raise errors.InvalidArgument(f"{self.name}: unknown argument(s) {', '.join(extra)} "
                                         f"(allowed: {allowed})")
        out = {}
        for p in self.params:
            if p.name not in args or (args[p.name] is None and not p.required):
                if p.required:
                    raise errors.InvalidArgument(f"{self.name}: missing argument {p.name!r}")
                out[p.name] = p.default
                continue
            check, want = TYPES[p.type]
            if not check(args[p.name]):
                raise errors.InvalidArgument(f"{self.name}: argument {p.name!r} must be {want}, "
                                             f"not {args[p.name]!r}")
            out[p.name] = args[p.name]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "access": self.access, "summary": self.summary,
                "params": [p.to_dict() for p in self.params]}


def _check_handler(verb: Verb, handler: Callable[..., Any]) -> None:
    import inspect          # here: `tapswitch ctl` reads the table and binds no handler
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):      # a builtin: nothing to compare
        return
    params = list(signature.parameters.values())[1:]        # after the session
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if names != [p.name for p in verb.params]:
        raise ValueError(f"handler of {verb.name!r} takes ({', '.join(names)}), the verb "
                         f"declares ({', '.join(p.name for p in verb.params)})")


def keyvalue(text: str, what: str = "") -> tuple[str, str]:
    """``KEY=VALUE`` split; a missing '=' or key is refused (``what`` names the argument)."""
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise errors.InvalidArgument(f"{what}{text!r}: expected KEY=VALUE")
    return key, value


def json_or_text(text: str) -> Any:
    """A `tapswitch ctl` value: JSON when it parses (numbers, true, lists), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text
