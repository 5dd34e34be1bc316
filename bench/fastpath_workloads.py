"""Fast-path benchmark workloads: datapaths loaded with N addresses or N routes, and
pre-built batches of 64-byte frames that hit them.

Shared by bench/bench_fastpath.py (pytest-benchmark) and bench/fastpath.py (the table).
Frames carry TTL 255 and are restored from a pristine copy (untimed) before they could
reach TTL 1, so every timed process() call does the full forwarding work.
"""
import functools
import struct

import numpy as np

from fastpath import Batch, Datapath, verdicts as V
from fastpath.reference import ReferenceDatapath, ipv4_checksum

FRAME_LEN = 64            # Ethernet frame without FCS: 14 + 20 + 8 (UDP) + 22
N_BATCH_FRAMES = 16384    # distinct frames cycled through (keeps tables, not frames, cold)
SCOPE = 0
UPLINK = 0


def mac(k):
    return bytes([0x02, 0x42, k >> 24 & 255, k >> 16 & 255, k >> 8 & 255, k & 255])


def frame(dmac, smac, src, dst):
    payload = bytes(FRAME_LEN - 14 - 20 - 8)
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 255, 17, 0,
                    src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    h = h[:10] + ipv4_checksum(h).to_bytes(2, "big") + h[12:]
    return dmac + smac + b"\x08\x00" + h + udp


def tenant_addr(k):
    """The k-th tenant address: 10.0.0.0/8 from 10.0.0.1 on."""
    return 0x0A000001 + k


def _base(dp, n_tenants):
    with dp.update():
        dp.set_namespace(SCOPE, SCOPE, False)
        dp.set_port(UPLINK, SCOPE, mac(0xFFFF))
        for t in range(1, n_tenants + 1):
            dp.set_namespace(t, SCOPE, True)
            dp.set_port(t, t, mac(t))
    for t in range(1, n_tenants + 1):
        dp.set_peer_mac(t, mac(0x10000 + t))


def loaded(cls, n_tenants, addresses, neighbours=(), routes=()):
    """A datapath of ``cls`` with _base's tenants 1..n_tenants, then in one update:
    ``addresses`` (each the arguments of add_address after the scope), ``neighbours``
    [(gateway, mac)] of the scope, and ``routes`` [(prefix, length)] via those gateways,
    round-robin, out of the uplink."""
    dp = cls(max_namespaces=1024, max_ports=1024)
    _base(dp, n_tenants)
    gateways = [g for g, _ in neighbours]
    with dp.update():
        for address in addresses:
            dp.add_address(SCOPE, *address)
        for g, g_mac in neighbours:
            dp.set_neighbour(SCOPE, g, g_mac)
        for i, (p, plen) in enumerate(routes):
            dp.add_route(SCOPE, p, plen, UPLINK, gateways[i % len(gateways)])
    return dp


def cross_tenant_pairs(seed, n_addresses, n_tenants):
    """N_BATCH_FRAMES (tenant, k_src, k_dst): random addresses k (held by tenant
    1 + k % n_tenants), the destination's tenant never the source's."""
    rng = np.random.default_rng(seed)
    for _ in range(N_BATCH_FRAMES):
        k_src, k_dst = (int(k) for k in rng.integers(0, n_addresses, 2))
        if k_src % n_tenants == k_dst % n_tenants:
            k_dst = (k_dst + 1) % n_addresses
        yield 1 + k_src % n_tenants, k_src, k_dst


def demux_world(cls, n_addresses, seed=1):
    """Tenants 1..T (T = min(n, 1000)) own n addresses round-robin; frames go from a random
    tenant (its own source address) to a random address of another tenant."""
    n_tenants = min(n_addresses, 1000)
    dp = loaded(cls, n_tenants, ((tenant_addr(k), 1 + k % n_tenants) for k in range(n_addresses)))
    frames = [(t, frame(mac(t), mac(0x10000 + t), tenant_addr(k_src), tenant_addr(k_dst)))
              for t, k_src, k_dst in cross_tenant_pairs(seed, n_addresses, n_tenants)]
    return dp, frames


def random_prefixes(n, rng):
    """n distinct prefixes shaped like a BGP table: ~60% /24, ~35% /16-/23, ~4% /8-/15,
    ~1% /25-/32 (exercising tbl8 groups); none in 10/8 (tenants), 0/8, 127/8 or >= 224/4."""
    lens = rng.choice([24, 23, 22, 21, 20, 19, 18, 17, 16, 12, 8, 28, 32],
                      size=n * 2, p=[.60, .08, .08, .06, .05, .03, .03, .01, .01, .02, .02, .005, .005])
    addrs = rng.integers(0x01000000, 0xE0000000, size=n * 2, dtype=np.uint64)
    out = set()
    for a, l in zip(addrs.tolist(), lens.tolist()):
        if a >> 24 in (10, 127):
            continue
        p = a & ((0xFFFFFFFF << (32 - l)) & 0xFFFFFFFF)
        out.add((p, l))
        if len(out) == n:
            break
    return sorted(out)


@functools.lru_cache(maxsize=8)
def cached_prefixes(draw, n, seed):
    """``draw(n, rng)`` (random_prefixes or an IPv6 twin) with a generator seeded ``seed``,
    kept for the next world of the same n and seed."""
    return draw(n, np.random.default_rng(seed))


def fib_world(cls, n_routes, seed=2, n_tenants=64, n_gateways=16):
    """n routes via 16 gateways on the uplink; 64 tenants send to random hosts of random routes."""
    prefixes = cached_prefixes(random_prefixes, n_routes, seed)
    gws = [0x0AFF0001 + g for g in range(n_gateways)]
    dp = loaded(cls, n_tenants, ((tenant_addr(t), t) for t in range(1, n_tenants + 1)),
                [(g, mac(0x20000 + g & 0xFFFF)) for g in gws], prefixes)
    rng = np.random.default_rng(seed + 1)
    frames = []
    picks = rng.integers(0, len(prefixes), N_BATCH_FRAMES)
    hosts = rng.integers(0, 1 << 32, N_BATCH_FRAMES, dtype=np.uint64)
    for k, h in zip(picks.tolist(), hosts.tolist()):
        p, l = prefixes[k]
        dst = p | (h & ((1 << (32 - l)) - 1))
        t = 1 + len(frames) % n_tenants
        frames.append((t, frame(mac(t), mac(0x10000 + t), tenant_addr(t), dst)))
    return dp, frames


class Stream:
    """Batches of `size` frames cycled through; restore() puts the TTLs back (untimed)."""

    def __init__(self, frames, size, n_frames=N_BATCH_FRAMES, max_fanout=None):
        self.batches = []
        for start in range(0, min(len(frames), n_frames), size):
            b = Batch(capacity=size, slot_size=128, headroom=64, max_fanout=max_fanout)
            b.load(frames[start:start + size])
            self.batches.append(b)
        self.pristine = [b.buf.copy() for b in self.batches]
        self.frames_per_pass = sum(b.count for b in self.batches)

    def restore(self):
        for b, p in zip(self.batches, self.pristine):
            np.copyto(b.buf, p)

    def run(self, dp, passes=1):
        """process() every batch `passes` times (passes <= 250 between restores)."""
        process = dp.process
        for _ in range(passes):
            for b in self.batches:
                process(b)

    def check(self, dp):
        """All frames of the stream are forwarded (a benchmark of drops would be a lie)."""
        self.restore()
        self.run(dp)
        for b in self.batches:
            bad = [(int(b.verdict[i]), V.REASON_NAMES[b.reason[i]]) for i in range(b.count)
                   if b.verdict[i] != V.VERDICT_FORWARD]
            assert not bad, bad[:5]
        self.restore()


IMPLEMENTATIONS = {"core": Datapath, "ref": ReferenceDatapath}
