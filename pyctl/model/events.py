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
from typing import ClassVar, Optional, Union, dataclass_transform

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


@dataclass_transform(frozen_default=True, kw_only_default=True)
@dataclass(frozen=True, kw_only=True)
class ChangeEvent:
    """One successful change of the model.

    Every subclass is a frozen, keyword-only dataclass without a decorator of its own
    (``__init_subclass__`` makes it one); a type the model emits names its kind in its
    class line: ``class PortAdded(PortEvent, kind="port.add")``."""

    kind: ClassVar[str] = ""
    categories: ClassVar[tuple] = ()
    version: int

    def __init_subclass__(cls, kind=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
        dataclass(frozen=True, kw_only=True)(cls)

    def to_dict(self):
        return {"kind": self.kind, **_fields_dict(self), "categories": list(self.categories)}


# -- the tree -----------------------------------------------------------------------------

class NamespaceCreated(ChangeEvent, kind="namespace.create"):
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


class NamespaceDestroyed(ChangeEvent, kind="namespace.destroy"):
    """``namespace`` and its subtree are gone (``destroyed``: children first, ``namespace``
    last).  An L3's addresses went back to ``parent``: ``returned``."""
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

class AddressEvent(ChangeEvent):
    categories = ("addresses",)
    address: Interface
    scope: Namespace                  # the L2 whose address space holds it


class AddressAdded(AddressEvent, kind="address.add"):
    """``scope`` holds a new address."""


class AddressDeleted(AddressEvent, kind="address.delete"):
    """``scope`` held the address; nobody does now."""


class TenantAddressEvent(AddressEvent):
    tenant: Namespace                 # the L3 child of ``scope`` it moved to or from


class AddressPushed(TenantAddressEvent, kind="address.push"):
    """Moved from ``scope`` to its L3 child ``tenant``."""


class AddressPulled(TenantAddressEvent, kind="address.pull"):
    """Moved from the L3 ``tenant`` back to its parent ``scope``."""


class AddressAssigned(TenantAddressEvent, kind="address.assign_and_push"):
    """Created in ``scope`` and pushed to ``tenant`` in one step (``scope`` never held it)."""


# -- routes of an L2 -----------------------------------------------------------------------

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


class RouteAdded(RouteEvent, kind="route.add"):
    """``scope`` routes ``network`` (via ``via``, out of ``port``)."""


class RouteDeleted(RouteEvent, kind="route.delete"):
    """``scope`` no longer routes ``network`` that way."""


class RouteReplaced(RouteEvent, kind="route.replace"):
    """The route to ``network`` is now the one given, in one step; ``previous`` is the
    route it replaced (None: there was none, the route was added)."""
    previous: Optional[Route] = None


# -- ports ---------------------------------------------------------------------------------

class PortEvent(ChangeEvent):
    categories = ("ports",)
    port: Port
    namespace: Namespace              # the one ``port.ns`` names


class PortAdded(PortEvent, kind="port.add"):
    """``port`` is attached to ``namespace``."""


class PortDeleted(PortEvent, kind="port.delete"):
    """``port`` was attached to ``namespace``; it is gone."""


# -- multicast membership ------------------------------------------------------------------

class MembershipEvent(ChangeEvent):
    categories = ("groups",)
    namespace: Namespace              # the member; its scope is ``namespace.scope_id``
    group: Address


class GroupJoined(MembershipEvent, kind="group.join"):
    """``namespace`` is a member of ``group``."""


class GroupLeft(MembershipEvent, kind="group.leave"):
    """``namespace`` left ``group``."""


# -- quotas (pyctl.model.quotas) -----------------------------------------------------------

class QuotaSet(ChangeEvent, kind="quota.set"):
    """``namespace``'s quotas are now ``quota``: ((key, limit), ...), sorted; what may be
    held, not what is (no category: no table changes)."""
    namespace: Namespace
    quota: tuple = ()

    @property
    def limits(self):
        return dict(self.quota)


# -- an L2's options (pyctl.model.namespace_options) ----------------------------------------

class NamespaceOptionsSet(ChangeEvent, kind="namespace.set"):
    """L2 ``namespace``'s options are now ``options``: ((key, value), ...), sorted."""
    categories = ("namespaces",)
    namespace: Namespace
    options: tuple = ()


# -- kernel namespaces delegated to an L2 (pyctl.model.kernel_reach) -------------------------

class NetnsEvent(ChangeEvent):
    """Who may name kernel namespace ``netns`` in a port's options changed (no table
    changes: no category)."""
    namespace: Namespace              # the L2 it is delegated to
    netns: str


class NetnsDelegated(NetnsEvent, kind="netns.delegate"):
    """``netns`` is delegated to ``namespace``."""


class NetnsRevoked(NetnsEvent, kind="netns.revoke"):
    """``netns`` is no longer delegated to ``namespace``."""


EVENT_TYPES = (NamespaceCreated, NamespaceDestroyed, AddressAdded, AddressDeleted,
               AddressPushed, AddressPulled, AddressAssigned, RouteAdded, RouteDeleted,
               PortAdded, PortDeleted, GroupJoined, GroupLeft, QuotaSet, RouteReplaced,
               NamespaceOptionsSet, NetnsDelegated, NetnsRevoked)
