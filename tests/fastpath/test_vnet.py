"""The virtio-net header code (fastpath/vnet.pxi) on bytes: header checks, checksum
completion and software segmentation (TCPv4, TCPv6, UDP_L4 over IPv4 and IPv6), checked
against frames built with scapy."""
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, Ether

import fastpath
from tests.support.io import (GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_UDP_L4,
                              checksums_ok, offloaded, vnet_hdr)

ETH = dict(dst="02:00:00:00:00:01", src="02:ee:00:00:00:01")
V4 = dict(src="10.0.0.1", dst="10.0.0.2")
V6 = dict(src="fd00::1", dst="fd00::2")


def payload(n):
    return bytes((k * 7 + k // 251) & 0xFF for k in range(n))


def tcp4(n, flags="PA", **kw):
    return bytes(Ether(**ETH) / IP(**V4, id=100, flags="DF") /
                 TCP(sport=5000, dport=80, seq=0xFFFFF000, flags=flags, **kw) / payload(n))


def tcp6(n, flags="PA"):
    return bytes(Ether(**ETH) / IPv6(**V6) / TCP(sport=5000, dport=80, seq=7, flags=flags) / payload(n))


def udp4(n):
    return bytes(Ether(**ETH) / IP(**V4, id=9) / UDP(sport=53, dport=5353) / payload(n))


def udp6(n):
    return bytes(Ether(**ETH) / IPv6(**V6) / UDP(sport=53, dport=5353) / payload(n))


@pytest.mark.parametrize("build", [tcp4, tcp6, udp4, udp6], ids=["tcp4", "tcp6", "udp4", "udp6"])
@pytest.mark.parametrize("n", [0, 1, 1447, 9000])
def test_checksum_completion_gives_the_real_checksum(build, n):
    frame = build(n)
    hdr, partial = offloaded(frame)
    assert fastpath.vnet_validate(hdr, partial) == "ok"
    assert fastpath.vnet_to_plain(hdr, partial) == [frame]


def test_checksum_completion_after_ip_options():
    frame = IP_OPTIONS
    hdr, partial = offloaded(frame)
    assert fastpath.vnet_to_plain(hdr, partial) == [frame]


def test_a_frame_without_offloads_passes_unchanged():
    frame = udp4(100)
    assert fastpath.vnet_to_plain(vnet_hdr(), frame) == [frame]
    assert fastpath.vnet_to_plain(vnet_hdr(flags=2), frame) == [frame]   # DATA_VALID


def segments_of(frame, gso_type, mss):
    hdr, partial = offloaded(frame, gso_type, mss)
    assert fastpath.vnet_validate(hdr, partial) == "ok"
    return fastpath.vnet_to_plain(hdr, partial)


def checked_segments(frame, gso_type, mss):
    """segments_of(...) as (bytes, scapy packet) pairs, every checksum of each checked."""
    segs = segments_of(frame, gso_type, mss)
    for s in segs:
        assert checksums_ok(s)
    return [(s, Ether(s)) for s in segs]


def joined_payload(segs, layer):
    """The payloads of ``layer`` of the checked segments, in order, as one byte string."""
    return b"".join(bytes(p[layer].payload) for _, p in segs)


@pytest.mark.parametrize("n,mss", [(10000, 1448), (2896, 1448), (100, 1448), (0, 1448),
                                   (65000, 1448), (256, 1), (65483, 9000)])
def test_tcp4_segmentation(n, mss):
    frame = tcp4(n, flags="FPA")
    segs = checked_segments(frame, GSO_TCPV4, mss)
    assert len(segs) == max(1, -(-n // mss))
    for k, (s, p) in enumerate(segs):
        assert s[:14] == frame[:14]
        assert p[IP].len == len(s) - 14 and p[IP].id == (100 + k) & 0xFFFF
        assert p[IP].ttl == 64 and p[IP].flags == "DF"
        assert p[TCP].seq == (0xFFFFF000 + k * mss) & 0xFFFFFFFF          # wraps
        assert len(bytes(p[TCP].payload)) == (min(mss, n - k * mss) if n else 0)
        last = k == len(segs) - 1
        assert bool(p[TCP].flags & 0x08) == last and bool(p[TCP].flags & 0x01) == last
        assert p[TCP].flags & 0x10                                         # ACK everywhere
    assert joined_payload(segs, TCP) == payload(n)


def test_tcp4_options_are_copied_into_every_segment():
    frame = tcp4(4000, options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
    for _, p in checked_segments(frame, GSO_TCPV4, 1000):
        assert p[TCP].dataofs == 8 and ("Timestamp", (1, 2)) in p[TCP].options


def test_ecn_cwr_only_on_the_first_segment():
    frame = tcp4(3000, flags="AC")
    segs = segments_of(frame, GSO_TCPV4 | GSO_ECN, 1000)
    assert [bool(Ether(s)[TCP].flags & 0x80) for s in segs] == [True, False, False]


@pytest.mark.parametrize("n,mss", [(10000, 1428), (1428, 1428), (33, 1428)])
def test_tcp6_segmentation(n, mss):
    segs = checked_segments(tcp6(n), GSO_TCPV6, mss)
    assert len(segs) == -(-n // mss)
    for k, (s, p) in enumerate(segs):
        assert p[IPv6].plen == len(s) - 54 and p[TCP].seq == 7 + k * mss
    assert joined_payload(segs, TCP) == payload(n)


@pytest.mark.parametrize("build,ip_layer", [(udp4, IP), (udp6, IPv6)], ids=["v4", "v6"])
@pytest.mark.parametrize("n,mss", [(65000, 1472), (3000, 1000), (999, 1000), (1, 1000)])
def test_udp_l4_segmentation(build, ip_layer, n, mss):
    segs = checked_segments(build(n), GSO_UDP_L4, mss)
    assert len(segs) == -(-n // mss)
    for k, (s, p) in enumerate(segs):
        assert p[UDP].len == len(s) - (14 + (20 if ip_layer is IP else 40))
        assert p[UDP].sport == 53 and p[UDP].dport == 5353
        if ip_layer is IP:
            assert p[IP].id == 9 + k and p[IP].len == len(s) - 14
    assert joined_payload(segs, UDP) == payload(n)


def _bad(hdr_kw, frame):
    return fastpath.vnet_validate(vnet_hdr(**hdr_kw), frame)


TCP4 = tcp4(3000)
L4 = 34
IP_OPTIONS = bytes(Ether(**ETH) / IP(**V4, options=b"\x01" * 8) / TCP() / payload(100))   # L4 at 42


@pytest.mark.parametrize("hdr_kw,frame,why", [
    (dict(flags=4), TCP4, "vnet_bad_flags"),
    (dict(flags=0x81), TCP4, "vnet_bad_flags"),
    (dict(gso_type=2), TCP4, "vnet_bad_gso_type"),
    (dict(gso_type=GSO_UDP, flags=1, csum_start=L4, csum_offset=6, gso_size=100), udp4(3000),
     "vnet_bad_gso_type"),                                                   # UFO is refused
    (dict(gso_type=9), TCP4, "vnet_bad_gso_type"),
    (dict(gso_type=GSO_ECN), TCP4, "vnet_bad_gso_type"),
    (dict(gso_type=GSO_UDP_L4 | GSO_ECN, flags=1, csum_start=L4, csum_offset=6, gso_size=100),
     udp4(3000), "vnet_bad_gso_type"),
    (dict(flags=1, csum_start=len(TCP4) - 17, csum_offset=16), TCP4, "vnet_bad_csum"),
    (dict(flags=1, csum_start=10, csum_offset=2), TCP4, "vnet_bad_csum"),    # inside Ethernet
    (dict(flags=1, csum_start=L4, csum_offset=0xFFFF), TCP4, "vnet_bad_csum"),
    # inside the IP header: completing the "checksum" would rewrite the source address
    # (or TTL, addresses, length) after the switch checked them
    (dict(flags=1, csum_start=14, csum_offset=12), TCP4, "vnet_bad_csum"),
    (dict(flags=1, csum_start=L4 - 4, csum_offset=0), TCP4, "vnet_bad_csum"),
    (dict(flags=1, csum_start=L4, csum_offset=16), IP_OPTIONS, "vnet_bad_csum"),
    (dict(flags=1, csum_start=54 - 8, csum_offset=4), tcp6(100), "vnet_bad_csum"),
    (dict(hdr_len=len(TCP4) + 1), TCP4, "vnet_bad_hdr_len"),
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=16, gso_size=0), TCP4,
     "vnet_bad_gso"),
    (dict(gso_type=GSO_TCPV4, csum_start=L4, csum_offset=16, gso_size=100), TCP4,
     "vnet_bad_gso"),                                                        # no NEEDS_CSUM
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=6, gso_size=100), TCP4,
     "vnet_bad_gso"),                                                        # wrong offset
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4 + 4, csum_offset=16, gso_size=100), TCP4,
     "vnet_bad_gso"),                                                        # not the L4 header
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=6, gso_size=100), udp4(3000),
     "vnet_bad_gso"),                                                        # TCP type, UDP frame
    (dict(gso_type=GSO_UDP_L4, flags=1, csum_start=L4, csum_offset=16, gso_size=100), TCP4,
     "vnet_bad_gso"),
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=54, csum_offset=16, gso_size=100), tcp6(3000),
     "vnet_bad_gso"),                                                        # v4 type, v6 frame
    (dict(gso_type=GSO_TCPV6, flags=1, csum_start=L4, csum_offset=16, gso_size=100), TCP4,
     "vnet_bad_gso"),
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=16, gso_size=100),
     TCP4[:1000], "vnet_bad_gso"),                                           # IP length lies
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=16, gso_size=100),
     bytes(Ether(**ETH) / IP(**V4, flags="MF") / TCP() / payload(3000)), "vnet_bad_gso"),  # fragment
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=16, gso_size=100),
     TCP4[:46] + bytes([0x40]) + TCP4[47:], "vnet_bad_gso"),                 # TCP data offset 4
    (dict(gso_type=GSO_TCPV6, flags=1, csum_start=62, csum_offset=16, gso_size=100),
     bytes(Ether(**ETH) / IPv6(**V6) / IPv6ExtHdrFragment() / TCP() / payload(3000)),
     "vnet_bad_gso"),                                                        # a fragment
    (dict(gso_type=GSO_TCPV6, flags=1, csum_start=78, csum_offset=16, gso_size=100),
     bytes(Ether(**ETH) / IPv6(**V6) / IPv6ExtHdrRouting(addresses=["fd00::9"], segleft=1) / TCP()
           / payload(3000)), "vnet_bad_gso"),                               # not the final destination
    (dict(gso_type=GSO_TCPV6, flags=1, csum_start=62, csum_offset=16, gso_size=100),
     bytes(Ether(**ETH) / IPv6(**V6) / IPv6ExtHdrHopByHop() / TCP() / payload(3000))[:61],
     "vnet_bad_csum"),                                                       # chain beyond the frame
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=14, csum_offset=16, gso_size=100),
     bytes(Ether(**ETH) / ARP()), "vnet_bad_gso"),
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=0, csum_offset=0, gso_size=100), b"",
     "vnet_bad_csum"),
    # the work one frame may cause is bounded: 3000 bytes at gso_size 1 would be 3000 writes
    (dict(gso_type=GSO_TCPV4, flags=1, csum_start=L4, csum_offset=16, gso_size=1), TCP4,
     "vnet_too_many_segments"),
    (dict(gso_type=GSO_UDP_L4, flags=1, csum_start=L4, csum_offset=6, gso_size=11), udp4(3000),
     "vnet_too_many_segments"),                                              # 273 segments
])
def test_malformed_headers_are_refused(hdr_kw, frame, why):
    assert _bad(hdr_kw, frame) == why
    with pytest.raises(ValueError, match=why):
        fastpath.vnet_to_plain(vnet_hdr(**hdr_kw), frame)


@pytest.mark.parametrize("n", [256 * 8, 256 * 8 - 7])
def test_a_super_frame_of_exactly_the_segment_limit_is_cut(n):
    hdr, frame = offloaded(tcp4(n), GSO_TCPV4, 8)
    assert fastpath.vnet_validate(hdr, frame) == "ok"
    segments = fastpath.vnet_to_plain(hdr, frame)
    assert len(segments) == 256 and all(checksums_ok(s) for s in segments)
    hdr, frame = offloaded(tcp4(n + 8), GSO_TCPV4, 8)
    assert fastpath.vnet_validate(hdr, frame) == "vnet_too_many_segments"


def test_header_length_is_checked():
    with pytest.raises(ValueError):
        fastpath.vnet_validate(b"\0" * 10, TCP4)


def test_the_same_header_fields_the_kernel_sends_are_accepted():
    # what a Linux TAP hands over for a TSO frame: hdr_len = linear part (may exceed the
    # headers), csum_start at L4, NEEDS_CSUM, gso_size = MSS
    hdr = struct.pack("<BBHHHHH", 1, GSO_TCPV4, 1514, 1448, L4, 16, 0)
    _, partial = offloaded(TCP4, GSO_TCPV4, 1448)
    assert fastpath.vnet_validate(hdr, partial) == "ok"
    assert len(fastpath.vnet_to_plain(hdr, partial)) == 3
