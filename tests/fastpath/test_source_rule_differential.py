"""The source rule is one function (fastpath.source_rule.may_send_from); the compiled core
implements it in C.  Both datapaths drop exactly the frames the function refuses."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastpath import verdicts as V
from fastpath.source_rule import BROADCAST, is_martian_source, may_send_from
from fastpath_frames import (A1, A2, A3, PEER, ROOT, SIB, SW, T1, T2, T6, build_world, ip,
                             ipv4_frame, port_mac, run)

DIRECTED = ip("10.0.0.255")
HELD = {(ROOT, A1): T1, (ROOT, A2): T2, (ROOT, A3): 3, (ROOT, SW): ROOT, (SIB, A1): T6}
SENDERS = {0: (ROOT, ROOT, False), 1: (T1, ROOT, True), 2: (T2, ROOT, True),
           4: (SIB, SIB, False), 6: (T6, SIB, True)}          # port -> (namespace, scope, is L3)
SOURCES = [A1, A2, A3, SW, 0, DIRECTED, ip("10.0.0.77"), ip("8.8.8.8"), ip("0.1.2.3"),
           ip("127.0.0.1"), ip("127.9.9.9"), ip("224.0.0.1"), ip("239.1.2.3"), ip("240.0.0.1"),
           0xFFFFFFFF, ip("223.255.255.255")]


def world(make_dp):
    dp = build_world(make_dp())
    with dp.update():
        dp.set_broadcast(ROOT, DIRECTED, [T1, T2])
    return dp


def expected_spoofed(port, src):
    ns, scope, is_l3 = SENDERS[port]
    owner = BROADCAST if (scope, src) == (ROOT, DIRECTED) else HELD.get((scope, src))
    return not may_send_from(is_l3, ns, owner, src)


def spoofed(dp, port, src):
    b = run(dp, [(port, ipv4_frame(port_mac(port), PEER.get(port, port_mac(0x40 + port)), src,
                                   ip("10.9.1.1")))])
    return V.REASON_NAMES[b.reason[0]] == "spoofed_source"


@pytest.mark.parametrize("port", sorted(SENDERS))
def test_every_listed_source_is_judged_by_the_rule(make_dp, port):
    dp = world(make_dp)
    got = {src: spoofed(dp, port, src) for src in SOURCES}
    assert got == {src: expected_spoofed(port, src) for src in SOURCES}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(port=st.sampled_from(sorted(SENDERS)), src=st.integers(0, 0xFFFFFFFF))
def test_any_source_is_judged_by_the_rule(make_dp, port, src):
    assert spoofed(world(make_dp), port, src) == expected_spoofed(port, src)


def test_the_rule_itself():
    assert may_send_from(True, T1, T1, A1) and may_send_from(True, T1, None, 0)
    assert not may_send_from(True, T1, None, ip("10.0.0.77"))       # nobody's: not an L3's
    assert not may_send_from(True, T1, T2, A2)
    assert may_send_from(False, ROOT, None, ip("8.8.8.8")) and may_send_from(False, ROOT, ROOT, SW)
    assert not may_send_from(False, ROOT, T1, A1)
    assert not may_send_from(False, ROOT, BROADCAST, DIRECTED)
    for martian in (ip("127.0.0.1"), ip("224.0.0.1"), ip("240.0.0.1"), 0xFFFFFFFF):
        assert is_martian_source(martian)
        assert not may_send_from(False, ROOT, None, martian)
        assert not may_send_from(True, T1, T1, martian)              # even if held
