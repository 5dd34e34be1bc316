"""Each namespace's share of the slow path (slow_shares.pxi; issue 14 item 14): token
buckets per sending namespace and share (per ingress port for igmp), refusals counted per
namespace.  The compiled buckets are compared with the reference's (fastpath/shares.py)
over random sequences; the packet loop refuses a flooding namespace's frames over its
share while another namespace's still reach the slow path."""
import random

import pytest

from fastpath import Datapath, PacketLoop, verdicts
from fastpath.errors import InvalidArgument, NotFound
from fastpath.reasons import SHARE_NAMES, SLOW_SHARES
from fastpath.reference import ReferenceDatapath
from tests.support.io import FakeTap, SWITCH_IP, arp_request, udp_frame, world

SLOW_CODES = sorted(verdicts.SLOWPATH_REASONS)
MAC = bytes([2, 0, 0, 0, 0, 9])


def _tenants(dp):
    """L2 0 and 5; L3s 1..4 on ports 1..4 (1, 2 in scope 0; 3, 4 in scope 5); an uplink
    port 6 on L2 0 and port 7 on L2 5."""
    with dp.update():
        for scope in (0, 5):
            dp.set_namespace(scope, scope, False)
        for ns in (1, 2, 3, 4):
            dp.set_namespace(ns, 0 if ns < 3 else 5, True)
            dp.set_port(ns, ns, MAC)
        dp.set_port(6, 0, MAC)
        dp.set_port(7, 5, MAC)


def _refused(dp):
    return {ns: c["slow_refused"] for ns, c in dp.counters()["namespaces"].items()}


def _step(dp, rng_state, now):
    """One random operation (the same on both datapaths: rng_state replays it)."""
    rng = random.Random(rng_state)
    op = rng.random()
    if op < 0.08:
        name = rng.choice(SHARE_NAMES)
        rate = rng.choice([0, 1, 50, 1000, 250000])
        dp.set_slow_share(name, rate, rng.choice([1, 3, 20]) if rate else rng.choice([0, 5]))
        return None
    if op < 0.11:                                # a namespace id created again
        ns = rng.choice([1, 2])
        with dp.update():
            dp.remove_port(ns)
            dp.remove_namespace(ns)
            dp.set_namespace(ns, 0, True)
            dp.set_port(ns, ns, MAC)
        return None
    if op < 0.13:                                # the uplink moves to the other L2
        with dp.update():
            dp.set_port(6, rng.choice([0, 5]), MAC)
        return None
    return dp.share_admit_at(rng.choice([1, 2, 3, 4, 6, 7]), rng.choice(SLOW_CODES), now)


@pytest.mark.parametrize("seed", range(6))
def test_the_buckets_match_the_reference(seed):
    core, ref = Datapath(max_namespaces=16, max_ports=16), ReferenceDatapath(max_namespaces=16,
                                                                            max_ports=16)
    for dp in (core, ref):
        _tenants(dp)
        for share in SLOW_SHARES:
            dp.set_slow_share(share.name, 100, 4)
    rng, now = random.Random(seed), 1_000_000_000
    admitted = 0
    for _ in range(3000):
        now += rng.choice([0, 0, 1000, 100_000, 3_000_000, 40_000_000])
        state = rng.getrandbits(64)
        got = _step(core, state, now)
        assert got == _step(ref, state, now)
        admitted += got is True
    assert _refused(core) == _refused(ref)
    assert core.slow_shares() == ref.slow_shares()
    assert admitted and sum(sum(r.values()) for r in _refused(core).values())  # both happened


@pytest.mark.parametrize("cls", [ReferenceDatapath, Datapath], ids=["ref", "core"])
def test_a_share_is_per_namespace_and_igmp_per_port(cls):
    dp = cls(max_namespaces=16, max_ports=16)
    _tenants(dp)
    dp.set_slow_share("arp", 1e-6, 3)             # a burst of 3, nothing more in this test
    dp.set_slow_share("igmp", 1e-6, 2)
    now = 5_000_000_000
    assert [dp.share_admit_at(1, verdicts.REASON_ARP, now) for _ in range(5)] == [True] * 3 + [False] * 2
    assert dp.share_admit_at(2, verdicts.REASON_ARP, now)           # another namespace: its own
    assert dp.share_admit_at(1, verdicts.REASON_LOCAL, now)         # another share: unlimited
    # igmp: each port its own bucket, the refusals counted for the port's namespace
    assert [dp.share_admit_at(6, verdicts.REASON_IGMP, now) for _ in range(3)] == [True, True, False]
    assert dp.share_admit_at(7, verdicts.REASON_IGMP, now)
    refused = _refused(dp)
    assert refused[1] == {**dict.fromkeys(SHARE_NAMES, 0), "arp": 2}
    assert refused[0] == {**dict.fromkeys(SHARE_NAMES, 0), "igmp": 1}
    assert refused[2] == refused[5] == dict.fromkeys(SHARE_NAMES, 0)


@pytest.mark.parametrize("cls", [ReferenceDatapath, Datapath], ids=["ref", "core"])
def test_bad_share_rules_are_refused_and_change_nothing(cls):
    dp = cls(max_namespaces=16, max_ports=16)
    _tenants(dp)
    dp.set_slow_share("icmp", 10, 2)
    for args in (("ping", 1, 1), ("icmp", -1, 1), ("icmp", 10, 0), ("icmp", True, 1),
                 ("icmp", 1, "2"), ("icmp", 2e9, 1)):
        with pytest.raises(InvalidArgument):
            dp.set_slow_share(*args)
    assert dp.slow_shares()["icmp"] == (10.0, 2.0)
    with pytest.raises(InvalidArgument):
        dp.share_admit_at(1, verdicts.REASON_SPOOFED_SOURCE, 1)      # a drop, not slow path
    with pytest.raises(InvalidArgument):
        dp.share_admit_at(1, verdicts.REASON_ARP, 0)
    with pytest.raises(NotFound):
        dp.share_admit_at(9, verdicts.REASON_ARP, 1)


def test_the_loop_refuses_a_flood_over_its_share_and_the_others_still_get_through():
    dp = world()
    dp.set_slow_share("arp", 1e-6, 5)
    dp.set_slow_share("icmp", 1e-6, 2)
    loop = PacketLoop(dp, batch_size=64, slot_size=4096, backend="epoll")
    taps = {p: FakeTap() for p in (1, 2)}
    try:
        for p, t in taps.items():
            loop.add_port(p, t.loop_fd)
        for _ in range(40):
            taps[1].inject(arp_request(1, SWITCH_IP))
        for _ in range(3):
            taps[1].inject(udp_frame(1, SWITCH_IP, b"to the switch"))
        taps[2].inject(arp_request(2, SWITCH_IP))
        slow = []
        for _ in range(20):
            loop.run(0)
            slow += loop.slow_frames()
            if loop.stats()["frames_in"] == 44:
                break
        loop.run(0)
        slow += loop.slow_frames()
        assert loop.stats()["frames_in"] == 44
        by = sorted((port, reason) for port, reason, _ in slow)
        assert by == sorted([(1, verdicts.REASON_ARP)] * 5 + [(1, verdicts.REASON_LOCAL)] * 2
                            + [(2, verdicts.REASON_ARP)])
        assert loop.stats()["slow_refused"] == 36
        refused = _refused(dp)
        assert refused[1] == {**dict.fromkeys(SHARE_NAMES, 0), "arp": 35, "icmp": 1}
        assert refused[2] == dict.fromkeys(SHARE_NAMES, 0)
    finally:
        loop.close()
        for t in taps.values():
            t.close()
