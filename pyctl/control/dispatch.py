"""How the control socket runs a verb: argument checking, capability gate, handler.

A ``Dispatcher`` maps verb names to ``Verb`` records (handler, parameters,
access level).  ``pyctl.control.verbs.standard_dispatcher()`` holds the model's verbs; the daemon
extends it with ``register()`` (``counters``) or replaces one (``port-add``,
to open the TAP as well)::

    d = standard_dispatcher()
    d.register("counters", counters_handler, [Param("port", "str", required=False)],
               summary="packet and drop counters")

A handler is ``handler(session, **args)``; ``session.api`` is the model as
the client's binding sees it (the Switch for the admin socket, an acting
context otherwise), so the model enforces visibility and capabilities.  The
access level is a second gate in front of every handler, the daemon's too:

- ``read``: anyone; the handler shows only what ``session.api`` can see.
- ``config``: refused to an L3-bound client before the handler runs.
- ``member``: join/leave: allowed to an L3 for its own membership.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Callable

from pyctl import errors

from pyctl.control import protocol
from pyctl.model.values import L3

__all__ = ["Param", "Verb", "Dispatcher", "Session", "to_wire"]

log = logging.getLogger("pyctl.control.server")

ACCESS = ("read", "config", "member")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "namespace": (lambda v: isinstance(v, str) or _is_int(v), "a namespace name or id"),
    "port": (lambda v: isinstance(v, str) or _is_int(v), "a port name or id"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = True
    default: Any = None
    help: str = ""

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"unknown parameter type {self.type!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required,
                "default": self.default, "help": self.help}


@dataclass(frozen=True)
class Verb:
    name: str
    handler: Callable[..., Any]
    params: tuple[Param, ...] = ()
    access: str = "read"
    summary: str = ""

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
            check, want = _TYPES[p.type]
            if not check(args[p.name]):
                raise errors.InvalidArgument(f"{self.name}: argument {p.name!r} must be {want}, "
                                             f"not {args[p.name]!r}")
            out[p.name] = args[p.name]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "access": self.access, "summary": self.summary,
                "params": [p.to_dict() for p in self.params]}


class Session:
    """One client connection: who it is, what it is bound to, what it can see."""

    def __init__(self, server, switch, binding, peer):
        self.server, self.switch, self.binding, self.peer = server, switch, binding, peer

    @property
    def api(self):
        """The model as this client may use it."""
        return self.binding.api

    @property
    def acting(self):
        """The namespace this client acts as (the root for the admin socket)."""
        api = self.binding.api
        return api.acting if api.acting is not None else api.namespace(0)

    def default_namespace(self, ref):
        return self.acting.id if ref is None else ref


class Dispatcher:
    def __init__(self):
        self._verbs: dict[str, Verb] = {}

    def register(self, name: str, handler: Callable[..., Any], params=(), *,
                 access: str = "read", summary: str = "", replace: bool = False) -> Verb:
        if access not in ACCESS:
            raise ValueError(f"access must be one of {ACCESS}")
        if name in self._verbs and not replace:
            raise ValueError(f"verb {name!r} is already registered (pass replace=True)")
        verb = Verb(name, handler, tuple(params), access, summary)
        self._verbs[name] = verb
        return verb

    def get(self, name: str) -> Verb:
        verb = self._verbs.get(name)
        if verb is None:
            raise protocol.UnknownVerb(f"unknown verb {name!r} (the 'verbs' verb lists them)")
        return verb

    def verbs(self) -> list[Verb]:
        return sorted(self._verbs.values(), key=lambda v: v.name)

    def dispatch(self, session: Session, request: protocol.Request) -> Any:
        verb = self.get(request.verb)
        args = verb.check_args(request.args)
        if verb.access == "config" and session.acting.kind == L3:
            raise errors.PermissionDenied(
                f"'{session.acting.name}' is an L3 namespace without NET_ADMIN: "
                f"{verb.name} is refused")
        if verb.access == "read":
            return to_wire(verb.handler(session, **args))
        try:
            result = to_wire(verb.handler(session, **args))
        except errors.TapswitchError as exc:
            log.info("%s as %s: %s %s refused: %s: %s", session.peer, session.binding.name,
                     verb.name, request.args, exc.code, exc.message)
            raise
        log.info("%s as %s: %s %s", session.peer, session.binding.name, verb.name, request.args)
        return result


def to_wire(value: Any) -> Any:
    """Model values as plain JSON data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "to_dict"):
        return to_wire(value.to_dict())
    if hasattr(value, "_asdict"):            # NamedTuple (TaggedAddress)
        return to_wire(value._asdict())
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_wire(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
                          ipaddress.IPv6Interface, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} over the control socket")
