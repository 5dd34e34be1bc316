"""Frame builders and a small standard topology for the fast-path tests."""
import struct

from fastpath import Batch
from fastpath.reference import ipv4_checksum


def ip(dotted):
    return int.from_bytes(bytes(int(x) for x in dotted.split(".")), "big")


def mac(k):
    """A locally administered unicast MAC numbered k."""
    return bytes([0x02, 0, 0, 0, k >> 8 & 0xFF, k & 0xFF])


BCAST = b"\xff" * 6


def ipv4_header(src, dst, *, ttl=64, proto=17, payload_len=0, options=b"", total=None,
                ihl=None, version=4, checksum=None):
    hlen = 20 + len(options)
    ihl = hlen // 4 if ihl is None else ihl
    total = hlen + payload_len if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, total, 0x1234, 0, ttl, proto, 0,
                    src.to_bytes(4, "big"), dst.to_bytes(4, "big")) + options
    c = ipv4_checksum(h) if checksum is None else checksum
    return h[:10] + c.to_bytes(2, "big") + h[12:]


def ipv4_frame(dmac, smac, src, dst, *, payload=b"p" * 18, pad=b"", ethertype=0x0800, **kw):
    return (dmac + smac + ethertype.to_bytes(2, "big")
            + ipv4_header(src, dst, payload_len=len(payload), **kw) + payload + pad)


def arp_frame(smac, sender_ip, target_ip):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, smac, sender_ip.to_bytes(4, "big"),
                       bytes(6), target_ip.to_bytes(4, "big"))
    return BCAST + smac + b"\x08\x06" + body


def load_with_headers(batch, frames, headers=None):
    """Batch.load(), then each frame's 12-byte virtio-net header (``headers[i]``: bytes,
    or None for zeros) written before it, as the packet loop keeps it."""
    batch.load(frames)
    for i in range(len(frames)):
        start = int(batch.offset[i])
        h = (headers or {}).get(i) or bytes(12)
        batch.buf[start - 12:start] = bytearray(h)
    return batch


def gso_header(gso_type, gso_size, csum_start, csum_offset, flags=1):
    return struct.pack("<BBHHHHH", flags, gso_type, 0, gso_size, csum_start, csum_offset, 0)


def run(dp, frames, headers=None, **batch_kw):
    """Process [(port, bytes)] in one batch (``headers``: {i: virtio-net header}); return
    the batch."""
    b = Batch(capacity=max(1, len(frames)), **batch_kw)
    load_with_headers(b, frames, headers)
    dp.process(b)
    return b


# The standard world used by the step tests:
#   scope 0 (ns 0, the root L2): uplink port 0 (switch MAC 00), L3 tenants 1 (port 1),
#   2 (port 2) and 3 (no port).  Sibling L2 scope 5 with L3 tenant 6 (port 6), which holds
#   the same address as tenant 1.  With ``subnet=True`` the addresses are on 10.0.0.0/24, as
#   the compiler would write them: each with its prefix length, and the subnet's directed
#   broadcast 10.0.0.255 listened to by the L3s on it (in each scope).
ROOT, T1, T2, T3, SIB, T6 = 0, 1, 2, 3, 5, 6
A1, A2, A3, SW, GW, A6 = (ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.254"),
                          ip("10.0.0.100"), ip("10.0.0.1"))
PEER = {1: mac(0x101), 2: mac(0x102), 6: mac(0x106), 0: mac(0x100)}
GW_MAC = mac(0x200)


def port_mac(p):
    return mac(p)


DIRECTED = ip("10.0.0.255")


def build_world(dp, *, peers=True, subnet=False):
    plen = 24 if subnet else 32
    with dp.update():
        dp.set_namespace(ROOT, ROOT, False)
        for n in (T1, T2, T3):
            dp.set_namespace(n, ROOT, True)
        dp.set_namespace(SIB, SIB, False)
        dp.set_namespace(T6, SIB, True)
        dp.set_port(0, ROOT, port_mac(0))
        dp.set_port(1, T1, port_mac(1))
        dp.set_port(2, T2, port_mac(2))
        dp.set_port(6, T6, port_mac(6))
        dp.set_port(4, SIB, port_mac(4))
        dp.add_address(ROOT, A1, T1, plen)
        dp.add_address(ROOT, A2, T2, plen)
        dp.add_address(ROOT, A3, T3, plen)
        dp.add_address(ROOT, SW, ROOT, plen)
        dp.add_address(SIB, A6, T6, plen)
        if subnet:
            dp.set_broadcast(ROOT, DIRECTED, [T1, T2, T3])
            dp.set_broadcast(SIB, DIRECTED, [T6])
        dp.add_route(ROOT, 0, 0, 0, GW)
        dp.add_route(ROOT, ip("10.9.0.0"), 16, 0)
        dp.set_neighbour(ROOT, GW, GW_MAC)
    if peers:
        for p in (0, 1, 2, 6):
            dp.set_peer_mac(p, PEER[p])
    return dp


def from_t1(dst, **kw):
    """A frame tenant 1 sends through its port (to the switch's MAC)."""
    return (1, ipv4_frame(port_mac(1), PEER[1], A1, dst, **kw))


def batch_results(batch):
    """Everything process() decided for a batch: per frame (verdict, reason, out port,
    rewritten bytes, fan-out slice) and every fan-out copy as it goes on the wire."""
    return ([(int(batch.verdict[i]), int(batch.reason[i]), int(batch.out_port[i]), batch.frame(i),
              int(batch.fanout_first[i]), int(batch.fanout_n[i])) for i in range(batch.count)],
            [batch.copy(k) for k in range(batch.fanout_count)])


def assert_same_batch(core, ref, frames, max_fanout, headers=None, slot_size=256):
    """Run ``frames`` (``headers``: {i: virtio-net header}) through both datapaths;
    results and counters must be identical."""
    out = []
    for dp in (core, ref):
        b = Batch(capacity=len(frames), slot_size=slot_size, max_fanout=max_fanout)
        load_with_headers(b, frames, headers)
        dp.process(b)
        out.append(batch_results(b))
    assert out[0] == out[1]
    assert core.counters() == ref.counters()
