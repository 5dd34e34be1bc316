"""The handlers of the standard verbs: the model's and the control server's.

The verbs themselves (names, arguments, access) are declared in
``pyctl.control.verb_table``.  A model verb runs ``session.api.<py_name>(**args)``
(the Switch for the admin socket, ``switch.as_namespace(...)`` for a namespace
socket), so the model decides visibility and capabilities and an optional
``namespace`` defaults to the one the client acts as; ``model_result`` turns
a few results into plain data (names instead of values).  Each verb is one
model call (which is atomic), so no verb can be half-applied.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any

from pyctl import errors

from pyctl.control import protocol
from pyctl.control.dispatch import Dispatcher, Session
from pyctl.control.verb_table import VERBS, served_by

__all__ = ["standard_dispatcher", "call_model"]


def _package_version() -> str:
    try:
        return metadata.version("tapswitch")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- the model's verbs --------------------------------------------------------------

def _port(api, port) -> dict[str, Any]:
    return {**port.to_dict(), "namespace": api.namespace(port.ns).name}


def _namespaces(api, listed):
    names = {ns.id: ns.name for ns in listed}
    return [{**ns.to_dict(), "parent_name": names.get(ns.parent)} for ns in listed]


# Results the wire gives other than as the model's values.
_RESULTS = {
    "namespaces": _namespaces,
    "owner": lambda api, holder: None if holder is None else holder.name,
    "ports": lambda api, ports: [_port(api, p) for p in ports],
    "port-add": _port,
    "members": lambda api, members: [ns.name for ns in members],
}


def call_model(api, verb: str, args: dict[str, Any]) -> Any:
    """Model verb ``verb`` on ``api`` (a Switch or an acting context), its result as the
    control socket gives it (before ``to_wire``)."""
    result = getattr(api, VERBS[verb].py_name)(**args)
    shape = _RESULTS.get(verb)
    return result if shape is None else shape(api, result)


def _model_handler(verb: str):
    def handler(s: Session, **args):
        return call_model(s.api, verb, args)
    handler.__name__ = VERBS[verb].py_name
    return handler


# -- the server's verbs -------------------------------------------------------------

def ping(s: Session):
    return "pong"


def version(s: Session):
    return {"tapswitch": _package_version(), "protocol": protocol.PROTOCOL_VERSION,
            "model_version": s.switch.version if s.binding.admin else None}


def whoami(s: Session):
    ns = s.acting
    return {"namespace": ns.name, "id": ns.id, "kind": ns.kind, "admin": s.binding.admin,
            "scope": s.api.scope_of(ns.id).name, "socket": s.binding.path,
            "peer": {"pid": s.peer.pid, "uid": s.peer.uid, "gid": s.peer.gid}}


def verbs(s: Session):
    return [v.to_dict() for v in s.server.dispatcher.verbs()]


def show(s: Session, namespace):
    api = s.api
    ns = api.namespace(s.default_namespace(namespace))
    children = [c.name for c in api.namespaces() if c.parent == ns.id]
    parent = None
    if ns.parent is not None:
        try:
            parent = api.namespace(ns.parent).name
        except errors.NotFound:      # above the acting namespace: not visible
            parent = None
    return {**ns.to_dict(), "parent_name": parent, "scope": api.scope_of(ns.id).name,
            "children": children, "addresses": api.addresses(ns.id),
            "routes": api.routes(ns.id), "ports": [_port(api, p) for p in api.ports(ns.id)],
            "groups": api.groups(ns.id), "options": api.namespace_options(ns.id),
            "netns": api.netns_delegated(ns.id) if ns.kind == "l2" else []}


def sockets(s: Session):
    visible = {ns.name for ns in s.api.namespaces()}
    return [{"namespace": name, "path": path}
            for name, path in sorted(s.server.bindings().items()) if name in visible]


def socket_add(s: Session, namespace):
    ns = s.api.namespace(namespace)          # NotFound outside the caller's subtree
    return {"namespace": ns.name, "path": s.server.bind_namespace(ns.id)}


def socket_del(s: Session, namespace):
    ns = s.api.namespace(namespace)
    if s.binding.namespace == ns.id:
        raise errors.PermissionDenied(f"a client cannot close the socket it is connected "
                                      f"through ('{ns.name}')")
    s.server.unbind_namespace(ns.name)


_SERVER = {"ping": ping, "version": version, "whoami": whoami, "verbs": verbs, "show": show,
           "sockets": sockets, "socket-add": socket_add, "socket-del": socket_del}


def standard_dispatcher() -> Dispatcher:
    """A fresh dispatcher serving every verb of the table the model and the server
    answer; the daemon binds its own (``served_by="daemon"``) before serving."""
    d = Dispatcher()
    for verb in served_by("model"):
        d.register(verb, _model_handler(verb.name))
    for verb in served_by("server"):
        d.register(verb, _SERVER[verb.name])
    return d
