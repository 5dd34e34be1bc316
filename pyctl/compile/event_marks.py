"""What each model change may touch in the plan: one handler per event type.

``MARKS_OF`` maps every type of ``pyctl.model.events.EVENT_TYPES`` to the
function that adds, to a ``Marks``, the plan entries a change of that type may
touch, by id.  ``PlanBuilder.update`` then recompiles exactly those (and what
depends on them).  The events carry ids and parsed values, so no handler reads
the model: a rolled-back change marks the same entries as it did when made.
An event type without an entry is a programming error: ``marks_of`` raises
``UnhandledEvent`` (tests/compile/test_event_marks.py checks every type has one).
"""
from pyctl.compile.plan import fast_path_key
from pyctl.model.events import (AddressAdded, AddressAssigned, AddressDeleted, AddressPulled,
                                AddressPushed, GroupJoined, GroupLeft, NamespaceCreated,
                                NamespaceDestroyed, NamespaceOptionsSet, NetnsDelegated,
                                NetnsRevoked, PortAdded, PortDeleted, QuotaSet, RouteAdded,
                                RouteDeleted, RouteReplaced)

__all__ = ["Marks", "MARKS_OF", "marks_of", "UnhandledEvent"]


class UnhandledEvent(TypeError):
    """A model event the compiler has no rule for: its plan may now be wrong."""


class Marks:
    """Plan entries to recompile, by id."""

    __slots__ = ("namespaces", "ports", "addresses", "routes", "scopes", "connected",
                 "memberships")

    def __init__(self):
        self.namespaces = set()       # ns ids: kind, scope, ports, multicast memberships
        self.ports = set()            # port ids
        self.addresses = set()        # (scope, ip key): both families (plan.fast_path_key)
        self.routes = set()           # (scope, prefix key, plen)
        self.scopes = set()           # L2 ids: every address and route of the scope
        self.connected = set()        # L2 ids: their connected routes (the ports they use)
        self.memberships = set()      # (ns id, group ip_address): one multicast membership

    def update(self, other):
        for name in self.__slots__:
            getattr(self, name).update(getattr(other, name))

    def __bool__(self):
        return any(getattr(self, name) for name in self.__slots__)


def _mark_address(marks, scope_id, iface):
    """The address, and the connected route of its subnet if it is the L2's own."""
    key = fast_path_key(iface.ip)
    if key is not None:
        marks.addresses.add((scope_id, key))
        network = iface.network
        prefix = fast_path_key(network.network_address)
        if prefix is not None:
            marks.routes.add((scope_id, prefix, network.prefixlen))


def _namespace_created(event, marks):
    ns = event.namespace
    marks.namespaces.add(ns.id)
    if ns.is_l2:
        marks.scopes.add(ns.id)


def _namespace_destroyed(event, marks):
    for gone in event.destroyed:
        ns = gone.namespace
        marks.namespaces.add(ns.id)   # its ports and memberships with it
        if ns.is_l2:
            marks.scopes.add(ns.id)   # its addresses (and its L3s') and its routes
    for iface in event.returned:      # an L3's addresses, back with its parent
        _mark_address(marks, event.parent.id, iface)


def _address(event, marks):
    _mark_address(marks, event.scope.id, event.address)


def _route(event, marks):
    network = event.network
    marks.routes.add((event.scope.id, fast_path_key(network.network_address), network.prefixlen))


def _port(event, marks):
    marks.ports.add(event.port.id)
    marks.namespaces.add(event.port.ns)   # the routes via its namespace's addresses
    if event.namespace.is_l2:
        marks.connected.add(event.port.ns)    # the port may lead to a connected subnet


def _membership(event, marks):
    """One membership, not the namespace: a join or leave costs that membership and its
    group, however many groups the namespace has (issue 14 item 10)."""
    marks.memberships.add((event.namespace.id, event.group))


def _options(event, marks):
    marks.namespaces.add(event.namespace.id)


def _nothing(event, marks):
    pass


# event type         handler               plan tables it may touch
MARKS_OF = {
    NamespaceCreated:   _namespace_created,   # namespaces; a new L2: its scope
    NamespaceDestroyed: _namespace_destroyed,  # everything of the subtree, returned addresses
    AddressAdded:       _address,             # addresses, broadcasts, routes via it
    AddressDeleted:     _address,
    AddressPushed:      _address,
    AddressPulled:      _address,
    AddressAssigned:    _address,
    RouteAdded:         _route,               # routes, unresolved
    RouteDeleted:       _route,
    PortAdded:          _port,                # ports, routes via its namespace
    PortDeleted:        _port,
    GroupJoined:        _membership,          # memberships, multicast: that group only
    GroupLeft:          _membership,
    NamespaceOptionsSet: _options,            # scope_options (the slow path's), directed
    QuotaSet:           _nothing,             # none: what may be held, not what is
    RouteReplaced:      _route,               # routes, unresolved
    NetnsDelegated:     _nothing,             # none: who may name a kernel namespace
    NetnsRevoked:       _nothing,
}


def marks_of(event, marks):
    """Add to ``marks`` what ``event`` may touch; ``UnhandledEvent`` for an unknown type."""
    handler = MARKS_OF.get(type(event))
    if handler is None:
        raise UnhandledEvent(f"the compiler has no rule for {type(event).__name__} "
                             f"({getattr(event, 'kind', '?')}, version "
                             f"{getattr(event, 'version', '?')}): add it to "
                             f"pyctl.compile.event_marks.MARKS_OF")
    handler(event, marks)
    return marks
