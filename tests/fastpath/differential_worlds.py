"""What the differential tests of both families share: a world's skeleton (L2 scope 0 and
maybe 1, up to five L3 namespaces in them, ports -- an L3 has at most one) and a scope's
routes and neighbours as table writes, the core and the reference given a world's table
operations, the table changes both make between batches, and the run that compares them."""
from typing import NamedTuple

from hypothesis import strategies as st

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from fastpath_frames import assert_same_batch, mac


class Skeleton(NamedTuple):
    ops: list               # [(Datapath method, *args)]
    scopes: list            # the L2s
    l3: dict                # L3 namespace -> its scope
    namespaces: list        # all of them
    scope_of: dict          # namespace -> scope
    ports: dict             # port id -> namespace
    used_l3: set            # the L3s with a port


def skeleton(draw, max_ports, mtus=None, dhcp=False):
    """Draw a skeleton; ``mtus``: each port's MTU drawn from these (None: set_port
    without one); ``dhcp``: a port is marked as a DHCP server now and then, and as one
    the switch serves by DHCP now and then."""
    ops = [("set_namespace", 0, 0, False)]
    if draw(st.booleans()):
        ops.append(("set_namespace", 1, 1, False))
    scopes = [op[1] for op in ops]
    l3 = {}
    for n in range(2, 2 + draw(st.integers(0, 5))):
        l3[n] = draw(st.sampled_from(scopes))
        ops.append(("set_namespace", n, l3[n], True))
    namespaces = scopes + list(l3)
    scope_of = {**{s: s for s in scopes}, **l3}
    ports, used_l3 = {}, set()
    for p in range(draw(st.integers(1, max_ports - 1))):
        n = draw(st.sampled_from(namespaces))
        if n in l3 and n in used_l3:
            continue
        used_l3.add(n)
        ports[p] = n
        extra = () if mtus is None else (draw(st.sampled_from(mtus)),)
        if dhcp:        # a DHCP server behind it; the switch serves it by DHCP
            extra = (extra or (1500,)) + (draw(st.sampled_from([False, False, True])),
                                          draw(st.sampled_from([False, False, True])))
        ops.append(("set_port", p, n, mac(p + 1), *extra))
    return Skeleton(ops, scopes, l3, namespaces, scope_of, ports, used_l3)


def routes_and_neighbours(draw, scope, ports, routes, gateways, more_neighbours):
    """Table writes of ``scope``: up to four of ``routes`` ((prefix, plen)) out of its
    ``ports``, each via one of ``gateways`` (the first: none), and the MACs of up to three
    neighbours (the gateways, ``more_neighbours``)."""
    ops = []
    if ports:
        for prefix, plen in draw(st.lists(st.sampled_from(routes), max_size=4, unique=True)):
            ops.append(("add_route", scope, prefix, plen, draw(st.sampled_from(sorted(ports))),
                        draw(st.sampled_from(gateways))))
    for a in draw(st.lists(st.sampled_from(gateways[1:] + more_neighbours), max_size=3,
                           unique=True)):
        ops.append(("set_neighbour", scope, a, mac(0x300 + (int(a) & 0xFF))))
    return ops


def apply(dp, ops):
    with dp.update():
        for name, *args in ops:
            getattr(dp, name)(*args)


def twins(ops, peers, max_ports):
    """(core, reference), both with the world ``ops`` and the peers' MACs ``peers``
    ({port: mac}), and {port: namespace} of the world."""
    core = Datapath(max_namespaces=8, max_ports=max_ports, route_cache_size=4)
    ref = ReferenceDatapath(max_namespaces=8, max_ports=max_ports, route_cache_size=4)
    for dp in (core, ref):
        apply(dp, ops)
        for p, m in peers.items():
            dp.set_peer_mac(p, m)
    return core, ref, {args[0]: args[1] for name, *args in ops if name == "set_port"}


def common_change(dp, what, ports, owned, *, route, default, neighbour, order=None):
    """The table changes both families make between batches (inside ``dp.update()``):
    "route" adds ``route`` ((prefix, plen, gateway)) out of the last port, "unroute" removes
    the ``default`` route, "neigh" gives ``neighbour`` a new MAC, "move" removes the first
    owned address (sorted by ``order``).  False: ``what`` is a change of the family's own."""
    if what == "route":
        if ports:
            dp.add_route(0, route[0], route[1], ports[-1], route[2])
    elif what == "unroute":
        if any(r[:2] == (default, 0) for r in dp.routes(0)):
            dp.remove_route(0, default, 0)
    elif what == "neigh":
        dp.set_neighbour(0, neighbour, mac(0x999))
    elif what == "move":
        if owned:
            (scope, a), n = sorted(owned.items(), key=order)[0]
            if dp.lookup_address(scope, a) == n:
                dp.remove_address(scope, a)
    else:
        return False
    return True


def run_twins(scenario, max_fanout, change, max_ports, slot_size=256):
    """The differential run: the core and the reference over the scenario's world give the
    same results, counters and learnt peers' MACs for each batch, with ``change(dp, what,
    ports, owned, port_ns)`` made to both between batches."""
    ops, peers, batches, changes, ports, owned = scenario
    core, ref, port_ns = twins(ops, peers, max_ports)
    assert core.routes(0) == ref.routes(0)
    for (frames_, hdrs), what in zip(batches, changes):
        assert_same_batch(core, ref, frames_, max_fanout, hdrs, slot_size)
        assert [core.peer_mac(p) for p in ports] == [ref.peer_mac(p) for p in ports]
        for dp in (core, ref):
            change(dp, what, ports, owned, port_ns)
