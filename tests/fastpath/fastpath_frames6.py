"""IPv6 frame builders and the IPv6 standard world for the fast-path tests (the IPv4
ones are in fastpath_frames.py; both worlds share its ids and MACs)."""
import ipaddress
import struct

from fastpath import Batch
from fastpath_frames import PEER, gso_header, load_with_headers, port_mac  # noqa: F401 (both families')

V6 = ipaddress.IPv6Address
HBH, ROUTING, FRAGMENT, DEST_OPTS, AUTH, ICMPV6, UDP, TCP, NO_NEXT = 0, 43, 44, 60, 51, 58, 17, 6, 59


def ext(kind, body=b"", nh=None):
    """An extension header of ``kind`` (its next-header byte filled in by ipv6_frame):
    options headers padded to 8-byte units, a fragment header from ``body`` (reserved,
    offset and flags, identification: 7 bytes)."""
    if kind == FRAGMENT:
        return kind, body.ljust(7, b"\0")[:7]
    unit, least = (4, 10) if kind == AUTH else (8, 6)
    body = body.ljust(max(least, len(body) + (-(len(body) + 2) % unit)), b"\0")
    size = len(body) + 2
    return kind, bytes([size // 4 - 2 if kind == AUTH else size // 8 - 1]) + body


def ipv6_packet(src, dst, *, hop=64, nh=UDP, payload=b"u" * 16, exts=(), plen=None, version=6):
    """The IPv6 packet (fixed header, extension headers, payload) from src to dst."""
    chain = b""
    kinds = [k for k, _ in exts] + [nh]
    for (kind, body), following in zip(exts, kinds[1:]):
        chain += bytes([following]) + body
    body = chain + payload
    first = kinds[0]
    plen = len(body) if plen is None else plen
    return (struct.pack("!IHBB", version << 28, plen, first, hop)
            + V6(src).packed + V6(dst).packed + body)


def ipv6_frame(dmac, smac, src, dst, *, pad=b"", ethertype=0x86DD, **kw):
    return dmac + smac + ethertype.to_bytes(2, "big") + ipv6_packet(src, dst, **kw) + pad


def icmp6(kind, code=0, body=b"\0" * 20):
    """An ICMPv6 message (checksum not computed: the fast path does not check it)."""
    return bytes([kind, code]) + b"\0\0" + body


def mcast_mac(group):
    return b"\x33\x33" + V6(group).packed[12:]


# The IPv6 standard world (ids as fastpath_frames.build_world's, plus tenant 7 on port 7):
#   scope 0: uplink port 0, L3 tenants 1 (port 1), 2 (port 2) and 3 (no port) in
#   fd00:1::/64, tenant 7 (port 7) in fd00:2::/64, the switch fd00:1::fe; routes ::/0 via
#   GW on the uplink, fd00:9::/32 on-link there.  Sibling scope 5: tenant 6 (port 6)
#   holding A1 too.
ROOT, T1, T2, T3, SIB, T6, T7 = 0, 1, 2, 3, 5, 6, 7
A1, A2, A3, SW, GW = (V6("fd00:1::1"), V6("fd00:1::2"), V6("fd00:1::3"), V6("fd00:1::fe"),
                      V6("fd00:1::64"))
A7, A6, FAR, ONLINK = V6("fd00:2::7"), V6("fd00:1::1"), V6("2001:db8::1"), V6("fd00:9::5")
LL1 = V6("fe80::201:ff:fe00:101")       # tenant 1's link-local address
PEER6 = {**PEER, 7: bytes.fromhex("020000000107")}
GW6_MAC = bytes.fromhex("020000000264")


def build_world6(dp, *, peers=True, mtu=None):
    with dp.update():
        dp.set_namespace(ROOT, ROOT, False)
        for n in (T1, T2, T3, T7):
            dp.set_namespace(n, ROOT, True)
        dp.set_namespace(SIB, SIB, False)
        dp.set_namespace(T6, SIB, True)
        for p, n in ((0, ROOT), (1, T1), (2, T2), (7, T7), (6, T6), (4, SIB)):
            dp.set_port(p, n, port_mac(p), **({} if mtu is None else {"mtu": mtu.get(p, 1500)}))
        for a, n in ((A1, T1), (A2, T2), (A3, T3), (SW, ROOT)):
            dp.add_address(ROOT, a, n, 64)
        dp.add_address(ROOT, A7, T7, 64)
        dp.add_address(SIB, A6, T6, 64)
        dp.add_route(ROOT, V6("::"), 0, 0, GW)
        dp.add_route(ROOT, V6("fd00:9::"), 32, 0, None)
        dp.set_neighbour(ROOT, GW, GW6_MAC)
    if peers:
        for p in (0, 1, 2, 6, 7):
            dp.set_peer_mac(p, PEER6[p])
    return dp


def from6(port, src, dst, *, dmac=None, **kw):
    """A frame the endpoint behind ``port`` sends (to the switch's MAC by default)."""
    return port, ipv6_frame(port_mac(port) if dmac is None else dmac, PEER6[port], src, dst, **kw)


def from_t1(dst, **kw):
    return from6(1, A1, dst, **kw)


def run6(dp, frames, headers=None, **batch_kw):
    """Process [(port, bytes)] in one batch (with virtio-net headers); return the batch."""
    b = Batch(capacity=max(1, len(frames)), **batch_kw)
    load_with_headers(b, frames, headers)
    dp.process(b)
    return b
