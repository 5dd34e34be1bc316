"""Malformed IPv6 input never crashes the core or makes it read or write past a frame,
and the core decides it as the reference does (test_fastpath_fuzz.py is IPv4's)."""
from hypothesis import given, settings, strategies as st

from fastpath import Batch, Datapath, verdicts as V
from fastpath.reference import ReferenceDatapath
from fastpath_frames import port_mac
from fastpath_frames6 import (A2, DEST_OPTS, FAR, FRAGMENT, HBH, ICMPV6, PEER6, ROUTING, TCP, UDP,
                              build_world6, ext, from_t1, icmp6, ipv6_frame)
from test_fastpath_fuzz import _frames_at_end_of_pool

WHOLE = [
    from_t1(A2, exts=[ext(HBH), ext(DEST_OPTS), ext(FRAGMENT)]),                 # switched
    from_t1(FAR, nh=TCP, payload=bytes(12) + b"\x50\x10" + bytes(6),
            exts=[ext(ROUTING, b"\0\0\0\0")]),                                     # routed
    from_t1(A2, nh=ICMPV6, payload=icmp6(135)),                                    # nd
]


def both(frames):
    """(verdict, reason) of each frame placed at the very end of the pool, core and
    reference alike (asserted)."""
    core = _frames_at_end_of_pool(build_world6(Datapath(max_namespaces=16, max_ports=16)), frames)
    ref = _frames_at_end_of_pool(build_world6(ReferenceDatapath(max_namespaces=16, max_ports=16)),
                                 frames)
    assert core == ref
    return core


def test_every_truncation_of_an_ipv6_frame_is_a_malformed_drop():
    frames = [(port, f[:n]) for port, f in WHOLE for n in range(len(f) + 1)]
    for (port, f), (verdict, reason) in zip(frames, both(frames)):
        whole = any(f == w for _, w in WHOLE)
        if whole:
            assert verdict in (V.VERDICT_FORWARD, V.VERDICT_SLOWPATH), reason
        else:
            assert (verdict, reason) == (V.VERDICT_DROP, V.REASON_MALFORMED), len(f)


def test_lying_payload_lengths():
    port, base = WHOLE[0]
    frames = [(port, base[:18] + n.to_bytes(2, "big") + base[20:]) for n in range(0, 0x10000, 89)]
    for (_, f), (verdict, reason) in zip(frames, both(frames)):
        if 54 + int.from_bytes(f[18:20], "big") > len(f):
            assert (verdict, reason) == (V.VERDICT_DROP, V.REASON_MALFORMED)
        else:
            assert verdict != V.VERDICT_FORWARD or f == base


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 6, 7, 9]), st.integers(0, 255),
                          st.binary(max_size=120), st.one_of(st.none(), st.integers(0, 0xFFFF))),
                min_size=1, max_size=30))
def test_random_ipv6_payloads_are_decided_as_the_reference_does(items):
    frames = []
    for port, nh, body, plen in items:
        f = ipv6_frame(port_mac(port), PEER6.get(port, port_mac(0x50)), "fd00:1::1", "fd00:1::2",
                       nh=nh, payload=body, plen=plen)
        frames.append((port, f))
    b = Batch(capacity=len(frames), slot_size=256)
    b.buf[:] = 0xA5
    b.load(frames)
    canary = [bytes(b.buf[int(b.offset[i]) + len(f):int(b.offset[i]) + len(f) + 32])
              for i, (_, f) in enumerate(frames)]
    build_world6(Datapath(max_namespaces=16, max_ports=16)).process(b)
    for i, (_, f) in enumerate(frames):
        end = int(b.offset[i]) + len(f)
        assert bytes(b.buf[end:end + 32]) == canary[i]           # nothing written past a frame
        assert b.verdict[i] in V.VERDICT_NAMES
    both(frames)
