"""The model's change events: one frozen dataclass per kind of change.

Each successful verb emits one event (``Switch.subscribe`` / ``Switch.watch``).
An event carries what a listener needs to act without asking the model again
or parsing text: namespaces and ports as their values (ids and names), IP
addresses, networks and groups as ``ipaddress`` objects.  ``kind`` is a stable
string per type (``"address.push"``), for logs and anything outside Python;
``version`` is the switch's version after the change and ``categories`` the
per-category versions it bumped.  ``to_dict()`` gives plain JSON-able data.

``EVENT_TYPES`` lists every type the model emits: a listener that maps types
to actions (``pyctl.compile.event_marks``) is tested to cover all of them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields
from typing import ClassVar, Optional, Union

from pyctl.model.values import Namespace, Port, Route

__all__ = [
    "ChangeEvent", "NamespaceCreated", "NamespaceDestroyed", "DestroyedNamespace",
    "AddressEvent", "AddressAdded", "AddressDeleted", "TenantAddressEvent", "AddressPushed",
    "AddressPulled", "AddressAssigned", "RouteEvent", "RouteAdded", "RouteDeleted", "PortEvent",
    "PortAdded", "PortDeleted", "MembershipEvent", "GroupJoined", "GroupLeft", "QuotaSet",
    "RouteReplaced", "NamespaceOptionsSet", "NetnsEvent", "NetnsDelegated", "NetnsRevoked",
    "EVENT_TYPES",
]

Interface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _plain(value):
    """JSON-able data of an event field."""
    if isinstance(value, (Namespace, Port, Route, DestroyedNamespace)):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)                 # ipaddress values


def _fields_dict(value):
    return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}


@dataclass(frozen=True, kw_only=True)
class ChangeEvent:
    """One successful change of the model."""

    kind: ClassVar[str] = ""
    categories: ClassVar[tuple] = ()
    version: int

    def to_dict(self):
        return {"kind": self.kind, **_fields_dict(self), "categories": list(self.categories)}


# -- the tree -----------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class NamespaceCreated(ChangeEvent):
    kind = "namespace.create"
    categories = ("namespaces",)
    namespace: Namespace


@dataclass(frozen=True)
class DestroyedNamespace:
    """One namespace of a destroyed subtree, with what went with it."""

    namespace: Namespace
    addresses: tuple = ()             # interfaces it held that are gone (not returned)
    routes: tuple = ()                # networks of its routes (an L2)
    ports: tuple = ()                 # Port values that were attached to it
    groups: tuple = ()                # multicast groups it was a member of

    def to_dict(self):
        return _fields_dict(self)


@dataclass(frozen=True, kw_only=True)
class NamespaceDestroyed(ChangeEvent):
    """``namespace`` and its subtree are gone (``destroyed``: children first, ``namespace``
    last).  An L3's addresses went back to ``parent``: ``returned``."""

    kind = "namespace.destroy"
    namespace: Namespace
    parent: Namespace
    destroyed: tuple                  # DestroyedNamespace, children before parents
    returned: tuple = ()              # interfaces now held by ``parent``

    @property
    def removed_addresses(self):
        return tuple(iface for gone in self.destroyed for iface in gone.addresses)

    @property
    def removed_ports(self):
        return tuple(port for gone in self.destroyed for port in gone.ports)

    @property
    def categories(self):
        out = ["namespaces"]
        if self.returned or any(gone.addresses for gone in self.destroyed):
            out.append("addresses")
        if any(gone.routes for gone in self.destroyed):
            out.append("routes")
        if any(gone.groups for gone in self.destroyed):
            out.append("groups")
        if any(gone.ports for gone in self.destroyed):
            out.append("ports")
        return tuple(out)


# -- addresses: each one is held in the address space of one L2, its ``scope`` ---------------

@dataclass(frozen=True, kw_only=True)
class AddressEvent(ChangeEvent):
    categories = ("addresses",)
    address: Interface
    scope: Namespace                  # the L2 whose address space holds it


@dataclass(frozen=True, kw_only=True)
class AddressAdded(AddressEvent):
    """``scope`` holds a new address."""
    kind = "address.add"


@dataclass(frozen=True, kw_only=True)
class AddressDeleted(AddressEvent):
    """``scope`` held the address; nobody does now."""
    kind = "address.delete"


@dataclass(frozen=True, kw_only=True)
class TenantAddressEvent(AddressEvent):
    tenant: Namespace                 # the L3 child of ``scope`` it moved to or from


@dataclass(frozen=True, kw_only=True)
class AddressPushed(TenantAddressEvent):
    """Moved from ``scope`` to its L3 child ``tenant``."""
    kind = "address.push"


@dataclass(frozen=True, kw_only=True)
class AddressPulled(TenantAddressEvent):
    """Moved from the L3 ``tenant`` back to its parent ``scope``."""
    kind = "address.pull"


@dataclass(frozen=True, kw_only=True)
class AddressAssigned(TenantAddressEvent):
    """Created in ``scope`` and pushed to ``tenant`` in one step (``scope`` never held it)."""
    kind = "address.assign_and_push"


# -- routes of an L2 -----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RouteEvent(ChangeEvent):
    categories = ("routes",)
    scope: Namespace                  # the L2 that owns the route
    network: Network
    via: Optional[Address] = None
    port: Optional[Port] = None       # the egress port, attached to ``scope``

    @property
    def route(self):
        """The model's ``Route`` value."""
        return Route(str(self.network), None if self.via is None else str(self.via),
                     None if self.port is None else self.port.name)


@dataclass(frozen=True, kw_only=True)
class RouteAdded(RouteEvent):
    kind = "route.add"


@dataclass(frozen=True, kw_only=True)
class RouteDeleted(RouteEvent):
    kind = "route.delete"


@dataclass(frozen=True, kw_only=True)
class RouteReplaced(RouteEvent):
    """The route to ``network`` is now the one given, in one step; ``previous`` is the
    route it replaced (None: there was none, the route was added)."""
    kind = "route.replace"
    previous: Optional[Route] = None


# -- ports ---------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PortEvent(ChangeEvent):
    categories = ("ports",)
    port: Port
    namespace: Namespace              # the one ``port.ns`` names


@dataclass(frozen=True, kw_only=True)
class PortAdded(PortEvent):
    kind = "port.add"


@dataclass(frozen=True, kw_only=True)
class PortDeleted(PortEvent):
    kind = "port.delete"


# -- multicast membership ------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class MembershipEvent(ChangeEvent):
    categories = ("groups",)
    namespace: Namespace              # the member; its scope is ``namespace.scope_id``
    group: Address


@dataclass(frozen=True, kw_only=True)
class GroupJoined(MembershipEvent):
    kind = "group.join"


@dataclass(frozen=True, kw_only=True)
class GroupLeft(MembershipEvent):
    kind = "group.leave"


# -- quotas (pyctl.model.quotas) -----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class QuotaSet(ChangeEvent):
    """``namespace``'s quotas are now ``quota``: ((key, limit), ...), sorted; what may be
    held, not what is (no category: no table changes)."""
    kind = "quota.set"
    namespace: Namespace
    quota: tuple = ()

    @property
    def limits(self):
        return dict(self.quota)


# -- an L2's options (pyctl.model.namespace_options) ----------------------------------------

@dataclass(frozen=True, kw_only=True)
class NamespaceOptionsSet(ChangeEvent):
    """L2 ``namespace``'s options are now ``options``: ((key, value), ...), sorted."""
    kind = "namespace.set"
    categories = ("namespaces",)
    namespace: Namespace
    options: tuple = ()


# -- kernel namespaces delegated to an L2 (pyctl.model.kernel_reach) -------------------------

@dataclass(frozen=True, kw_only=True)
class NetnsEvent(ChangeEvent):
    """Who may name kernel namespace ``netns`` in a port's options changed (no table
    changes: no category)."""
    namespace: Namespace              # the L2 it is delegated to
    netns: str


@dataclass(frozen=True, kw_only=True)
class NetnsDelegated(NetnsEvent):
    kind = "netns.delegate"


@dataclass(frozen=True, kw_only=True)
class NetnsRevoked(NetnsEvent):
    kind = "netns.revoke"


EVENT_TYPES = (NamespaceCreated, NamespaceDestroyed, AddressAdded, AddressDeleted,
               AddressPushed, AddressPulled, AddressAssigned, RouteAdded, RouteDeleted,
               PortAdded, PortDeleted, GroupJoined, GroupLeft, QuotaSet, RouteReplaced,
               NamespaceOptionsSet, NetnsDelegated, NetnsRevoked)
