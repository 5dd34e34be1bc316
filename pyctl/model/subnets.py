"""What an address's subnet means to the rest of its scope: its edges and, for an L2's own
addresses, the connected routes.

**Edges.**  An IPv4 subnet up to /30 has a network and a broadcast address that no host
of it may hold.  Within a scope no held address may be an edge of another held address's
subnet, whoever holds either (``check_edges``): 10.0.0.255/16 while 10.0.0.5/24 is held
would make one IP both an address and the /24's directed broadcast, which the fast path
cannot hold both of.  ``State.edges`` counts the edges of each scope by IP, so the check
is O(1); the verbs that bring an address into a scope or take it out keep it
(``note_edges``).

**Connected routes.**  Like the kernel's, each subnet of an L2's *own* addresses, IPv4 and
IPv6 alike (not its L3s': those are reached by address; not a host route, /32 or /128,
nor an IPv6 link-local one: those are never routed), is a connected route of the L2,
on-link, unless the L2 was given a route to that very network (which wins).  It goes out
of the L2's port whose kernel side (its ``address`` option) lies in the subnet, the lowest
such port; with none, the route is listed with no port and not installed (its namespaces
are reached by address all the same).  ``State.own_networks`` counts the L2's own
addresses per subnet (``note_own``), so a route lookup is O(1) plus the L2's ports.
"""
import ipaddress

from pyctl import errors
from pyctl.model.values import Route

__all__ = ["check_edges", "note_edges", "note_own", "forget_scope", "connected_route",
           "connected_networks"]


def _edges(iface):
    """The network and broadcast address of an IPv4 interface's subnet (up to /30)."""
    if iface.version != 4 or iface.network.prefixlen > 30:
        return ()
    return (("network", iface.network.network_address),
            ("broadcast", iface.network.broadcast_address))


def check_edges(state, scope_id, iface):
    """Refuse (AddressInUse) ``iface`` in L2 scope ``scope_id`` when its IP is an edge of a
    held address's subnet, or an edge of its own subnet is held."""
    name = state.namespaces[scope_id].name
    holders = state.holders[scope_id]
    users = state.edges.get(scope_id, {}).get(iface.ip)
    if users:
        other = users[0]
        what = "network" if iface.ip == other.network.network_address else "broadcast"
        holder = state.namespaces[holders[other.ip]].name
        raise errors.AddressInUse(
            f"{iface.ip} is the {what} address of {other.network}, the subnet of {other} "
            f"held by '{holder}' in the scope of '{name}': no host may hold it")
    for what, edge in _edges(iface):
        holder = holders.get(edge)
        if holder is not None:
            raise errors.AddressInUse(
                f"{iface} would make {edge}, held by '{state.namespaces[holder].name}' in the "
                f"scope of '{name}', the {what} address of its subnet {iface.network}")


def note_edges(state, scope_id, iface, add):
    """``iface`` is now held in (``add``) or gone from L2 scope ``scope_id`` (written
    through the state's undo log, like every index here)."""
    edges = _index(state, state.edges, scope_id)
    for _, edge in _edges(iface):
        users = edges.get(edge, ())
        users = users + (iface,) if add else tuple(u for u in users if u != iface)
        if users:
            state.put(edges, edge, users)
        else:
            state.pop(edges, edge)


def note_own(state, l2_id, iface, add):
    """L2 ``l2_id`` now holds ``iface`` itself (``add``), or no longer does."""
    networks = _index(state, state.own_networks, l2_id)
    net = iface.network
    count = networks.get(net, 0) + (1 if add else -1)
    if count:
        state.put(networks, net, count)
    else:
        state.pop(networks, net)


def _index(state, indexes, l2_id):
    """L2 ``l2_id``'s dict in ``indexes`` (made, through the log, when it has none)."""
    index = indexes.get(l2_id)
    if index is None:
        index = {}
        state.put(indexes, l2_id, index)
    return index


def forget_scope(state, l2_id):
    """L2 ``l2_id`` is destroyed: its scope's indexes go with it."""
    for indexes in (state.edges, state.own_networks):
        if l2_id in indexes:
            state.pop(indexes, l2_id)


def _is_connected(state, record, network):
    return (network.prefixlen < network.max_prefixlen
            and not (network.version == 6 and network.is_link_local)
            and network not in record.routes and network in state.own_networks.get(record.id, ()))


def connected_route(state, record, network):
    """The connected route of L2 ``record`` to ``network``, or None (see the top)."""
    if not _is_connected(state, record, network):
        return None
    leading = [state.ports[name] for name in record.ports       # an L2 has few ports
               if any(ip in network for ip in _kernel_side(state.ports[name].options))]
    port = min(leading, key=lambda p: p.id).name if leading else None
    return Route(str(network), None, port, connected=True)


def _kernel_side(options):
    """The IPs a port's ``address`` option gives its kernel side (one, or a list)."""
    address = options.get("address")
    if address is None:
        return ()
    texts = address if isinstance(address, (list, tuple)) else (address,)
    return tuple(ipaddress.ip_interface(text).ip for text in texts)


def connected_networks(state, record):
    """The networks of L2 ``record``'s connected routes."""
    return tuple(net for net in state.own_networks.get(record.id, ())
                 if _is_connected(state, record, net))
