"""The IPv6 FIB (fastpath/lpm6.pxi: a hash per prefix length, searched over the lengths of
the destination's /24 block, with a DIR-24 for /24 and shorter) against a brute-force
longest match, through the Datapath API of both implementations: random prefixes of
every length, clustered so blocks share lengths, added, replaced and removed in any
order; lookups at every prefix's edges and at random addresses."""
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from fastpath_frames import mac
from pyctl.errors import InvalidArgument, NotFound

V6 = ipaddress.IPv6Address
ALL = (1 << 128) - 1


def masked(address, plen):
    return address & (ALL ^ (ALL >> plen))


# addresses from a few /24 blocks (so prefixes share blocks), and anywhere
BASES = [0x2001_0D00 << 96, 0x2001_0DFF << 96, 0xFD00_0000 << 96, 0x2A02_1234 << 96]
addresses = st.one_of(
    st.tuples(st.sampled_from(BASES), st.integers(0, (1 << 104) - 1)).map(lambda t: t[0] | t[1]),
    st.integers(0, ALL))
prefixes = st.tuples(addresses, st.sampled_from([0, 1, 8, 16, 20, 23, 24, 25, 28, 32, 33, 40, 47,
                                                 48, 56, 63, 64, 65, 96, 120, 127, 128])
                     | st.integers(0, 128)).map(lambda t: (masked(t[0], t[1]), t[1]))


def world(cls):
    dp = cls(max_namespaces=4, max_ports=8)
    with dp.update():
        dp.set_namespace(0, 0, False)
        for p in range(4):
            dp.set_port(p, 0, mac(p + 1))
    return dp


def gateway(k):
    return None if k == 0 else V6(0xFD00_0000_0000_00FF_0000_0000_0000_0000 | k)


def brute_force(routes, address):
    best = None
    for (prefix, plen), hop in routes.items():
        if masked(address, plen) == prefix and (best is None or plen > best[0]):
            best = (plen, hop)
    return None if best is None else best[1]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "add", "add", "remove"]), prefixes, st.integers(0, 3)),
                max_size=80),
       st.lists(addresses, max_size=30))
def test_lpm6_matches_a_brute_force_longest_match(ops, probes):
    core, ref = world(Datapath), world(ReferenceDatapath)
    truth = {}
    for op, (prefix, plen), port in ops:
        if op == "remove" and truth:
            prefix, plen = sorted(truth)[port % len(truth)]
        for dp in (core, ref):
            with dp.update():
                if op == "add":
                    dp.add_route(0, V6(prefix), plen, port, gateway(port))
                elif (prefix, plen) in truth:
                    dp.remove_route(0, V6(prefix), plen)
        if op == "add":
            truth[(prefix, plen)] = (port, gateway(port))
        else:
            truth.pop((prefix, plen), None)
    want = sorted((V6(p), l, port, gw) for (p, l), (port, gw) in truth.items())
    assert sorted(core.routes(0), key=str) == sorted(ref.routes(0), key=str)
    assert sorted(core.routes(0)) == want
    edges = [p for p, _ in truth] + [p | (ALL >> l) for p, l in truth]
    for a in probes + edges + [(e + 1) & ALL for e in edges] + [(e - 1) & ALL for e in edges]:
        expected = brute_force(truth, a)
        assert core.lookup_route(0, V6(a)) == expected == ref.lookup_route(0, V6(a)), V6(a)


def test_removing_every_route_leaves_nothing_behind():
    dp = world(Datapath)
    routes = [(V6("2001:db8::"), 32), (V6("2001:db8:1::"), 48), (V6("2001:db8:1:2::"), 64),
              (V6("2001:d00::"), 24), (V6("::"), 0), (V6("2001:db8:1:2::5"), 128)]
    for _ in range(2):
        with dp.update():
            for prefix, plen in routes:
                dp.add_route(0, prefix, plen, 1, None)
        assert dp.lookup_route(0, V6("2001:db8:1:2::5")) == (1, None)
        with dp.update():
            for prefix, plen in reversed(routes):
                dp.remove_route(0, prefix, plen)
        assert dp.routes(0) == [] and dp.lookup_route(0, V6("2001:db8:1:2::5")) is None



@pytest.mark.parametrize("call,error", [
    (lambda dp: dp.add_route(0, V6("2001:db8::1"), 64, 1), InvalidArgument),        # host bits
    (lambda dp: dp.add_route(0, V6("2001:db8::"), 129, 1), InvalidArgument),
    (lambda dp: dp.add_route(0, V6("2001:db8::"), -1, 1), InvalidArgument),
    (lambda dp: dp.add_route(0, V6("2001:db8::"), 32, 1, 5), InvalidArgument),      # an IPv4 gateway
    (lambda dp: dp.add_route(0, V6("2001:db8::"), 32, 1, V6("fe80::1")), InvalidArgument),
    (lambda dp: dp.add_route(0, V6("2001:db8::"), 32, 1, V6("ff02::1")), InvalidArgument),
    (lambda dp: dp.add_route(0, V6("2001:db8::"), 32, 5), NotFound),               # no such port
    (lambda dp: dp.remove_route(0, V6("2001:db9::"), 32), NotFound),
    (lambda dp: dp.remove_route(0, V6("2001:db8::"), 33), NotFound),
    (lambda dp: dp.add_route(0, "2001:db8::", 32, 1), InvalidArgument),             # a str
])
def test_refused_route_writes_change_nothing(make_dp, call, error):
    dp = world(make_dp)
    with dp.update():
        dp.add_route(0, V6("2001:db8::"), 32, 1, None)
        dp.add_route(0, 0x0A000000, 8, 2, 0)
    before = dp.routes(0)
    with pytest.raises(error):
        with dp.update():
            call(dp)
    assert dp.routes(0) == before
    assert dp.lookup_route(0, V6("2001:db8::9")) == (1, None) and dp.lookup_route(0, 0x0A000001) == (2, 0)
