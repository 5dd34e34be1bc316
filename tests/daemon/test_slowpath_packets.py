"""Wire-format helpers of the slow path (pyctl/packets.py) against scapy."""
from hypothesis import given, strategies as st
from scapy.compat import raw
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from pyctl.daemon import packets as pk


@given(st.binary(max_size=300))
def test_checksum_of_data_with_its_checksum_is_zero(data):
    c = pk.checksum(data)
    padded = data + (b"\x00" if len(data) % 2 else b"")
    assert pk.checksum(padded + c.to_bytes(2, "big")) == 0


@given(ttl=st.integers(2, 255), tos=st.integers(0, 255), ident=st.integers(0, 0xFFFF),
       src=st.integers(0, 2**32 - 1), dst=st.integers(0, 2**32 - 1),
       payload=st.binary(max_size=40))
def test_decrement_ttl_matches_a_full_recompute(ttl, tos, ident, src, dst, payload):
    datagram = pk.build_ipv4(src, dst, 17, payload, ttl=ttl, tos=tos, ident=ident)
    expected = pk.build_ipv4(src, dst, 17, payload, ttl=ttl - 1, tos=tos, ident=ident)
    got = pk.decrement_ttl(datagram)
    assert got == expected or (got[:10] == expected[:10] and got[12:] == expected[12:]
                               and {got[10:12], expected[10:12]} == {b"\x00\x00", b"\xff\xff"})
    assert pk.checksum(got[:20]) == 0


def test_build_ipv4_and_icmp_match_scapy():
    icmp = pk.build_icmp(8, 0, b"\x12\x34\x00\x07", b"hello")
    datagram = pk.build_ipv4(pk.ip_int("10.0.0.2"), pk.ip_int("10.0.0.1"), 1, icmp, ttl=9, ident=77)
    ref = IP(src="10.0.0.2", dst="10.0.0.1", ttl=9, id=77) / ICMP(type=8, id=0x1234, seq=7) / b"hello"
    assert datagram == raw(ref)


def test_build_arp_matches_scapy():
    sha = bytes.fromhex("020000000001")
    frame = pk.build_ethernet(pk.BROADCAST_MAC, sha, pk.ETH_P_ARP,
                              pk.build_arp(1, sha, pk.ip_int("10.0.0.1"), pk.ZERO_MAC,
                                           pk.ip_int("10.0.0.9")))
    ref = Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:01") / ARP(
        op=1, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.9")
    assert frame == raw(ref)


def test_parse_ipv4_refuses_bad_headers():
    good = raw(IP(src="10.0.0.2", dst="10.0.0.1") / b"data")
    assert pk.parse_ipv4(good).payload == b"data"
    assert pk.parse_ipv4(good + b"\x00" * 6).datagram == good        # padding trimmed
    assert pk.parse_ipv4(good[:-1]) is None                          # shorter than total length
    assert pk.parse_ipv4(b"\x65" + good[1:]) is None                 # version 6
    assert pk.parse_ipv4(b"\x44" + good[1:]) is None                 # IHL 4
    assert pk.parse_ipv4(good[:10] + b"\x00\x00" + good[12:]) is None  # bad checksum
    bad_total = raw(IP(src="10.0.0.2", dst="10.0.0.1", len=12))
    assert pk.parse_ipv4(bad_total) is None                          # total < header


def test_address_classes():
    assert pk.is_unicast_host(pk.ip_int("10.0.0.1"))
    for bad in ("0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"):
        assert not pk.is_unicast_host(pk.ip_int(bad)), bad
    assert pk.is_multicast_mac(b"\x01\x00\x5e\x00\x00\x01") and pk.is_multicast_mac(pk.BROADCAST_MAC)
    assert not pk.is_multicast_mac(bytes.fromhex("020000000001"))
