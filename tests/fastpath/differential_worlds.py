"""What the differential tests of both families draw alike: a world's skeleton (L2 scope
0 and maybe 1, up to five L3 namespaces in them, ports -- an L3 has at most one) as table
writes, and the core and the reference given a world's table operations."""
from typing import NamedTuple

from hypothesis import strategies as st

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from fastpath_frames import mac


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
