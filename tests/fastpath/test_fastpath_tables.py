"""Table writes: route-cache invalidation, isolation, refusals that change nothing, the lock."""
import pytest
from hypothesis import given, settings, strategies as st

from fastpath import Datapath, verdicts as V
from fastpath.reference import ReferenceDatapath
from fastpath_frames import (A1, A2, A6, GW, GW_MAC, PEER, ROOT, SIB, T1, T2, T3, T6, build_world,
                             from_t1, ip, ipv4_frame, mac, port_mac, run)
from pyctl.errors import AddressInUse, Busy, InvalidArgument, NotFound

FAR = ip("8.8.8.8")


def test_route_change_invalidates_cached_next_hops(make_dp):
    dp = build_world(make_dp(route_cache_size=4))
    assert run(dp, [from_t1(FAR)]).frame(0)[0:6] == GW_MAC          # fills T1's cache
    with dp.update():
        dp.add_route(ROOT, ip("8.8.8.0"), 24, 0, ip("10.0.0.101"))
        dp.set_neighbour(ROOT, ip("10.0.0.101"), mac(0x401))
    assert run(dp, [from_t1(FAR)]).frame(0)[0:6] == mac(0x401)
    with dp.update():
        dp.set_neighbour(ROOT, ip("10.0.0.101"), mac(0x402))         # neighbour moved
    assert run(dp, [from_t1(FAR)]).frame(0)[0:6] == mac(0x402)
    with dp.update():
        dp.remove_route(ROOT, ip("8.8.8.0"), 24)
    assert run(dp, [from_t1(FAR)]).frame(0)[0:6] == GW_MAC
    with dp.update():
        dp.remove_route(ROOT, 0, 0)
    assert run(dp, [from_t1(FAR)]).reason[0] == V.REASON_NO_ROUTE


def test_port_changes_invalidate_cached_next_hops(make_dp):
    dp = build_world(make_dp())
    run(dp, [from_t1(FAR)])
    with dp.update():
        dp.set_port(0, ROOT, mac(0x900))                             # new switch MAC on the uplink
    assert run(dp, [from_t1(FAR)]).frame(0)[6:12] == mac(0x900)
    with dp.update():
        dp.remove_port(0)
    assert run(dp, [from_t1(FAR)]).reason[0] == V.REASON_NO_PORT


def test_push_of_an_address_takes_it_out_of_the_route(make_dp):
    dp = build_world(make_dp())
    far = ip("10.9.1.5")
    with dp.update():
        dp.set_neighbour(ROOT, far, mac(0x333))
    assert run(dp, [from_t1(far)]).out_port[0] == 0                  # routed, cached
    with dp.update():
        dp.add_address(ROOT, far, T2)                                # pushed to tenant 2
    b = run(dp, [from_t1(far)])
    assert b.out_port[0] == 2 and b.frame(0)[0:6] == PEER[2]
    with dp.update():
        dp.remove_address(ROOT, far)
        dp.add_address(ROOT, far, T3)                                # moved to a portless tenant
    assert run(dp, [from_t1(far)]).reason[0] == V.REASON_NO_PORT
    with dp.update():
        dp.remove_address(ROOT, far)                                 # pulled back: routed again
    assert run(dp, [from_t1(far)]).out_port[0] == 0


def test_destroyed_namespace_leaves_no_cache_behind(make_dp):
    dp = build_world(make_dp())
    assert run(dp, [from_t1(FAR)]).out_port[0] == 0
    with dp.update():
        dp.remove_port(1)
        dp.remove_address(ROOT, A1)
        dp.remove_namespace(T1)
        dp.set_namespace(T1, SIB, True)                              # same id, other L2
        dp.set_port(1, T1, port_mac(1))
        dp.add_address(SIB, ip("10.5.0.1"), T1)
    b = run(dp, [(1, ipv4_frame(port_mac(1), PEER[1], ip("10.5.0.1"), FAR))])
    assert b.reason[0] == V.REASON_NO_ROUTE                          # scope 5 has no routes
    assert dp.counters()["namespaces"][T1]["rx_packets"] == 1        # counters started afresh


def test_route_caches_are_per_namespace(make_dp):
    # a one-slot cache: any sharing between namespaces would answer from the wrong scope
    dp = build_world(make_dp(route_cache_size=1))
    b = run(dp, [from_t1(FAR), (6, ipv4_frame(port_mac(6), PEER[6], ip("10.0.0.1"), FAR)),
                 from_t1(FAR)])
    assert [b.verdict[i] for i in range(3)] == [V.VERDICT_FORWARD, V.VERDICT_SLOWPATH, V.VERDICT_FORWARD]
    with dp.update():
        dp.add_route(SIB, 0, 0, 4, ip("10.0.0.100"))
        dp.set_neighbour(SIB, ip("10.0.0.100"), mac(0x555))
    b = run(dp, [from_t1(FAR), (6, ipv4_frame(port_mac(6), PEER[6], ip("10.0.0.1"), FAR))])
    assert (b.out_port[0], b.frame(0)[0:6]) == (0, GW_MAC)
    assert (b.out_port[1], b.frame(1)[0:6]) == (4, mac(0x555))


@pytest.mark.parametrize("call,error", [
    (lambda dp: dp.remove_address(ROOT, ip("10.0.0.77")), NotFound),
    (lambda dp: dp.add_address(ROOT, A1, T2), AddressInUse),
    (lambda dp: dp.add_address(ROOT, ip("127.0.0.1"), T2), InvalidArgument),
    (lambda dp: dp.add_address(T1, ip("10.1.1.1"), T1), InvalidArgument),          # scope is an L3
    (lambda dp: dp.add_address(ROOT, ip("10.1.1.1"), T6), InvalidArgument),        # other scope
    (lambda dp: dp.add_address(ROOT, ip("10.1.1.1"), 99), NotFound),
    (lambda dp: dp.add_address(ROOT, ip("10.1.1.1"), T2, 0), InvalidArgument),     # prefix length
    (lambda dp: dp.add_address(ROOT, ip("10.1.1.1"), T2, 33), InvalidArgument),
    (lambda dp: dp.add_address(ROOT, A1, T2, 24), AddressInUse),
    (lambda dp: dp.set_port(1, T1, mac(1), dhcp_server=1), InvalidArgument),       # a real bool
    (lambda dp: dp.set_directed_broadcast(T1, True), InvalidArgument),             # an L3
    (lambda dp: dp.set_directed_broadcast(ROOT, "yes"), InvalidArgument),
    (lambda dp: dp.add_route(ROOT, ip("10.9.0.1"), 16, 0), InvalidArgument),       # host bits
    (lambda dp: dp.add_route(ROOT, ip("10.9.0.0"), 33, 0), InvalidArgument),
    (lambda dp: dp.add_route(ROOT, ip("10.8.0.0"), 16, 77), NotFound),             # no such port
    (lambda dp: dp.remove_route(ROOT, ip("10.8.0.0"), 16), NotFound),
    (lambda dp: dp.remove_namespace(T1), Busy),
    (lambda dp: dp.remove_namespace(ROOT), Busy),
    (lambda dp: dp.set_namespace(T1, SIB, True), Busy),
    (lambda dp: dp.set_namespace(9, 9, True), NotFound),
    (lambda dp: dp.set_namespace(9, T1, True), InvalidArgument),
    (lambda dp: dp.set_namespace(4096, 4096, False), InvalidArgument),
    (lambda dp: dp.set_port(7, T1, mac(7)), Busy),                                 # L3 has a port
    (lambda dp: dp.set_port(7, ROOT, b"\x01" * 6), InvalidArgument),               # group MAC
    (lambda dp: dp.set_port(7, ROOT, b"\x02" * 5), InvalidArgument),
    (lambda dp: dp.set_broadcast(ROOT, A1, [T1]), AddressInUse),
    (lambda dp: dp.set_broadcast(ROOT, ip("10.0.0.255"), [T6]), InvalidArgument),
    (lambda dp: dp.remove_broadcast(ROOT, ip("10.0.0.255")), NotFound),
    (lambda dp: dp.remove_neighbour(ROOT, ip("10.0.0.99")), NotFound),
    (lambda dp: dp.set_neighbour(ROOT, ip("10.0.0.99"), bytes(6)), InvalidArgument),
])
def test_refused_writes_change_nothing(make_dp, call, error):
    dp = build_world(make_dp())
    before = snapshot(dp)
    with pytest.raises(error):
        with dp.update():
            call(dp)
    assert snapshot(dp) == before


def snapshot(dp):
    addrs = [ip("10.0.0.%d" % k) for k in (1, 2, 3, 77, 254, 255)]
    return ([dp.lookup_address(s, a) for s in (ROOT, SIB) for a in addrs], dp.routes(ROOT),
            [dp.address_onlink(ROOT, a) for a in addrs], dp.directed_broadcast(ROOT),
            [dp.port_is_dhcp_server(p) for p in (0, 1, 2, 4, 6)],
            [dp.lookup_broadcast(ROOT, a) for a in addrs], [dp.peer_mac(p) for p in (0, 1, 2, 4, 6)],
            dp.neighbour(ROOT, GW), [dp.port_mac_of(p) for p in (0, 1, 2, 4, 6)], dp.counters())


def test_writes_need_the_update_block_and_batches_wait_for_it(make_dp):
    dp = build_world(make_dp())
    with pytest.raises(RuntimeError):
        dp.add_address(ROOT, ip("10.0.0.9"), T2)
    with dp.update():
        with pytest.raises(RuntimeError):
            run(dp, [from_t1(A2)])
        with pytest.raises(RuntimeError):
            with dp.update():
                pass
    assert run(dp, [from_t1(A2)]).verdict[0] == V.VERDICT_FORWARD


def test_removing_an_l2_takes_its_tables(make_dp):
    dp = build_world(make_dp())
    with dp.update():
        dp.add_route(SIB, 0, 0, 4)
        dp.set_neighbour(SIB, ip("10.0.0.50"), mac(0x50))
        dp.set_broadcast(SIB, ip("10.0.0.255"), [T6])
        dp.remove_port(6)
        dp.remove_port(4)
        dp.remove_address(SIB, ip("10.0.0.1"))
        dp.remove_namespace(T6)
        dp.remove_namespace(SIB)
        dp.set_namespace(SIB, SIB, False)
    assert dp.routes(SIB) == [] and dp.lookup_route(SIB, FAR) is None
    assert dp.neighbour(SIB, ip("10.0.0.50")) is None and dp.lookup_broadcast(SIB, ip("10.0.0.255")) is None


# ---- the tables themselves -------------------------------------------------------------------

prefixes = st.integers(0, 32).flatmap(lambda plen: st.tuples(
    st.integers(0, 0xFFFFFFFF).map(lambda a: a & ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0)),
    st.just(plen)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.one_of(prefixes, st.sampled_from(
    [(ip("10.9.0.0"), 16), (ip("10.9.1.0"), 24), (ip("10.9.1.128"), 25), (ip("10.9.1.129"), 32),
     (0, 0), (ip("10.0.0.0"), 8)])), st.integers(0, 3)), max_size=60),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=20))
def test_dir24_fib_matches_a_linear_longest_prefix_match(ops, probes):
    core, ref = Datapath(max_namespaces=4, max_ports=8), ReferenceDatapath(max_namespaces=4, max_ports=8)
    for dp in (core, ref):
        with dp.update():
            dp.set_namespace(0, 0, False)
            for p in range(4):
                dp.set_port(p, 0, mac(p + 1))
    for add, (prefix, plen), port in ops:
        for dp in (core, ref):
            with dp.update():
                if add:
                    dp.add_route(0, prefix, plen, port, port and ip("10.0.0.%d" % port))
                elif (prefix, plen, 0, 0) != (0, 0, 0, 0) and any(r[:2] == (prefix, plen) for r in dp.routes(0)):
                    dp.remove_route(0, prefix, plen)
    assert core.routes(0) == ref.routes(0)
    edges = [r[0] for r in ref.routes(0)] + [(r[0] | ~((0xFFFFFFFF << (32 - r[1])) & 0xFFFFFFFF if r[1] else 0)) & 0xFFFFFFFF
                                           for r in ref.routes(0)]
    for a in probes + edges + [(e + 1) & 0xFFFFFFFF for e in edges]:
        assert core.lookup_route(0, a) == ref.lookup_route(0, a)


@pytest.mark.parametrize("lookup", ["lookup_route", "neighbour", "lookup_address"])
@pytest.mark.parametrize("bad", [-1, 1 << 32, "10.0.0.1", None])
def test_lookups_refuse_what_is_not_an_ipv4_int(make_dp, lookup, bad):
    # -1 and 2**32 once gave OverflowError from the core and a route (the default) from
    # the reference
    dp = build_world(make_dp())
    with pytest.raises(InvalidArgument):
        getattr(dp, lookup)(ROOT, bad)


def test_a_datapath_whose_init_did_not_run_refuses_batches_updates_and_loops():
    import fastpath
    dp = Datapath.__new__(Datapath)
    with pytest.raises(ValueError, match="__init__ did not complete"):
        dp.process(fastpath.Batch(capacity=1))
    with pytest.raises(ValueError, match="__init__ did not complete"):
        with dp.update():
            pass
    with pytest.raises(ValueError, match="__init__ did not complete"):
        fastpath.PacketLoop(dp, backend="epoll")


def test_isolation_tables_read_back_and_go_with_what_they_belong_to(make_dp):
    dp = build_world(make_dp())
    with dp.update():
        dp.add_address(ROOT, ip("10.0.0.9"), T2, 24)
        dp.set_port(1, T1, port_mac(1), dhcp_server=True)
        dp.set_directed_broadcast(SIB, True)
    assert dp.address_onlink(ROOT, ip("10.0.0.9")) == 24 and dp.address_onlink(ROOT, A1) == 32
    assert dp.address_onlink(ROOT, ip("10.0.0.77")) is None
    assert dp.port_is_dhcp_server(1) and not dp.port_is_dhcp_server(2)
    assert dp.directed_broadcast(SIB) and not dp.directed_broadcast(ROOT)
    with dp.update():
        dp.add_address(ROOT, ip("10.0.0.9"), T2, 16)            # the same address, a new subnet
        dp.remove_port(1)
        dp.set_port(1, T1, port_mac(1))
        dp.remove_port(6)
        dp.remove_port(4)
        dp.remove_address(SIB, A6)
        dp.remove_namespace(T6)
        dp.remove_namespace(SIB)
        dp.set_namespace(SIB, SIB, False)
    assert dp.address_onlink(ROOT, ip("10.0.0.9")) == 16
    assert not dp.port_is_dhcp_server(1) and not dp.directed_broadcast(SIB)
