"""The standard verbs of the control socket: the model's API, named like the ip command.

Every handler acts through ``session.api`` (the Switch for the admin socket,
``switch.as_namespace(...)`` for a namespace socket), so the model decides
visibility and capabilities; a verb that takes an optional ``namespace``
defaults to the namespace the client is bound to.  Each verb is one model
call (which is atomic), so no verb can be half-applied.
"""
from __future__ import annotations

from importlib import metadata

from pyctl import errors

from pyctl.control import protocol
from pyctl.control.dispatch import Dispatcher, Param, Session

__all__ = ["standard_dispatcher"]

_NS = Param("namespace", "namespace", help="namespace name or id")
_NS_OPT = Param("namespace", "namespace", required=False,
                help="namespace name or id (default: the one this socket acts as)")
_ADDR = Param("address", "str", help="interface address A/N, e.g. 10.0.0.5/24")
_GROUP = Param("group", "str", help="multicast group address")


def _package_version() -> str:
    try:
        return metadata.version("tapswitch")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- about the connection -------------------------------------------------------

def ping(s: Session):
    return "pong"


def version(s: Session):
    return {"tapswitch": _package_version(), "protocol": protocol.PROTOCOL_VERSION,
            "model_version": s.switch.version}


def whoami(s: Session):
    ns = s.acting
    return {"namespace": ns.name, "id": ns.id, "kind": ns.kind, "admin": s.binding.admin,
            "scope": s.api.scope_of(ns.id).name, "socket": s.binding.path,
            "peer": {"pid": s.peer.pid, "uid": s.peer.uid, "gid": s.peer.gid}}


def verbs(s: Session):
    return [v.to_dict() for v in s.server.dispatcher.verbs()]


# -- namespaces -------------------------------------------------------------------

def namespaces(s: Session):
    listed = s.api.namespaces()
    names = {ns.id: ns.name for ns in listed}
    return [{**ns.to_dict(), "parent_name": names.get(ns.parent)} for ns in listed]


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
            "routes": api.routes(ns.id), "ports": [_port_dict(api, p) for p in api.ports(ns.id)],
            "groups": api.groups(ns.id)}


def create(s: Session, name, kind, parent):
    return s.api.create(name, kind, parent=parent)


def destroy(s: Session, namespace, recursive):
    s.api.destroy(namespace, recursive=recursive)


# -- addresses --------------------------------------------------------------------

def addresses(s: Session, namespace, tagged):
    return s.api.addresses(s.default_namespace(namespace), tagged=tagged)


def address_add(s: Session, namespace, address):
    s.api.add_address(namespace, address)


def address_del(s: Session, namespace, address):
    s.api.del_address(namespace, address)


def push(s: Session, address, namespace):
    s.api.push(address, namespace)


def pull(s: Session, address, namespace):
    s.api.pull(address, namespace)


def assign_and_push(s: Session, address, namespace):
    s.api.assign_and_push(address, namespace)


def owner(s: Session, address, namespace):
    holder = s.api.owner_of(address, s.default_namespace(namespace))
    return None if holder is None else holder.name


# -- routes -----------------------------------------------------------------------

def routes(s: Session, namespace):
    return s.api.routes(s.default_namespace(namespace))


def route_add(s: Session, namespace, prefix, via, port):
    return s.api.add_route(namespace, prefix, via=via, port=port)


def route_del(s: Session, namespace, prefix, via, port):
    s.api.del_route(namespace, prefix, via=via, port=port)


# -- ports ------------------------------------------------------------------------

def _port_dict(api, port):
    return {**port.to_dict(), "namespace": api.namespace(port.ns).name}


def ports(s: Session, namespace):
    return [_port_dict(s.api, p) for p in s.api.ports(namespace)]


def port_add(s: Session, name, namespace, mac, options):
    return _port_dict(s.api, s.api.add_port(name, namespace, mac=mac, options=options))


def port_del(s: Session, name):
    s.api.del_port(name)


# -- multicast membership ---------------------------------------------------------

def join(s: Session, group, namespace):
    s.api.join(s.default_namespace(namespace), group)


def leave(s: Session, group, namespace):
    s.api.leave(s.default_namespace(namespace), group)


def groups(s: Session, namespace):
    return s.api.groups(s.default_namespace(namespace))


def members(s: Session, group, namespace):
    return [ns.name for ns in s.api.members(s.default_namespace(namespace), group)]


# -- namespace sockets ------------------------------------------------------------

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


def standard_dispatcher() -> Dispatcher:
    """A fresh dispatcher with every model verb; extend it before giving it to the server."""
    d = Dispatcher()
    r = d.register
    r("ping", ping, summary="check the connection")
    r("version", version, summary="tapswitch and protocol versions, model version")
    r("whoami", whoami, summary="the namespace this socket acts as, and your credentials")
    r("verbs", verbs, summary="every verb with its arguments")
    r("namespaces", namespaces, summary="visible namespaces, parents first")
    r("show", show, [_NS_OPT], summary="one namespace: addresses, routes, ports, groups")
    r("create", create, [Param("name", "str"), Param("kind", "str", help="l2 or l3"),
                         Param("parent", "namespace", required=False,
                               help="default: the root, or the acting L2")],
      access="config", summary="create a namespace")
    r("destroy", destroy, [_NS, Param("recursive", "bool", required=False, default=False)],
      access="config", summary="destroy a namespace (an L3's addresses return to its parent)")
    r("addresses", addresses, [_NS_OPT, Param("tagged", "bool", required=False, default=False,
                                              help="also descendants' addresses, tagged")],
      summary="addresses of a namespace (loopback included)")
    r("address-add", address_add, [_NS, _ADDR], access="config",
      summary="create an address in an L2")
    r("address-del", address_del, [_NS, _ADDR], access="config",
      summary="delete an address of an L2")
    r("push", push, [_ADDR, _NS], access="config",
      summary="move an address of the parent L2 into an L3")
    r("pull", pull, [_ADDR, _NS], access="config",
      summary="give an L3's address back to its parent")
    r("assign-and-push", assign_and_push, [_ADDR, _NS], access="config",
      summary="create an address in the parent and push it, in one step")
    r("owner", owner, [Param("address", "str", help="IP address"), _NS_OPT],
      summary="which namespace holds an IP in a scope")
    r("routes", routes, [_NS_OPT], summary="routes a namespace uses (an L3: its parent's)")
    r("route-add", route_add, [_NS, Param("prefix", "str", help="A/N or default"),
                               Param("via", "str", required=False),
                               Param("port", "port", required=False)],
      access="config", summary="add a route to an L2")
    r("route-del", route_del, [_NS, Param("prefix", "str"), Param("via", "str", required=False),
                               Param("port", "port", required=False)],
      access="config", summary="delete a route of an L2")
    r("ports", ports, [Param("namespace", "namespace", required=False,
                             help="default: every visible port")],
      summary="ports (TAPs) and their options")
    r("port-add", port_add, [Param("name", "str"), _NS, Param("mac", "str", required=False),
                             Param("options", "object", required=False,
                                   help="vnet_hdr, offloads, txqueuelen, mtu, netns, "
                                        "address, gateway")],
      access="config", summary="attach a port to a namespace")
    r("port-del", port_del, [Param("name", "port")], access="config", summary="remove a port")
    r("join", join, [_GROUP, _NS_OPT], access="member",
      summary="join a multicast group (an L3 may, for itself)")
    r("leave", leave, [_GROUP, _NS_OPT], access="member", summary="leave a multicast group")
    r("groups", groups, [_NS_OPT], summary="multicast groups of a namespace")
    r("members", members, [_GROUP, _NS_OPT], summary="members of a group in a scope")
    r("sockets", sockets, summary="namespace control sockets that are open")
    r("socket-add", socket_add, [_NS], access="config",
      summary="open a control socket acting as a namespace")
    r("socket-del", socket_del, [_NS], access="config", summary="close a namespace's socket")
    return d
