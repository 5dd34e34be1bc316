"""Malformed input never crashes the core or makes it read past a frame; codes agree."""
import re

import numpy as np
from hypothesis import given, settings, strategies as st

from fastpath import Batch, Datapath, verdicts as V
from fastpath import _core
from fastpath_frames import A1, A2, PEER, build_world, ipv4_frame, port_mac


def test_pxi_codes_mirror_verdicts_py():
    python_codes = {k: v for k, v in vars(V).items() if re.fullmatch(r"(VERDICT|REASON)_[A-Z_]+", k)
                    and isinstance(v, int)}
    assert _core.C_CODES == python_codes
    assert set(V.REASON_NAMES) == {0} | V.DROP_REASONS | V.SLOWPATH_REASONS
    assert max(V.REASON_NAMES) < V.REASON_COUNT


def _frames_at_end_of_pool(dp, frames):
    """Place each frame so it ends exactly at the end of the buffer pool: a read past the
    frame would read past the pool (and the canary after each frame in other tests)."""
    results = []
    for port, f in frames:
        b = Batch(capacity=1, slot_size=128 + len(f) + (-len(f) % 8), headroom=64)
        b.buf[:] = 0xA5
        start = b.pool_size - len(f)
        b.buf[start:] = np.frombuffer(f, dtype=np.uint8) if f else b.buf[start:]
        b.offset[0], b.length[0], b.port[0] = start, len(f), port
        b.count = 1
        dp.process(b)
        results.append((int(b.verdict[0]), int(b.reason[0])))
    return results


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 6, 9, -1]), st.binary(max_size=80)), min_size=1, max_size=30))
def test_random_bytes_are_counted_never_crash(frames):
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    b = Batch(capacity=len(frames), slot_size=256)
    b.buf[:] = 0xA5
    b.load(frames)
    canary = [bytes(b.buf[int(b.offset[i]) + len(f):int(b.offset[i]) + len(f) + 32]) for i, (_, f) in enumerate(frames)]
    dp.process(b)
    for i, (_, f) in enumerate(frames):
        end = int(b.offset[i]) + len(f)
        assert bytes(b.buf[end:end + 32]) == canary[i]           # nothing written past a frame
        assert b.verdict[i] in V.VERDICT_NAMES
    c = dp.counters()
    decided = sum(c["reasons"].values()) + sum(1 for i in range(len(frames)) if b.verdict[i] in
                                               (V.VERDICT_FORWARD, V.VERDICT_FANOUT))
    assert decided >= len(frames)


def test_every_ihl_and_every_truncation_of_a_valid_frame():
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    base = ipv4_frame(port_mac(1), PEER[1], A1, A2, options=b"\x01" * 8)
    frames = []
    for ihl in range(16):
        f = base[:14] + bytes([0x40 | ihl]) + base[15:]
        frames += [(1, f)] + [(1, f[:n]) for n in range(len(f))]
    res = _frames_at_end_of_pool(dp, frames)
    for (port, f), (verdict, reason) in zip(frames, res):
        ihl = f[14] & 15 if len(f) > 14 else None
        if len(f) == len(base) and ihl == 7:
            assert verdict == V.VERDICT_FORWARD
        elif ihl is not None and len(f) >= 34 and ihl >= 5 and 14 + ihl * 4 <= len(f) and len(f) == len(base):
            assert reason == V.REASON_BAD_CHECKSUM               # valid lengths, header changed
        else:
            assert (verdict, reason) == (V.VERDICT_DROP, V.REASON_MALFORMED), (ihl, len(f))


def test_lying_total_lengths():
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    base = ipv4_frame(port_mac(1), PEER[1], A1, A2)
    frames = [(1, base[:16] + t.to_bytes(2, "big") + base[18:]) for t in range(0, 0x10000, 97)]
    for (port, f), (verdict, reason) in zip(frames, _frames_at_end_of_pool(dp, frames)):
        total = int.from_bytes(f[16:18], "big")
        if total < 20 or 14 + total > len(f):
            assert reason == V.REASON_MALFORMED
        else:
            assert reason in (V.REASON_BAD_CHECKSUM, V.REASON_NONE)


def test_offsets_outside_the_pool_are_malformed():
    dp = build_world(Datapath(max_namespaces=16, max_ports=16))
    b = Batch(capacity=2, slot_size=256)
    b.load([(1, ipv4_frame(port_mac(1), PEER[1], A1, A2))] * 2)
    b.offset[0] = b.pool_size - 10
    b.length[1] = 0xFFFFFFFF
    dp.process(b)
    assert list(b.reason[:2]) == [V.REASON_MALFORMED, V.REASON_MALFORMED]
