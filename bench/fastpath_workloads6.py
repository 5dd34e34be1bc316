"""The IPv6 workloads of the fast-path benchmarks, beside fastpath_workloads.py's IPv4
ones and built the same way: datapaths loaded with N addresses or N routes, and 64-byte
frames (14 + 40 + 8 UDP + 2) that hit them, hop limit 255.

- ``demux6_world``: tenants 1..T (T = min(n, 1000)) own n addresses of one /64 round-robin
  (on-link prefix 64, the usual shape of an L2's tenants); frames go from a random tenant
  to a random address of another (switched: the hop limit stays).
- ``fib6_world``: n routes shaped like an IPv6 BGP table (``random_prefixes6``) via 16
  gateways on the uplink; 64 tenants send to random hosts of random routes (routed).
"""
import ipaddress
import struct

import numpy as np

from bench.fastpath_workloads import (
    N_BATCH_FRAMES,
    cached_prefixes,
    cross_tenant_pairs,
    loaded,
    mac,
)

V6 = ipaddress.IPv6Address
TENANT_NET = 0xFD00_0000_0000_0001 << 64          # fd00:0:0:1::/64
GATEWAY_NET = 0xFD00_0000_0000_00FF << 64         # fd00:0:0:ff::/64


def frame6(dmac, smac, src, dst):
    """A 64-byte IPv6/UDP frame (UDP checksum left 0: the fast path does not read it)."""
    payload = b"\0\0"
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
    header = struct.pack("!IHBB", 6 << 28, len(udp), 17, 255) + src.to_bytes(16, "big") \
        + dst.to_bytes(16, "big")
    return dmac + smac + b"\x86\xdd" + header + udp


def tenant_addr6(k):
    """The k-th tenant address: fd00:0:0:1::1 on."""
    return TENANT_NET + 1 + k


def demux6_world(cls, n_addresses, seed=1):
    n_tenants = min(n_addresses, 1000)
    dp = loaded(cls, n_tenants,
                ((V6(tenant_addr6(k)), 1 + k % n_tenants, 64) for k in range(n_addresses)))
    frames = [(t, frame6(mac(t), mac(0x10000 + t), tenant_addr6(k_src), tenant_addr6(k_dst)))
              for t, k_src, k_dst in cross_tenant_pairs(seed, n_addresses, n_tenants)]
    return dp, frames


# (length, share) of an IPv6 BGP table's prefixes, roughly (most are /48 and /32 to /44)
BGP6_LENGTHS = ((48, .46), (32, .10), (44, .08), (40, .07), (36, .03), (29, .03), (46, .03),
                (47, .03), (42, .03), (33, .02), (34, .02), (35, .02), (56, .02), (64, .02),
                (38, .01), (28, .01), (24, .01), (20, .005), (128, .005))


def random_prefixes6(n, rng):
    """n distinct prefixes shaped like an IPv6 BGP table (BGP6_LENGTHS) in 2000::/4."""
    lengths, shares = zip(*BGP6_LENGTHS)
    shares = np.array(shares) / sum(shares)
    out = set()
    while len(out) < n:
        lens = rng.choice(lengths, size=n, p=shares)
        his = rng.integers(0, 1 << 60, size=n, dtype=np.uint64)
        los = rng.integers(0, 1 << 63, size=n, dtype=np.uint64)
        for h, lo, plen in zip(his.tolist(), los.tolist(), lens.tolist()):
            address = (0x2 << 124) | (h << 64) | lo
            out.add((address & ~((1 << (128 - plen)) - 1), plen))
            if len(out) == n:
                break
    return sorted(out)


def fib6_world(cls, n_routes, seed=2, n_tenants=64, n_gateways=16):
    prefixes = cached_prefixes(random_prefixes6, n_routes, seed)
    gws = [V6(GATEWAY_NET + 1 + g) for g in range(n_gateways)]
    dp = loaded(cls, n_tenants, ((V6(tenant_addr6(t)), t, 64) for t in range(1, n_tenants + 1)),
                [(gw, mac(0x20000 + g)) for g, gw in enumerate(gws)],
                ((V6(p), plen) for p, plen in prefixes))
    rng = np.random.default_rng(seed + 1)
    frames = []
    picks = rng.integers(0, len(prefixes), N_BATCH_FRAMES)
    for k in picks.tolist():
        p, plen = prefixes[k]
        host = int(rng.integers(0, 1 << 63)) << 65 | int(rng.integers(0, 1 << 63))
        dst = p | (host & ((1 << (128 - plen)) - 1))
        t = 1 + len(frames) % n_tenants
        frames.append((t, frame6(mac(t), mac(0x10000 + t), tenant_addr6(t), dst)))
    return dp, frames
