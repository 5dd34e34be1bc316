"""How the control socket runs a verb: argument checking, capability gate, handler.

A ``Dispatcher`` maps verb names to bound ``Verb`` declarations (handler,
parameters, access level; ``pyctl.control.declare``).  ``pyctl.control.verbs.
standard_dispatcher()`` serves the verbs of the verb table the model and the
server answer; the daemon binds its own verbs of the table and replaces one
(``ports``, adding each port's state)::

    d = standard_dispatcher()
    d.register(VERBS["counters"], counters_handler)          # a verb of the table
    d.register("my-verb", handler, [Param("port", "str", required=False)],
               summary="...")                               # or declared on the spot

A handler is ``handler(session, **args)``; ``session.api`` is the model as
the client's binding sees it (the Switch for the admin socket, an acting
context otherwise), so the model enforces visibility and capabilities.  The
access level is a second gate in front of every handler, the daemon's too:

- ``read``: anyone; the handler shows only what ``session.api`` can see.
- ``config``: refused to an L3-bound client before the handler runs.
- ``member``: join/leave: allowed to an L3 for its own membership.
- ``admin``: the admin socket only (``reload``).

Every request, served or refused, is logged and counted by ``pyctl.control.audit``.
"""
from __future__ import annotations

import ipaddress
import time
from typing import Any, Callable

from pyctl import errors

from pyctl.control import protocol
from pyctl.control.audit import Audit
from pyctl.control.declare import ACCESS, Param, Verb
from pyctl.model.values import L3

__all__ = ["Param", "Verb", "Dispatcher", "Session", "to_wire"]


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
    def __init__(self, audit: Audit | None = None):
        self._verbs: dict[str, Verb] = {}
        self.audit = audit if audit is not None else Audit()

    def register(self, verb: str | Verb, handler: Callable[..., Any], params=(), *,
                 access: str = "read", summary: str = "", replace: bool = False) -> Verb:
        """Serve ``verb`` with ``handler(session, **args)``: a declared ``Verb`` (of the
        verb table), or a name with its parameters, access and summary."""
        if isinstance(verb, Verb):
            if params or access != "read" or summary:
                raise ValueError(f"{verb.name}: a declared verb brings its own parameters, "
                                 f"access and summary")
        else:
            if access not in ACCESS:
                raise ValueError(f"access must be one of {ACCESS}")
            verb = Verb(verb, tuple(params), access, summary)
        if verb.name in self._verbs and not replace:
            raise ValueError(f"verb {verb.name!r} is already registered (pass replace=True)")
        bound = verb.bind(handler)
        self._verbs[verb.name] = bound
        return bound

    def get(self, name: str) -> Verb:
        verb = self._verbs.get(name)
        if verb is None:
            raise protocol.UnknownVerb(f"unknown verb {name!r} (the 'verbs' verb lists them)")
        return verb

    def verbs(self) -> list[Verb]:
        return sorted(self._verbs.values(), key=lambda v: v.name)

    def dispatch(self, session: Session, request: protocol.Request) -> Any:
        """Check, gate and run one request; every outcome goes to the audit log
        (``pyctl.control.audit``)."""
        started = time.monotonic()
        access = None
        try:
            verb = self.get(request.verb)
            access = verb.access
            args = verb.check_args(request.args)
            _gate(session, verb)
            result = to_wire(self.execute(session, verb, args))
        except errors.TapswitchError as exc:
            self.audit.record(session, request.verb, access, request.args, exc.code, exc.message,
                              time.monotonic() - started)
            raise
        except Exception as exc:       # a bug: the server answers EIO and logs the traceback
            self.audit.record(session, request.verb, access, request.args, "EIO", repr(exc),
                              time.monotonic() - started)
            raise
        self.audit.record(session, request.verb, access, request.args, None, None,
                          time.monotonic() - started)
        return result

    def execute(self, session: Session, verb: Verb, args: dict[str, Any]) -> Any:
        """Run ``verb``'s handler (checked and gated already).  The daemon's dispatcher
        runs the configuring ones inside ``Daemon.change()``."""
        return verb.handler(session, **args)


def _gate(session: Session, verb: Verb) -> None:
    """The access level, checked before any handler runs."""
    if verb.access == "config" and session.acting.kind == L3:
        raise errors.PermissionDenied(
            f"'{session.acting.name}' is an L3 namespace without NET_ADMIN: "
            f"{verb.name} is refused")
    if verb.access == "admin" and not session.binding.admin:
        raise errors.PermissionDenied(f"{verb.name} is for the admin socket only (this socket "
                                      f"acts as '{session.binding.name}')")


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
