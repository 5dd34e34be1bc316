"""Multicast in the fast path (issue 6): group tables per scope, fan-out to members only,
link-local groups, IGMP to the slow path, per-group counters, refusals that change nothing.
Every test runs on the reference and the core (conftest ``make_dp``)."""
import ipaddress

import pytest

from fastpath import Batch, verdicts as V
from fastpath_frames import (A1, A2, A6, DIRECTED, PEER, ROOT, SIB, SW, T1, T2, T3, T6, build_world,
                             ip, ipv4_frame, mac, port_mac, run)
from pyctl.errors import InvalidArgument, NotFound

G1, G2 = ip("239.1.1.1"), ip("239.2.2.2")
G1_MAC = bytes.fromhex("01005e010101")


def group_mac(group):
    return b"\x01\x00\x5e" + (group & 0x7FFFFF).to_bytes(3, "big")


def to_group(port, src, group, *, proto=17, payload=b"hello", dmac=None):
    """A datagram the endpoint behind ``port`` sends to ``group``."""
    peer = PEER.get(port, mac(0x100 + port))
    return (port, ipv4_frame(group_mac(group) if dmac is None else dmac, peer, src, group,
                             proto=proto, payload=payload, ttl=1))


def copies_of(b, i=0):
    """{egress port: copy bytes} of frame i."""
    first, n = int(b.fanout_first[i]), int(b.fanout_n[i])
    return {b.copy(k)[0]: b.copy(k)[1] for k in range(first, first + n)}


def verdict(b, i=0):
    return int(b.verdict[i]), V.REASON_NAMES[int(b.reason[i])]


def with_groups(dp, *groups, subnet=False):
    build_world(dp, subnet=subnet)
    with dp.update():
        for scope, group, members in groups:
            dp.set_group(scope, group, members)
    return dp


# -- where copies go --------------------------------------------------------------------------

def test_a_group_reaches_its_members_except_the_sender(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T1, T2]))
    port, frame = to_group(1, A1, G1)
    b = run(dp, [(port, frame)])
    out = copies_of(b)
    assert verdict(b) == (V.VERDICT_FANOUT, "none") and set(out) == {2}   # not back to T1
    assert out[2] == G1_MAC + port_mac(2) + frame[12:]                     # TTL 1 untouched
    assert b.frame(0) == frame


def test_a_non_member_sends_to_a_group_and_gets_nothing_back(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T2]))
    b = run(dp, [to_group(1, A1, G1), to_group(2, A2, G1)])
    assert set(copies_of(b, 0)) == {2}                                     # T1 is no member
    assert verdict(b, 1) == (V.VERDICT_DROP, "no_listener")                # T2 is the only one
    assert dp.counters()["ports"][1]["tx_packets"] == 0


def test_the_source_rule_still_holds_for_groups(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T2]))
    b = run(dp, [to_group(1, A2, G1), to_group(1, 0, G1), to_group(1, A1, G1)])
    assert verdict(b, 0) == (V.VERDICT_DROP, "spoofed_source")            # T2's address
    assert verdict(b, 1) == (V.VERDICT_DROP, "martian_source")            # 0.0.0.0: not on a link
    assert verdict(b, 2) == (V.VERDICT_FANOUT, "none")


def test_a_group_without_members_is_dropped_not_flooded(make_dp):
    dp = with_groups(make_dp(), (ROOT, G2, []))
    b = run(dp, [to_group(1, A1, G1), to_group(1, A1, G2)])
    assert [verdict(b, i) for i in (0, 1)] == [(V.VERDICT_DROP, "no_listener")] * 2
    assert b.fanout_count == 0
    c = dp.counters()
    assert c["reasons"]["no_listener"] == 2 and c["namespaces"][T1]["reasons"]["no_listener"] == 2
    assert c["groups"] == {(ROOT, G2): {"rx_packets": 1, "rx_bytes": len(to_group(1, A1, G2)[1]),
                                        "copies": 0}}


def test_link_local_groups_reach_the_senders_subnet(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T1]), subnet=True)
    for group in (ip("224.0.0.1"), ip("224.0.0.251"), ip("224.0.0.255")):
        port, frame = to_group(1, A1, group)
        b = run(dp, [(port, frame), to_group(6, A6, group), to_group(0, ip("10.0.0.77"), group)])
        assert copies_of(b, 0) == {2: group_mac(group) + port_mac(2) + frame[12:]}   # T3: no port
        assert verdict(b, 1) == (V.VERDICT_DROP, "no_listener")           # T6 is alone in SIB
        assert verdict(b, 2) == (V.VERDICT_DROP, "no_listener")           # the uplink: routed
    assert dp.counters()["groups"][(ROOT, G1)]["rx_packets"] == 0


def test_link_local_groups_stay_on_the_subnet(make_dp):
    dp = with_groups(make_dp(), subnet=True)
    with dp.update():                   # T2 moves to another subnet of the scope
        dp.remove_address(ROOT, A2)
        dp.add_address(ROOT, ip("10.1.0.2"), T2, 24)
        dp.set_broadcast(ROOT, DIRECTED, [T1, T3])
        dp.set_broadcast(ROOT, ip("10.1.0.255"), [T2])
    b = run(dp, [to_group(1, A1, ip("224.0.0.251")), to_group(2, ip("10.1.0.2"), ip("224.0.0.1"))])
    assert [verdict(b, i) for i in (0, 1)] == [(V.VERDICT_DROP, "no_listener")] * 2


def test_an_uplink_member_gets_copies_on_each_of_its_ports(make_dp):
    dp = make_dp()
    build_world(dp)
    with dp.update():
        dp.set_port(3, ROOT, port_mac(3))                                  # a second uplink
        dp.set_group(ROOT, G1, [ROOT, T2])
    b = run(dp, [to_group(1, A1, G1), to_group(0, ip("10.0.0.50"), G1)])
    assert set(copies_of(b, 0)) == {0, 2, 3}
    assert set(copies_of(b, 1)) == {2}                                     # the L2 is the sender


def test_igmp_goes_to_the_slow_path_and_is_never_fanned_out(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T1, T2]))
    frames = [to_group(1, A1, G1, proto=2), to_group(1, A1, ip("224.0.0.22"), proto=2),
              to_group(1, A1, ip("224.0.0.2"), proto=2), (1, ipv4_frame(port_mac(1), PEER[1], A1, A2, proto=2))]
    b = run(dp, frames)
    assert [verdict(b, i) for i in range(4)] == [(V.VERDICT_SLOWPATH, "igmp")] * 4
    assert b.fanout_count == 0 and b.frame(0) == frames[0][1]
    c = dp.counters()
    assert c["reasons"]["igmp"] == 4 and c["groups"][(ROOT, G1)]["rx_packets"] == 0
    spoofed = run(dp, [to_group(1, A2, ip("224.0.0.22"), proto=2)])        # source rule first
    assert verdict(spoofed) == (V.VERDICT_DROP, "spoofed_source")


def test_sibling_scopes_are_isolated(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T2]), (SIB, G1, [T6]))
    b = run(dp, [to_group(1, A1, G1), to_group(0, ip("10.0.0.50"), G1), to_group(4, ip("10.0.0.60"), G1)])
    assert set(copies_of(b, 0)) == {2} and set(copies_of(b, 1)) == {2}
    assert set(copies_of(b, 2)) == {6}
    c = dp.counters()
    assert c["groups"][(ROOT, G1)]["copies"] == 2 and c["groups"][(SIB, G1)]["copies"] == 1
    assert c["ports"][6]["tx_packets"] == 1 and c["ports"][2]["tx_packets"] == 2
    with dp.update():
        dp.remove_group(SIB, G1)
    assert dp.lookup_group(ROOT, G1) == [T2] and dp.lookup_group(SIB, G1) is None
    b = run(dp, [to_group(4, ip("10.0.0.60"), G1)])
    assert verdict(b) == (V.VERDICT_DROP, "no_listener")                   # ROOT's members unreached


# -- counters ---------------------------------------------------------------------------------

def test_group_counters_count_frames_in_and_copies_out(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [ROOT, T1, T2]))
    frames = [to_group(1, A1, G1, payload=b"x" * 100), to_group(2, A2, G1)]
    run(dp, frames)
    assert dp.counters()["groups"] == {(ROOT, G1): {
        "rx_packets": 2, "rx_bytes": len(frames[0][1]) + len(frames[1][1]), "copies": 4}}
    with dp.update():
        dp.set_group(ROOT, G1, [T2])                    # members change: counters stay
    run(dp, frames)
    assert dp.counters()["groups"][(ROOT, G1)]["copies"] == 5
    with dp.update():
        dp.remove_group(ROOT, G1)
        dp.set_group(ROOT, G2, [T2])                    # may reuse the slot: starts at zero
        dp.set_group(ROOT, G1, [T2])
    assert dp.counters()["groups"] == {key: {"rx_packets": 0, "rx_bytes": 0, "copies": 0}
                                       for key in ((ROOT, G1), (ROOT, G2))}


def test_copies_that_overflow_the_list_are_not_counted_as_group_copies(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [ROOT, T1, T2]))
    b = Batch(capacity=2, max_fanout=1)
    b.load([to_group(1, A1, G1), to_group(1, A1, G1)])
    dp.process(b)
    assert verdict(b, 0) == (V.VERDICT_FANOUT, "fanout_overflow")
    assert verdict(b, 1) == (V.VERDICT_DROP, "fanout_overflow")
    c = dp.counters()
    assert c["groups"][(ROOT, G1)] == {"rx_packets": 2, "rx_bytes": 2 * int(b.length[0]), "copies": 1}
    assert c["reasons"]["fanout_overflow"] == 3


# -- table writes -----------------------------------------------------------------------------

def test_port_changes_of_members_apply_to_their_groups(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [ROOT, T2, T3]))
    assert set(copies_of(run(dp, [to_group(1, A1, G1)]))) == {0, 2}
    with dp.update():
        dp.set_port(3, T3, port_mac(3))                 # T3 gets a TAP
        dp.remove_port(2)                               # T2 loses its own
        dp.set_port(5, ROOT, port_mac(5))               # one more uplink
    assert set(copies_of(run(dp, [to_group(1, A1, G1)]))) == {0, 3, 5}
    with dp.update():
        dp.set_port(5, T2, port_mac(5))                 # an uplink port becomes T2's
    assert set(copies_of(run(dp, [to_group(1, A1, G1)]))) == {0, 3, 5}
    assert copies_of(run(dp, [to_group(1, A1, G1)]))[5][:12] == G1_MAC + port_mac(5)


def test_a_removed_namespace_leaves_its_groups(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T2, T3]), (SIB, G1, [SIB, T6]), (SIB, G2, [T6]))
    with dp.update():
        dp.remove_address(ROOT, ip("10.0.0.3"))
        dp.remove_namespace(T3)
    assert dp.lookup_group(ROOT, G1) == [T2]
    with dp.update():
        dp.remove_port(6)
        dp.remove_port(4)
        dp.remove_address(SIB, A6)
        dp.remove_namespace(T6)
        dp.remove_namespace(SIB)                        # the scope takes its groups along
    assert dp.lookup_group(SIB, G1) is None and dp.lookup_group(SIB, G2) is None
    assert set(dp.counters()["groups"]) == {(ROOT, G1)}
    with dp.update():
        dp.set_namespace(SIB, SIB, False)
        dp.set_namespace(T6, SIB, True)
        dp.set_port(6, T6, port_mac(6))
        dp.set_group(SIB, G1, [T6])
    b = run(dp, [to_group(1, A1, G1)])
    assert set(copies_of(b)) == {2}                     # SIB's new group is not ROOT's


def test_members_of_groups_of_both_families_change_ports_and_go(make_dp):
    # A namespace's groups of both families are listed in one order (IPv4 ints and
    # IPv6Address keys do not compare): its port changes and its removal reach them all.
    g6 = ipaddress.IPv6Address("ff0e::7")
    dp = with_groups(make_dp(), (ROOT, G1, [T2, T3]), (ROOT, g6, [T2, T3]), (ROOT, G2, [T3]))
    with dp.update():
        dp.remove_port(2)                               # T2 loses its TAP: no egress port left
        dp.remove_address(ROOT, ip("10.0.0.3"))
        dp.remove_namespace(T3)
    assert dp.lookup_group(ROOT, G1) == [T2] and dp.lookup_group(ROOT, g6) == [T2]
    assert dp.lookup_group(ROOT, G2) == []
    assert verdict(run(dp, [to_group(1, A1, G1)])) == (V.VERDICT_DROP, "no_listener")


def test_many_groups_and_reused_slots(make_dp):
    dp = make_dp()
    build_world(dp)
    groups = [ip("239.3.0.0") + k for k in range(300)]
    with dp.update():
        for k, g in enumerate(groups):
            dp.set_group(ROOT, g, [T2] if k % 2 else [T1, T2])
    with dp.update():
        for g in groups[:150]:
            dp.remove_group(ROOT, g)
        for g in groups[:10]:
            dp.set_group(ROOT, g, [T1])
    b = run(dp, [to_group(2, A2, g) for g in groups])
    got = [set(copies_of(b, i)) for i in range(len(groups))]
    assert got == [{1}] * 10 + [set()] * 140 + [{1} if k % 2 == 0 else set() for k in range(150, 300)]
    assert len(dp.counters()["groups"]) == 160


@pytest.mark.parametrize("args, error", [
    ((ROOT, "239.1.1.1", [T1]), InvalidArgument),       # not an int
    ((ROOT, A1, [T1]), InvalidArgument),                # unicast
    ((ROOT, ip("240.0.0.1"), [T1]), InvalidArgument),   # class E
    ((ROOT, ip("224.0.0.251"), [T1]), InvalidArgument), # link-local: no members
    ((ROOT, 1 << 32, [T1]), InvalidArgument),
    ((ROOT, G1, [T1, T6]), InvalidArgument),            # T6 is in the sibling scope
    ((ROOT, G1, [SIB]), InvalidArgument),               # another L2
    ((ROOT, G1, [T1, 7]), NotFound),                    # no such namespace
    ((ROOT, G1, [T1, 4096]), InvalidArgument),
    ((ROOT, G1, 5), InvalidArgument),                   # not iterable
    ((T1, G1, [T1]), InvalidArgument),                  # an L3 is no scope
    ((7, G1, []), NotFound),
])
def test_refused_set_group_changes_nothing(make_dp, args, error):
    dp = with_groups(make_dp(), (ROOT, G1, [T2]))
    run(dp, [to_group(1, A1, G1)])
    before = dp.counters()
    with dp.update():
        with pytest.raises(error):
            dp.set_group(*args)
    assert dp.lookup_group(ROOT, G1) == [T2] and dp.counters() == before
    assert set(copies_of(run(dp, [to_group(1, A1, G1)]))) == {2}


def test_group_writes_need_the_update_block_and_an_existing_group(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T2]))
    with pytest.raises(RuntimeError):
        dp.set_group(ROOT, G1, [T1])
    with pytest.raises(RuntimeError):
        dp.remove_group(ROOT, G1)
    with dp.update():
        with pytest.raises(NotFound):
            dp.remove_group(ROOT, G2)
        with pytest.raises(NotFound):
            dp.remove_group(SIB, G1)
    assert dp.lookup_group(ROOT, G1) == [T2] and dp.lookup_group(ROOT, G2) is None
    assert dp.lookup_group(ROOT, ip("224.0.0.1")) is None


def test_a_group_is_not_an_address(make_dp):
    dp = with_groups(make_dp(), (ROOT, G1, [T2]))
    assert dp.lookup_address(ROOT, G1) == -1
    with dp.update():
        with pytest.raises(InvalidArgument):
            dp.add_address(ROOT, G1, T1)
        with pytest.raises(InvalidArgument):
            dp.remove_address(ROOT, G1)
    assert dp.lookup_group(ROOT, G1) == [T2]
    b = run(dp, [(1, ipv4_frame(port_mac(1), PEER[1], A1, SW))])          # unicast demux unchanged
    assert verdict(b) == (V.VERDICT_SLOWPATH, "local")
