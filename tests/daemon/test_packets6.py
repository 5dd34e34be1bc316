"""The slow path's IPv6 wire formats against scapy: derived addresses, the ICMPv6
pseudo-header checksum, the bounded extension-header walk, ND options; and IPv4
fragmentation (properties over random sizes and MTUs)."""
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st
from scapy.compat import raw
from scapy.layers.inet import IP, UDP, defragment
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                RouterAlert)

from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6

V6 = ipaddress.IPv6Address


def test_derived_addresses():
    assert pk6.link_local_of(bytes.fromhex("525400123456")) == V6("fe80::5054:ff:fe12:3456")
    assert pk6.link_local_of(bytes.fromhex("020000000001")) == V6("fe80::ff:fe00:1")
    assert pk6.solicited_node(V6("fd00::1:2345:6789")) == V6("ff02::1:ff45:6789")
    assert pk6.group_mac(V6("ff02::1:ff45:6789")) == bytes.fromhex("3333ff456789")
    assert pk6.group_mac(pk6.ALL_NODES) == bytes.fromhex("333300000001")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), src=st.integers(0, 2**128 - 1), dst=st.integers(0, 2**128 - 1))
def test_icmp6_checksum_is_scapys(data, src, dst):
    src, dst = V6(src), V6(dst)
    ours = pk6.build_icmp6(src, dst, 128, 0, bytes(4) + data)
    theirs = raw(IPv6(src=str(src), dst=str(dst)) / ICMPv6EchoRequest(id=0, seq=0, data=data))[40:]
    assert ours == theirs
    assert pk6.icmp6_checksum(src, dst, ours) == 0


EXTENSIONS = [lambda: IPv6ExtHdrDestOpt(), lambda: IPv6ExtHdrRouting(),
              lambda: IPv6ExtHdrFragment(offset=0, m=0), lambda: IPv6ExtHdrDestOpt(options=[])]


@settings(max_examples=200, deadline=None)
@given(chain=st.lists(st.integers(0, len(EXTENSIONS) - 1), max_size=10),
       hop_by_hop=st.booleans())
def test_the_extension_walk_finds_the_upper_layer_or_refuses_a_long_chain(chain, hop_by_hop):
    pkt = IPv6(src="fd00::2", dst="fd00::3")
    headers = [IPv6ExtHdrHopByHop(options=[RouterAlert()])] if hop_by_hop else []
    headers += [EXTENSIONS[i]() for i in chain]
    for header in headers:
        pkt = pkt / header
    frags = sum(1 for i in chain if i == 2)
    data = raw(pkt / UDP(sport=1, dport=2) / b"payload")
    ip = pk6.parse_ipv6(data)
    if len(headers) > pk6.MAX_EXTENSION_HEADERS or frags > 1:
        assert ip is None
        return
    assert ip is not None and ip.upper == 17 and ip.router_alert == hop_by_hop
    assert ip.upper_data[8:] == b"payload"
    assert ip.datagram[ip.upper_field] == 17          # the field that names the upper layer


def test_bad_chains_and_headers_are_refused():
    good = raw(IPv6(src="fd00::2", dst="fd00::3") / IPv6ExtHdrDestOpt() / UDP())
    assert pk6.parse_ipv6(good) is not None
    assert pk6.parse_ipv6(good[:44]) is None                       # the option header cut
    late_hbh = raw(IPv6(src="fd00::2", dst="fd00::3") / IPv6ExtHdrDestOpt()
                   / IPv6ExtHdrHopByHop() / UDP())
    assert pk6.parse_ipv6(late_hbh) is None                        # hop-by-hop only first
    bad_option = bytearray(raw(IPv6(src="fd00::2", dst="fd00::3")
                               / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / UDP()))
    bad_option[43] = 200                                          # an option running past its header
    assert pk6.parse_ipv6(bytes(bad_option)) is None
    v4 = raw(IP(src="10.0.0.1", dst="10.0.0.2") / UDP())
    assert pk6.parse_ipv6(v4 + bytes(40)) is None                  # version 4
    lying = bytearray(good)
    lying[4:6] = (len(good)).to_bytes(2, "big")                    # a payload length past the end
    assert pk6.parse_ipv6(bytes(lying)) is None
    padded = pk6.parse_ipv6(good + bytes(20))                      # Ethernet padding: cut off
    assert padded is not None and len(padded.datagram) == len(good)


@pytest.mark.parametrize("options, ok", [
    (b"", True),
    (bytes([1, 1]) + bytes(6), True),
    (bytes([1, 0]) + bytes(6), False),                # a zero length
    (bytes([1, 2]) + bytes(6), False),                # past the end
    (bytes([1, 2]) + bytes(14), False),               # a link-layer option that is not 8 bytes
    (bytes([5, 1, 0, 0]) + (1280).to_bytes(4, "big"), True),
    (bytes([99, 1]) + bytes(6), True),                # unknown options are skipped
    (bytes([3, 4, 129]) + bytes(29), False),          # a prefix longer than 128
])
def test_nd_options(options, ok):
    assert (pk6.parse_nd_options(options) is not None) == ok
    assert pk6.parse_nd_options(bytes([5, 1, 0, 0]) + (1280).to_bytes(4, "big")).mtu == 1280


@settings(max_examples=150, deadline=None)
@given(size=st.integers(0, 4000), mtu=st.integers(68, 2000), df_free=st.booleans(),
       options=st.integers(0, 10))
def test_ipv4_fragments_fit_the_mtu_and_reassemble(size, mtu, df_free, options):
    pkt = IP(src="10.0.0.2", dst="10.1.2.3", id=77,
             options=[b"\x82\x04\x00\x00"] * (options // 2) + [b"\x07\x07\x04" + bytes(4)] * (options % 2)
             ) / UDP(sport=1, dport=2) / (b"q" * size)
    ip = pk.parse_ipv4(raw(pkt))
    if ip is None:
        return                                        # an options list scapy cannot fit
    fragments = pk.fragment_ipv4(ip, mtu)
    assert fragments is not None
    for fragment in fragments:
        assert len(fragment) <= mtu
        assert pk.checksum(fragment[:(fragment[0] & 0xF) * 4]) == 0
    whole = defragment([IP(f) for f in fragments])[0] if len(fragments) > 1 else IP(fragments[0])
    assert raw(whole[UDP]) == raw(pkt[UDP])
