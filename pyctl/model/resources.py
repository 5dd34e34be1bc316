"""Verbs of what hangs off namespaces: routes (owned by an L2, read by its L3
children), ports (TAPs; an L3 has at most one) and multicast group
membership (the one configuring verb an L3 keeps, for itself only).

Names and argument orders are the control socket's (``pyctl.control.verb_table``;
tests/control/test_verb_table.py holds them to it).
"""

from pyctl import errors
from pyctl.deprecated import group_first, with_renamed_aliases
from pyctl.model.access import Access, locked
from pyctl.model.events import (GroupJoined, GroupLeft, PortAdded, PortDeleted, RouteAdded,
                                RouteDeleted, RouteReplaced)
from pyctl.model.addressing import (check_port_name, is_link_scope_group, parse_group, parse_ip,
                                    parse_mac, parse_network, sort_key)
from pyctl.model.kernel_reach import check_port_reach
from pyctl.model.port_options import check_port_options
from pyctl.model.quotas import charge, check_capacity
from pyctl.model.state import PortRecord
from pyctl.model.subnets import connected_networks, connected_route
from pyctl.model.values import L2, L3, Route

_LINK_SCOPE_REFUSAL = {
    4: "group {} is link-local (224.0.0.0/24): it reaches every namespace of the scope "
       "without a join",
    6: "group {} has a scope of link-local or below (ff00::/16 .. ff02::/16): link-local "
       "groups reach every namespace of the scope without a join, narrower ones never "
       "leave a host",
}

# Generated port MACs: locally administered, unicast, "ts" (0x74 0x73), then a counter.
_MAC_PREFIX = "02:74:73"


@with_renamed_aliases
class ResourceVerbs(Access):

    # -- routes ---------------------------------------------------------------

    def _route_owner(self, namespace, verb):
        actor = self._actor()
        self._configuring(actor, verb)
        record = self._resolve(actor, namespace)
        if record.kind != L2:
            parent = self._sw._state.namespaces[record.parent]
            raise errors.InvalidArgument(
                f"cannot {verb} in '{record.name}': routes belong to L2 namespaces; "
                f"'{record.name}' uses the routes of '{parent.name}'")
        return record

    def _route_args(self, record, prefix, via, port):
        """(network, gateway or None, port record or None) of a route of L2 ``record``
        (``"default"`` is 0.0.0.0/0, or ::/0 with an IPv6 ``via``, as ``ip route``)."""
        gateway = None if via is None else parse_ip(via, what="gateway")
        network = parse_network(prefix, version=None if gateway is None else gateway.version)
        if gateway is not None:
            if gateway.version != network.version:
                raise errors.InvalidArgument(f"gateway {gateway} and destination {network} "
                                             f"are not of the same IP version")
            if (gateway.is_multicast or gateway.is_loopback or gateway.is_unspecified
                    or str(gateway) == "255.255.255.255"):
                raise errors.InvalidArgument(f"invalid gateway {gateway}: not a unicast address")
            if gateway.version == 6 and gateway.is_link_local:
                raise errors.InvalidArgument(f"invalid gateway {gateway}: a link-local next hop "
                                             f"names no link here; use the router's global address")
        port_record = None
        if port is not None:
            port_record = self._resolve_port(self._actor(), port)
            if port_record.ns != record.id:
                owner = self._sw._state.namespaces[port_record.ns].name
                raise errors.InvalidArgument(f"port '{port_record.name}' is attached to "
                                             f"'{owner}', not to '{record.name}'")
        if gateway is None and port_record is None:
            raise errors.InvalidArgument(f"route to {network} needs a gateway (via) or a port")
        return network, gateway, port_record

    def _set_route(self, record, event_type, network, gateway, port_record, **fields):
        route = Route(str(network), None if gateway is None else str(gateway),
                      None if port_record is None else port_record.name)
        self._sw._state.put(record.routes, network, route)
        self._sw._commit(event_type, scope=record.value(), network=network, via=gateway,
                         port=None if port_record is None else port_record.value(), **fields)
        return route

    @locked
    def route_add(self, namespace, prefix, via=None, port=None):
        """Add a route to ``prefix`` (``A/N`` or ``"default"``) in L2 ``namespace``,
        through gateway ``via`` and/or out of ``port`` (a port attached to it)."""
        record = self._route_owner(namespace, f"adding route {prefix!r}")
        network, gateway, port_record = self._route_args(record, prefix, via, port)
        if network in record.routes:
            raise errors.AlreadyExists(f"'{record.name}' already has a route to {network}")
        charge(self._sw._state, record, "routes")

        return self._set_route(record, RouteAdded, network, gateway, port_record)

    @locked
    def route_replace(self, namespace, prefix, via=None, port=None):
        """Make the route to ``prefix`` of L2 ``namespace`` the one given, in one step (the
        fast path sees the old route or the new, never none); added if there was none."""
        record = self._route_owner(namespace, f"replacing route {prefix!r}")
        network, gateway, port_record = self._route_args(record, prefix, via, port)
        previous = record.routes.get(network)
        if previous is None:
            charge(self._sw._state, record, "routes")

        return self._set_route(record, RouteReplaced, network, gateway, port_record,
                               previous=previous)

    @locked
    def route_del(self, namespace, prefix, via=None, port=None):
        """Delete the route to ``prefix`` of L2 ``namespace``; ``via``/``port``, if given,
        must match (``"default"`` as for ``route_add``)."""
        record = self._route_owner(namespace, f"deleting route {prefix!r}")
        gateway = None if via is None else parse_ip(via, what="gateway")
        network = parse_network(prefix, version=None if gateway is None else gateway.version)
        route = record.routes.get(network)
        if route is None:
            raise errors.NotFound(f"'{record.name}' has no route to {network}")
        if gateway is not None and str(gateway) != route.via:
            raise errors.NotFound(f"the route to {network} in '{record.name}' goes via "
                                  f"{route.via}, not {via}")
        if port is not None and getattr(port, "name", port) != route.port:
            raise errors.NotFound(f"the route to {network} in '{record.name}' uses port "
                                  f"{route.port!r}, not {port!r}")
        charge(self._sw._state, record, "routes", -1)

        self._sw._state.pop(record.routes, network)
        port_record = None if route.port is None else self._sw._state.ports[route.port]
        self._sw._commit(RouteDeleted, scope=record.value(), network=network,
                         via=None if route.via is None else parse_ip(route.via),
                         port=None if port_record is None else port_record.value())

    @locked
    def routes(self, namespace=None):
        """The routes ``namespace`` (default: the acting one) uses: an L2's own and its
        connected ones (``pyctl.model.subnets``), or (read-only) its parent's for an L3."""
        state = self._sw._state
        record = self._resolve_or_acting(self._actor(), namespace)
        scope = state.namespaces[state.scope_id(record)]
        routes = dict(scope.routes)
        routes.update((net, connected_route(state, scope, net))
                      for net in connected_networks(state, scope))
        return [route for _, route in sorted(routes.items(), key=lambda i: sort_key(i[0]))]

    # -- ports ----------------------------------------------------------------

    def _generated_mac(self, port_id):
        macs = self._sw._state.macs
        counter = port_id + 1
        while True:
            low = counter & 0xFFFFFF
            mac = f"{_MAC_PREFIX}:{low >> 16:02x}:{low >> 8 & 0xff:02x}:{low & 0xff:02x}"
            if mac not in macs:
                return mac
            counter += 1

    @locked
    def port_add(self, name, namespace, mac=None, options=None):
        """Attach a new port ``name`` to ``namespace``; ``mac=None`` generates a
        locally administered one. ``options``: see ``pyctl.model.port_options``."""
        actor = self._actor()
        self._configuring(actor, f"adding port {name!r}")
        state = self._sw._state
        check_port_name(name)
        record = self._resolve(actor, namespace)
        if mac is not None:
            mac = parse_mac(mac)
        checked = check_port_options(options)
        check_port_reach(state, actor, checked)
        if name in state.ports:
            raise errors.AlreadyExists(f"a port named {name!r} already exists")
        if record.kind == L3 and record.ports:
            raise errors.Busy(f"'{record.name}' already has port '{record.ports[0]}': "
                              f"an L3 namespace has at most one port")
        if mac is not None and mac in state.macs:
            raise errors.AddressInUse(f"MAC {mac} is already the address of port "
                                      f"'{state.macs[mac]}'")
        check_capacity(state, "port", state.capacity.get("ports"), len(state.ports))
        charge(state, record, "ports")

        port_id = state.take_id(state.port_ids)
        mac = mac or self._generated_mac(port_id)
        port = PortRecord(name, port_id, record.id, mac, checked)
        state.put(state.ports, name, port)
        state.put(state.port_names, port_id, name)
        state.put(state.macs, mac, name)
        state.append(record.ports, name)
        state.note_netns(port, True, by_delegate=actor is not None)
        value = port.value()
        self._sw._commit(PortAdded, port=value, namespace=record.value())
        return value

    @locked
    def port_del(self, name):
        """Remove port ``name`` (or id); refused while a route of its namespace goes out of it."""
        actor = self._actor()
        self._configuring(actor, f"deleting port {name!r}")
        state = self._sw._state
        port = self._resolve_port(actor, name)
        owner = state.namespaces[port.ns]
        users = [route.dst for route in owner.routes.values() if route.port == port.name]
        if users:
            raise errors.Busy(f"port '{port.name}' is used by route(s) to {', '.join(users)} "
                              f"of '{owner.name}': delete them first")
        charge(state, owner, "ports", -1)

        value = port.value()
        self._drop_port(port)
        self._sw._commit(PortDeleted, port=value, namespace=owner.value())

    @locked
    def port(self, ref):
        """The port named ``ref`` (name or id)."""
        return self._resolve_port(self._actor(), ref).value()

    @locked
    def ports(self, namespace=None):
        """The ports of ``namespace``, or (``None``) every visible port; by id."""
        state = self._sw._state
        actor = self._actor()
        if namespace is not None:
            records = [state.ports[n] for n in self._resolve(actor, namespace).ports]
        elif actor is None:
            records = [state.ports[n] for n in state.port_names.values()]
        else:                           # the actor's subtree's: what it sees, no scan
            records = [state.ports[n] for rec in state.subtree(actor) for n in rec.ports]
        return [p.value() for p in sorted(records, key=lambda p: p.id)]

    # -- multicast membership -------------------------------------------------

    @group_first
    @locked
    def join(self, group, namespace=None):
        """Make ``namespace`` (default: the acting one) a member of multicast ``group``."""
        record = self._resolve_or_acting(self._actor(), namespace)
        ip = parse_group(group)
        if is_link_scope_group(ip):
            raise errors.InvalidArgument(_LINK_SCOPE_REFUSAL[ip.version].format(ip))
        if ip in record.groups:
            raise errors.AlreadyExists(f"'{record.name}' is already a member of {ip}")
        charge(self._sw._state, record, "groups")

        self._sw._state.add(record.groups, ip)
        self._sw._commit(GroupJoined, namespace=record.value(), group=ip)

    @group_first
    @locked
    def leave(self, group, namespace=None):
        """Remove ``namespace`` (default: the acting one) from multicast ``group``."""
        record = self._resolve_or_acting(self._actor(), namespace)
        ip = parse_group(group)
        if ip not in record.groups:
            raise errors.NotFound(f"'{record.name}' is not a member of {ip}")
        charge(self._sw._state, record, "groups", -1)

        self._sw._state.discard(record.groups, ip)
        self._sw._commit(GroupLeft, namespace=record.value(), group=ip)

    @locked
    def groups(self, namespace=None):
        """The groups ``namespace`` (default: the acting one) is a member of."""
        record = self._resolve_or_acting(self._actor(), namespace)
        return [str(g) for g in sorted(record.groups, key=sort_key)]

    @group_first
    @locked
    def members(self, group, namespace=None):
        """The visible namespaces of the scope of ``namespace`` (default: the acting one)
        that are members of ``group``."""
        state = self._sw._state
        record = self._resolve_or_acting(self._actor(), namespace)
        ip = parse_group(group)
        scope_record = state.namespaces[state.scope_id(record)]
        candidates = [scope_record] + [state.namespaces[c] for c in scope_record.children
                                       if state.namespaces[c].kind == L3]
        actor = self._actor()
        return [c.value() for c in candidates if ip in c.groups
                and (actor is None or state.is_within(c, actor))]
