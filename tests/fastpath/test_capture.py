"""The switch-side capture ring of the compiled core (capture.pxi): what it copies is what
the reference datapath (the oracle) received, sent and dropped on the selected ports; a
full ring loses copies, counted, never a decision; with nothing selected it copies nothing."""
import pytest

from fastpath import CAPTURE_DROPPED, CAPTURE_RECEIVED, CAPTURE_SENT, Batch, Datapath
from fastpath.errors import InvalidArgument
from fastpath.reasons import REASON_NAMES
from fastpath.reference import ReferenceDatapath
from fastpath import verdicts
from tests.fastpath.fastpath_frames import (A1, A2, BCAST, PEER, arp_frame, batch_results,
                                            build_world, from_t1, ip, ipv4_frame, port_mac)

ALL = CAPTURE_RECEIVED | CAPTURE_SENT | CAPTURE_DROPPED


def frames():
    return [
        from_t1(A2),                                                 # forwarded to port 2
        (2, ipv4_frame(port_mac(2), PEER[2], A2, A1)),               # forwarded to port 1
        (1, ipv4_frame(port_mac(1), PEER[1], A2, A1)),               # spoofed source: dropped
        (1, arp_frame(PEER[1], A1, ip("10.0.0.254"))),               # ARP: to the slow path
        (2, ipv4_frame(BCAST, PEER[2], A2, ip("10.0.0.255"))),       # broadcast: fanned out
        from_t1(ip("10.9.1.1")),                                     # routed out of port 0
    ]


def decided(dp, batch_frames):
    b = Batch(capacity=len(batch_frames), slot_size=2048, max_fanout=16)
    b.load(batch_frames)
    dp.process(b)
    return b


def expected(port, flags):
    """What a capture of ``port`` must hold, from the reference's decisions."""
    ref = build_world(ReferenceDatapath(max_namespaces=16, max_ports=16))
    sent = frames()
    results, copies = batch_results(decided(ref, sent))
    want = []
    if flags & CAPTURE_RECEIVED:
        want += [(port, CAPTURE_RECEIVED, 0, data) for p, data in sent if p == port]
    if flags & CAPTURE_SENT:
        want += [(port, CAPTURE_SENT, 0, data) for verdict, _, out, data, _, _ in results
                 if verdict == verdicts.VERDICT_FORWARD and out == port]
        want += [(port, CAPTURE_SENT, 0, data) for p, data in copies if p == port]
    if flags & CAPTURE_DROPPED:
        want += [(port, CAPTURE_DROPPED, reason, sent[i][1])
                 for i, (verdict, reason, *_) in enumerate(results)
                 if verdict == verdicts.VERDICT_DROP and sent[i][0] == port]
    return sorted(want), results


@pytest.mark.parametrize("port", [0, 1, 2])
@pytest.mark.parametrize("flags", [CAPTURE_RECEIVED, CAPTURE_SENT, CAPTURE_DROPPED, ALL])
def test_a_capture_holds_what_the_reference_received_sent_and_dropped(port, flags):
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    dp.capture_select({port: flags})
    b = decided(dp, frames())
    got = dp.capture_take()
    want, ref_results = expected(port, flags)
    assert sorted((p, d, r, data) for p, d, r, _, n, data in got) == want
    assert all(n == len(data) for *_, n, data in got)
    assert batch_results(b)[0] == ref_results               # capture changes no decision
    assert dp.capture_take() == []                          # taken: empty
    assert dp.capture_stats() == {"on": True, "copied": len(want), "overflow": 0}


def test_a_drop_carries_its_reason():
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    dp.capture_select({1: CAPTURE_DROPPED})
    decided(dp, frames())
    [(port, direction, reason, ts, _, data)] = dp.capture_take()
    assert (port, direction, REASON_NAMES[reason]) == (1, CAPTURE_DROPPED, "spoofed_source")
    assert data == frames()[2][1] and ts > 1.7e18            # wall-clock ns (pcap timestamps)


def test_a_full_ring_loses_copies_not_frames():
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    dp.capture_select({1: ALL, 2: ALL}, entries=2)
    b = decided(dp, frames())
    assert len(dp.capture_take()) == 2
    stats = dp.capture_stats()
    assert stats["copied"] == 2 and stats["overflow"] > 0
    assert batch_results(b)[0] == expected(1, ALL)[1]


def test_nothing_selected_copies_nothing_and_frees_the_ring():
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    assert dp.capture_take() == [] and not dp.capture_stats()["on"]
    dp.capture_select({1: ALL})
    dp.capture_select({})
    decided(dp, frames())
    assert dp.capture_take() == [] and dp.capture_stats() == {"on": False, "copied": 0,
                                                              "overflow": 0}
    dp.capture_select({2: CAPTURE_SENT})                      # a new ring, counting from 0
    decided(dp, frames())
    assert {d for _, d, *_ in dp.capture_take()} == {CAPTURE_SENT}


@pytest.mark.parametrize("selection", [{16: CAPTURE_SENT}, {-1: CAPTURE_SENT}, {1: 0}, {1: 8}])
def test_a_bad_selection_is_refused_and_changes_nothing(selection):
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    dp.capture_select({1: CAPTURE_RECEIVED})
    with pytest.raises(InvalidArgument):
        dp.capture_select(selection)
    decided(dp, frames())
    assert {(p, d) for p, d, *_ in dp.capture_take()} == {(1, CAPTURE_RECEIVED)}
    with pytest.raises(InvalidArgument):
        Datapath(max_namespaces=4, max_ports=4).capture_select({1: ALL}, entries=0)
