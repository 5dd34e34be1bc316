"""Slow path IPv6: echo replies for the switch's own addresses, ICMPv6 errors (time exceeded,
unreachable, packet too big, parameter problem) with pseudo-header checksums, RFC 4443's
suppression rules, the per-namespace rate limit shared with ICMP, spoofed sources;
IPv4's too-big (fragmentation needed with DF, fragments without)."""
import ipaddress

import pytest
from scapy.compat import raw
from scapy.layers.inet import ICMP, IP, UDP, TCP, defragment
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                                ICMPv6PacketTooBig, ICMPv6ParamProblem, ICMPv6TimeExceeded,
                                IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment)
from scapy.layers.l2 import Ether

from pyctl.daemon import packets6 as pk6
from pyctl.daemon.packets import checksum
from pyctl.daemon.icmp_errors import ICMP6_QUOTE_MAX
from pyctl.daemon.slowpath import Punt, SlowPath, SlowPathConfig
from tests.support.slowpath import (ENDPOINT_MAC, PORT_MAC, StaticView, assert_icmp6_checksum,
                                    assert_ip_checksums, ip6_frame, ip_frame, mac_bytes)

V6 = ipaddress.IPv6Address


def only_frame(out):
    assert len(out.frames) == 1, out.frames
    return out.frames[0]


def routed6(dst="fd00:1::5", hlim=64, size=10, port=10, src="fd00::2"):
    return ip6_frame(port, src, dst, UDP(sport=4000, dport=5000) / (b"x" * size), hlim=hlim)


def check_error(frame, port, itype, src, dst, offending):
    pkt = Ether(frame)
    assert pkt.src == PORT_MAC[port] and pkt.dst == ENDPOINT_MAC[port]
    ip = pkt[IPv6]
    assert (ip.src, ip.dst, ip.nh) == (src, dst, 58)
    message = raw(ip.payload)
    assert message[0] == itype
    assert message[8:] == offending[14:14 + ICMP6_QUOTE_MAX]
    assert len(raw(ip)) <= 1280
    assert_icmp6_checksum(frame)
    return pkt


def test_echo_to_the_switchs_address_is_answered(sp):
    frame = ip6_frame(10, "fd00::2", "fd00::1", ICMPv6EchoRequest(id=7, seq=3, data=b"ping"))
    port, reply = only_frame(sp.handle(10, Punt.LOCAL, frame))
    pkt = Ether(reply)
    assert port == 10 and (pkt.src, pkt.dst) == (PORT_MAC[10], ENDPOINT_MAC[10])
    assert (pkt[IPv6].src, pkt[IPv6].dst) == ("fd00::1", "fd00::2")
    echo = pkt[ICMPv6EchoReply]
    assert (echo.id, echo.seq, echo.data) == (7, 3, b"ping")
    assert_icmp6_checksum(reply)


def test_echo_to_the_ports_link_local_address_from_a_link_local_one(sp):
    ll = str(pk6.link_local_of(mac_bytes(PORT_MAC[11])))
    frame = ip6_frame(11, "fe80::3", ll, ICMPv6EchoRequest(id=1, seq=1))
    pkt = Ether(only_frame(sp.handle(11, Punt.LOCAL, frame))[1])
    assert (pkt[IPv6].src, pkt[IPv6].dst) == (ll, "fe80::3") and pkt.haslayer(ICMPv6EchoReply)


@pytest.mark.parametrize("l4", [UDP(sport=1, dport=53), TCP(sport=1, dport=80)])
def test_udp_and_tcp_to_the_switch_are_port_unreachable(sp, l4):
    frame = ip6_frame(10, "fd00::2", "fd00::1", l4 / b"hello")
    pkt = check_error(only_frame(sp.handle(10, Punt.LOCAL, frame))[1], 10, 1, "fd00::1",
                      "fd00::2", frame)
    assert pkt[ICMPv6DestUnreach].code == 4


@pytest.mark.parametrize("layers, pointer", [
    (lambda: b"\x00" * 8, 6),                                    # next header 59 named ... no
    (lambda: IPv6ExtHdrDestOpt(nh=253) / (b"\x00" * 8), 40),
])
def test_an_unknown_upper_layer_is_a_parameter_problem(sp, layers, pointer):
    if pointer == 6:
        frame = ip6_frame(10, "fd00::2", "fd00::1", b"\x00" * 8)
        frame = frame[:20] + bytes([253]) + frame[21:]           # next header 253, unknown
    else:
        frame = ip6_frame(10, "fd00::2", "fd00::1", layers())
    pkt = check_error(only_frame(sp.handle(10, Punt.LOCAL, frame))[1], 10, 4, "fd00::1",
                      "fd00::2", frame)
    assert (pkt[ICMPv6ParamProblem].code, pkt[ICMPv6ParamProblem].ptr) == (1, pointer)


def test_no_next_header_and_fragments_to_the_switch_are_dropped(sp):
    frame = ip6_frame(10, "fd00::2", "fd00::1", b"")            # next header 59
    assert sp.handle(10, Punt.LOCAL, frame) == ([], [])
    frag = ip6_frame(10, "fd00::2", "fd00::1", IPv6ExtHdrFragment(m=1) / ICMPv6EchoRequest())
    assert sp.handle(10, Punt.LOCAL, frag) == ([], [])
    assert sp.counters["drop_local_no_next_header"] == 1
    assert sp.counters["drop_local_fragment"] == 1


def test_local_to_an_address_not_the_switchs_is_dropped(sp):
    frame = ip6_frame(10, "fd00::2", "fd00::3", ICMPv6EchoRequest())
    assert sp.handle(10, Punt.LOCAL, frame) == ([], []) and sp.counters["drop_not_local"] == 1


def test_hop_limit_expired_is_time_exceeded_from_the_switch(sp):
    frame = routed6(hlim=1, size=2000)
    pkt = check_error(only_frame(sp.handle(10, Punt.TTL_EXCEEDED, frame))[1], 10, 3, "fd00::1",
                      "fd00::2", frame)
    assert pkt[ICMPv6TimeExceeded].code == 0
    assert sp.counters["icmp6_sent_3_0"] == 1


def test_no_route_is_destination_unreachable(sp):
    frame = routed6(dst="2001:db8::1")
    pkt = check_error(only_frame(sp.handle(10, Punt.NO_ROUTE, frame))[1], 10, 1, "fd00::1",
                      "fd00::2", frame)
    assert pkt[ICMPv6DestUnreach].code == 0


def test_without_an_address_facing_the_sender_errors_come_from_the_link_local(sp):
    sp.view.icmp_sources6.pop(10)
    frame = routed6(dst="2001:db8::1")
    ll = str(pk6.link_local_of(mac_bytes(PORT_MAC[10])))
    check_error(only_frame(sp.handle(10, Punt.NO_ROUTE, frame))[1], 10, 1, ll, "fd00::2", frame)


def test_too_big_is_packet_too_big_with_the_egress_mtu(sp):
    sp.view.mtus[12] = 1280
    frame = routed6(size=1400)
    pkt = check_error(only_frame(sp.handle(10, Punt.TOO_BIG, frame))[1], 10, 2, "fd00::1",
                      "fd00::2", frame)
    assert pkt[ICMPv6PacketTooBig].mtu == 1280
    assert sp.counters["too_big_ipv6"] == 1
    assert sp.counters.dropped_by(2) == {"too_big_ipv6": 1}          # the sender's


def test_too_big_to_a_group_still_gets_packet_too_big(sp):
    sp.view.mtus[12] = 1280
    sp.view.routes[1].append((ipaddress.ip_network("ff0e::/16"), 12, None))
    frame = ip6_frame(10, "fd00::2", "ff0e::1", UDP() / (b"x" * 1400),
                      eth_dst="33:33:00:00:00:01")
    pkt = Ether(only_frame(sp.handle(10, Punt.TOO_BIG, frame))[1])
    assert pkt[ICMPv6PacketTooBig].mtu == 1280


def test_a_frame_that_fits_now_goes_on(sp):
    sp.handle(12, Punt.ND, _router_na())
    out = sp.handle(10, Punt.TOO_BIG, routed6(size=100))
    pkt = Ether(only_frame(out)[1])
    assert pkt.dst == ENDPOINT_MAC[12] and pkt[IPv6].hlim == 63


def _router_na():
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr
    return ip6_frame(12, "fd00::fe", "ff02::1", ICMPv6ND_NA(tgt="fd00::fe", O=1)
                     / ICMPv6NDOptDstLLAddr(lladdr=ENDPOINT_MAC[12]), hlim=255,
                     eth_dst="33:33:00:00:00:01")


@pytest.mark.parametrize("frame, counter", [
    (ip6_frame(10, "fd00::2", "fd00:1::5", ICMPv6DestUnreach() / (b"x" * 48)),
     "icmp_suppressed_about_error"),
    (ip6_frame(10, "fd00::2", "ff0e::1", UDP(), eth_dst="33:33:00:00:00:01"),
     "icmp_suppressed_l2_multicast"),
    (ip6_frame(10, "fd00::2", "ff0e::1", UDP()), "icmp_suppressed_ip_multicast"),
    (ip6_frame(10, "::", "fd00:1::5", UDP()), "icmp_suppressed_bad_source"),
    (ip6_frame(10, "fd00::2", "fd00:1::5", IPv6ExtHdrFragment(offset=5) / (b"x" * 16)),
     "icmp_suppressed_fragment"),
])
def test_rfc_4443_forbids_some_errors(sp, frame, counter):
    assert sp.handle(10, Punt.TTL_EXCEEDED, frame).frames == []
    assert sp.counters[counter] == 1


def test_the_rate_limit_is_per_namespace_and_shared_with_icmp(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(icmp_rate=1, icmp_burst=3), clock=clock)
    v4 = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(), ttl=1)
    assert len(sp.handle(10, Punt.TTL_EXCEEDED, v4).frames) == 1
    sent = [len(sp.handle(10, Punt.TTL_EXCEEDED, routed6(hlim=1)).frames) for _ in range(4)]
    assert sent == [1, 1, 0, 0] and sp.counters["icmp_rate_limited"] == 2
    assert len(sp.handle(11, Punt.TTL_EXCEEDED, routed6(hlim=1, port=11, src="fd00::3")).frames) == 1
    assert sp.counters.dropped_by(2) == {"icmp_rate_limited": 2} and sp.counters.dropped_by(3) == {}
    clock.now += 1.0
    assert len(sp.handle(10, Punt.TTL_EXCEEDED, routed6(hlim=1)).frames) == 1


@pytest.mark.parametrize("src, reason, counter", [
    ("fd00::3", Punt.TTL_EXCEEDED, "drop_spoofed_source"),
    ("fd00::1", Punt.NO_ROUTE, "drop_spoofed_source"),
    ("ff02::1", Punt.NO_ROUTE, "drop_spoofed_source"),
    ("fe80::2", Punt.NO_ROUTE, "drop_link_local_source"),
    ("fe80::2", Punt.LOCAL, "drop_link_local_source"),          # not to the link's own address
])
def test_sources_the_port_may_not_use_are_dropped(sp, src, reason, counter):
    frame = ip6_frame(10, src, "fd00::1" if reason == Punt.LOCAL else "fd00:1::5", UDP())
    assert sp.handle(10, reason, frame) == ([], []) and sp.counters[counter] == 1
    assert sp.counters.dropped_by(2) == {counter: 1}


def test_truncated_ipv6_is_malformed(sp):
    frame = routed6()
    for cut in (14 + 39, 14 + 45):
        assert sp.handle(10, Punt.NO_ROUTE, frame[:cut]) == ([], [])
    assert sp.counters["drop_malformed"] == 2


# -- IPv4 too big ------------------------------------------------------------------------

def _router_arp(sp):
    from tests.support.slowpath import arp_frame
    sp.handle(12, Punt.ARP, arp_frame(12, 2, "10.0.0.254", "10.0.0.1", hwdst=PORT_MAC[12],
                                      eth_dst=PORT_MAC[12]))


def test_ipv4_too_big_with_df_is_fragmentation_needed_with_the_mtu(sp):
    sp.view.mtus[12] = 1400
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP() / (b"x" * 1500), flags="DF")
    pkt = Ether(only_frame(sp.handle(10, Punt.TOO_BIG, frame))[1])
    icmp = pkt[ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 1400)
    assert pkt[IP].src == "10.0.0.1" and pkt[IP].dst == "10.0.0.2"
    assert_ip_checksums(raw(pkt))
    assert sp.counters["too_big_df"] == 1


def test_fragmentation_needed_is_rate_limited_per_namespace_with_the_other_errors(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(icmp_rate=100.0, icmp_burst=10), clock=clock)
    sp.view.mtus[12] = 1280
    big = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP() / (b"x" * 1400), flags="DF")
    expired = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(), ttl=1)
    assert len(sp.handle(10, Punt.TTL_EXCEEDED, expired).frames) == 1       # one token used
    sent = [Ether(f)[ICMP] for _ in range(20) for _, f in sp.handle(10, Punt.TOO_BIG, big).frames]
    assert len(sent) == 9 and all((i.type, i.code, i.nexthopmtu) == (3, 4, 1280) for i in sent)
    assert sp.counters["too_big_df"] == 20 and sp.counters["icmp_rate_limited"] == 11
    other = ip_frame(11, "10.0.0.3", "10.1.2.3", UDP() / (b"x" * 1400), flags="DF")
    assert len(sp.handle(11, Punt.TOO_BIG, other).frames) == 1               # its own bucket
    clock.now += 0.1                                                         # 10 tokens back
    assert sum(len(sp.handle(10, Punt.TOO_BIG, big).frames) for _ in range(12)) == 10


def test_ipv4_too_big_without_df_is_fragmented_and_forwarded(sp):
    sp.view.mtus[12] = 576
    _router_arp(sp)
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(sport=1, dport=2) / (b"y" * 1400), ttl=9)
    out = sp.handle(10, Punt.TOO_BIG, frame)
    pieces = [Ether(f) for p, f in out.frames]
    assert {p for p, _ in out.frames} == {12} and len(pieces) == 3
    for piece in pieces:
        assert len(raw(piece[IP])) <= 576 and piece[IP].ttl == 8
        assert piece.dst == ENDPOINT_MAC[12]
        assert checksum(raw(piece[IP])[:piece[IP].ihl * 4]) == 0    # the header's own
    whole = defragment([p[IP] for p in pieces])[0]
    assert raw(whole[UDP]) == raw(Ether(frame)[UDP])
    assert sp.counters["too_big_fragmented"] == 1


def test_ipv4_too_big_waits_for_the_next_hop_like_any_routed_frame(sp):
    sp.view.mtus[12] = 576
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP() / (b"z" * 1000))
    out = sp.handle(10, Punt.TOO_BIG, frame)
    assert len(out.frames) == 1 and Ether(out.frames[0][1]).type == 0x0806   # one ARP request
    assert sp.pending_neighbours == 1 and sp.counters["frame_queued"] == 2


def test_the_smallest_mtu_still_carries_eight_bytes_a_fragment(sp):
    sp.view.mtus[12] = 68                    # RFC 791's minimum: a 60-byte header and 8 bytes
    _router_arp(sp)
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP() / (b"z" * 24),
                     options=[b"\x82\x04\x00\x00"] * 10)
    pieces = [Ether(f)[IP] for _, f in sp.handle(10, Punt.TOO_BIG, frame).frames]
    assert len(pieces) == 4 and all(p.ihl == 15 and len(raw(p)) == 68 for p in pieces)
    assert raw(defragment(pieces)[0][UDP]) == raw(Ether(frame)[UDP])


def test_fragmenting_below_header_and_eight_bytes_is_refused():
    from pyctl.daemon.packets import fragment_ipv4, parse_ipv4
    ip = parse_ipv4(raw(IP(src="10.0.0.2", dst="10.1.2.3") / UDP() / (b"z" * 100)))
    assert fragment_ipv4(ip, 27) is None and len(fragment_ipv4(ip, 28)) == 14
