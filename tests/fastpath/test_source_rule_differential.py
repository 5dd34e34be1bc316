"""The source rule is one statement (fastpath.source_rule: source_refusal, stays_on_link);
the compiled core implements it in C.  Both datapaths drop exactly the frames the rule
refuses, with the reason it names."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastpath import verdicts as V
from fastpath.source_rule import (BROADCAST, MARTIAN, SPOOFED, is_martian_source, may_send_from,
                                  source_refusal, stays_on_link)
from fastpath_frames import (A1, A2, A3, BCAST, PEER, ROOT, SIB, SW, T1, T2, T6, build_world, ip,
                             ipv4_frame, port_mac, run)

DIRECTED = ip("10.0.0.255")
HELD = {(ROOT, A1): T1, (ROOT, A2): T2, (ROOT, A3): 3, (ROOT, SW): ROOT, (SIB, A1): T6}
SENDERS = {0: (ROOT, ROOT, False), 1: (T1, ROOT, True), 2: (T2, ROOT, True),
           4: (SIB, SIB, False), 6: (T6, SIB, True)}          # port -> (namespace, scope, is L3)
SOURCES = [A1, A2, A3, SW, 0, DIRECTED, ip("10.0.0.77"), ip("8.8.8.8"), ip("0.1.2.3"),
           ip("0.255.255.255"), ip("127.0.0.1"), ip("127.9.9.9"), ip("224.0.0.1"),
           ip("239.1.2.3"), ip("240.0.0.1"), 0xFFFFFFFF, ip("223.255.255.255"), ip("1.0.0.0")]
REFUSAL_REASON = {None: "none", MARTIAN: "martian_source", SPOOFED: "spoofed_source"}


def world(make_dp):
    dp = build_world(make_dp())
    with dp.update():
        dp.set_broadcast(ROOT, DIRECTED, [T1, T2])
    return dp


def expected(port, src):
    """The reason the rule gives a unicast UDP frame from ``src`` on ``port`` ("none": let in)."""
    ns, scope, is_l3 = SENDERS[port]
    owner = BROADCAST if (scope, src) == (ROOT, DIRECTED) else HELD.get((scope, src))
    why = source_refusal(is_l3, ns, owner, src)
    if why is None and src == 0 and not stays_on_link(17, ip("10.9.1.1"), 9):
        why = MARTIAN
    return REFUSAL_REASON[why]


def judged(dp, port, src):
    b = run(dp, [(port, ipv4_frame(port_mac(port), PEER.get(port, port_mac(0x40 + port)), src,
                                   ip("10.9.1.1")))])
    reason = V.REASON_NAMES[b.reason[0]]
    return reason if reason in ("martian_source", "spoofed_source") else "none"


@pytest.mark.parametrize("port", sorted(SENDERS))
def test_every_listed_source_is_judged_by_the_rule(make_dp, port):
    dp = world(make_dp)
    got = {src: judged(dp, port, src) for src in SOURCES}
    assert got == {src: expected(port, src) for src in SOURCES}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(port=st.sampled_from(sorted(SENDERS)), src=st.integers(0, 0xFFFFFFFF))
def test_any_source_is_judged_by_the_rule(make_dp, port, src):
    assert judged(world(make_dp), port, src) == expected(port, src)


def udp_from_nowhere(port, dst, dport, *, proto=17, sport=68):
    payload = struct.pack("!HHHH", sport, dport, 8 + 12, 0) + b"d" * 12
    dmac = BCAST if dst == 0xFFFFFFFF else port_mac(port)
    return (port, ipv4_frame(dmac, PEER.get(port, port_mac(0x40 + port)), 0, dst, proto=proto,
                             payload=payload))


# (protocol, destination, UDP destination port): what 0.0.0.0 may send
UNSPECIFIED = [(17, 0xFFFFFFFF, 67), (17, 0xFFFFFFFF, 68), (17, 0xFFFFFFFF, 53), (17, A2, 67),
               (6, 0xFFFFFFFF, 67), (1, A2, None), (17, DIRECTED, 67), (2, ip("224.0.0.22"), None),
               (2, A2, None)]


@pytest.mark.parametrize("port", [0, 1])
@pytest.mark.parametrize("proto,dst,dport", UNSPECIFIED)
def test_the_unspecified_address_stays_on_the_link(make_dp, port, proto, dst, dport):
    """0.0.0.0: IGMP and a DHCP client's broadcast to the servers; nothing else."""
    dp = world(make_dp)
    b = run(dp, [udp_from_nowhere(port, dst, dport or 0, proto=proto)])
    reason = V.REASON_NAMES[b.reason[0]]
    assert (reason != "martian_source") == stays_on_link(proto, dst, dport)


def test_a_short_udp_header_from_nowhere_is_no_dhcp_client(make_dp):
    dp = world(make_dp)
    port, frame = udp_from_nowhere(1, 0xFFFFFFFF, 67)
    short = ipv4_frame(BCAST, PEER[1], 0, 0xFFFFFFFF, payload=frame[34:37])    # 3 bytes of UDP
    b = run(dp, [(1, short)])
    assert V.REASON_NAMES[b.reason[0]] == "martian_source"


def test_the_rule_itself():
    assert may_send_from(True, T1, T1, A1) and may_send_from(True, T1, None, 0)
    assert not may_send_from(True, T1, None, ip("10.0.0.77"))       # nobody's: not an L3's
    assert not may_send_from(True, T1, T2, A2)
    assert not may_send_from(True, T1, ROOT, SW)                    # the gateway's
    assert may_send_from(False, ROOT, None, ip("8.8.8.8"))
    assert source_refusal(False, ROOT, ROOT, SW) == SPOOFED         # the L2's own: the switch's
    assert not may_send_from(False, ROOT, T1, A1)
    assert source_refusal(False, ROOT, BROADCAST, DIRECTED) == SPOOFED
    for martian in (ip("127.0.0.1"), ip("224.0.0.1"), ip("240.0.0.1"), 0xFFFFFFFF,
                    ip("0.0.0.1"), ip("0.200.1.1")):
        assert is_martian_source(martian)
        assert source_refusal(False, ROOT, None, martian) == MARTIAN
        assert source_refusal(True, T1, T1, martian) == MARTIAN     # even if held
    assert not is_martian_source(0) and not is_martian_source(ip("1.0.0.0"))
    assert stays_on_link(2, ip("224.0.0.22")) and stays_on_link(17, 0xFFFFFFFF, 67)
    assert not stays_on_link(17, 0xFFFFFFFF, 68) and not stays_on_link(17, A2, 67)
    assert not stays_on_link(1, 0xFFFFFFFF)
