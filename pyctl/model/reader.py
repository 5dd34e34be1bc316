"""The model's facts by id, for the parts that compile or serve it (``Switch.read()``).

The verbs answer people: names, access checks, sorted listings of text.  The
compiler and the daemon ask other questions, many per change, by id: who holds
this IP in that scope, which ports hang off this namespace, what is the route
to this network.  ``ModelReader`` answers them from the model's indexes
(``pyctl.model.state``: holders per scope, ports by id, the records' ports,
routes and groups), each in O(1) or O(answer), never by a scan.  It sees
everything (the administrator's view) and hands out immutable values or
``ipaddress`` objects.

A reader is had only with the model's lock held, so that all its answers are
of one state: ``with switch.read() as reader: ...``.  Its methods take no lock
of their own (the compiler asks hundreds of thousands of questions in a full
build); do not keep it past the ``with``.
"""
from __future__ import annotations

import ipaddress
from typing import NamedTuple, Optional, Union

from pyctl.model.values import L2, Namespace, Port, Route
from pyctl.model.subnets import connected_networks, connected_route

__all__ = ["ModelReader", "Holding"]


class Holding(NamedTuple):
    """Who holds an IP in a scope, and the interface (address and prefix) it holds."""

    holder: int
    address: Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]


class ModelReader:
    def __init__(self, switch):
        self._sw = switch

    def namespace(self, ns_id) -> Optional[Namespace]:
        """The namespace with id ``ns_id`` (None: there is none)."""
        record = self._sw._state.namespaces.get(ns_id)
        return None if record is None else record.value()

    def options_of(self, ns_id) -> dict:
        """The options of L2 ``ns_id`` (a copy; {} for an L3 or none)."""
        record = self._sw._state.namespaces.get(ns_id)
        return {} if record is None else dict(record.options)

    def namespace_ids(self) -> tuple:
        return tuple(self._sw._state.namespaces)

    def scope_ids(self) -> tuple:
        """The ids of the L2 namespaces: each one an address space with its routes."""
        return tuple(self._sw._state.holders)

    def port_ids_of(self, ns_id) -> tuple:
        """The ids of the ports attached to namespace ``ns_id``, in attach order."""
        state = self._sw._state
        record = state.namespaces.get(ns_id)
        return () if record is None else tuple(state.ports[name].id for name in record.ports)

    def groups_of(self, ns_id) -> frozenset:
        """The multicast groups namespace ``ns_id`` is a member of."""
        record = self._sw._state.namespaces.get(ns_id)
        return frozenset() if record is None else frozenset(record.groups)

    def is_member(self, ns_id, group) -> bool:
        """Namespace ``ns_id`` is a member of ``group`` (an ip_address); O(1)."""
        record = self._sw._state.namespaces.get(ns_id)
        return record is not None and group in record.groups

    def port_ids(self) -> tuple:
        return tuple(self._sw._state.port_names)

    def port(self, port_id) -> Optional[Port]:
        """The port with id ``port_id`` (None: there is none)."""
        state = self._sw._state
        name = state.port_names.get(port_id)
        return None if name is None else state.ports[name].value()

    def port_id(self, name) -> Optional[int]:
        """The id of the port named ``name`` (None: there is none)."""
        record = self._sw._state.ports.get(name)
        return None if record is None else record.id

    def holding(self, scope_id, ip) -> Optional[Holding]:
        """Who holds ``ip`` (an ``ipaddress`` address) in L2 scope ``scope_id``."""
        state = self._sw._state
        holders = state.holders.get(scope_id)
        holder = None if holders is None else holders.get(ip)
        if holder is None:
            return None
        return Holding(holder, state.namespaces[holder].addresses[ip])

    def held_ips(self, scope_id) -> tuple:
        """Every IP held in L2 scope ``scope_id`` (by the L2 or its L3 children)."""
        return tuple(self._sw._state.holders.get(scope_id, ()))

    def route(self, scope_id, network) -> Optional[Route]:
        """The route of L2 ``scope_id`` to ``network`` (an ``ipaddress`` network): one it
        was given, else a connected one (``Route.connected``)."""
        state = self._sw._state
        record = state.namespaces.get(scope_id)
        if record is None or record.kind != L2:
            return None
        return record.routes.get(network) or connected_route(state, record, network)

    def route_networks(self, scope_id) -> tuple:
        """The destinations of L2 ``scope_id``'s routes, connected ones included."""
        record = self._sw._state.namespaces.get(scope_id)
        if record is None or record.kind != L2:
            return ()
        return tuple(record.routes) + self.connected_networks(scope_id)

    def connected_networks(self, scope_id) -> tuple:
        """The destinations of L2 ``scope_id``'s connected routes."""
        state = self._sw._state
        record = state.namespaces.get(scope_id)
        if record is None or record.kind != L2:
            return ()
        return connected_networks(state, record)
