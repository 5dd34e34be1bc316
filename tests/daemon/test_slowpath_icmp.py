"""Slow path ICMP: echo to the switch's addresses, errors (RFC 1812 rules), rate limiting."""
import pytest
from scapy.compat import raw
from scapy.layers.inet import GRE, ICMP, IP, IPerror, TCP, UDP, UDPerror
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pyctl.errors import InvalidArgument
from pyctl.daemon.slowpath import Punt, SlowPath, SlowPathConfig, TokenBucket
from pyctl.daemon.packets import ip_int
from tests.support.slowpath import (ENDPOINT_MAC, PORT_MAC, SWITCH_IP, StaticView,
                               assert_ip_checksums, ip_frame)


def only_frame(out):
    assert len(out.frames) == 1, out
    return out.frames[0]


def check_reply_envelope(port, frame, to_port, to_ip):
    assert port == to_port
    pkt = Ether(frame)
    assert pkt.dst == ENDPOINT_MAC[to_port] and pkt.src == PORT_MAC[to_port] and pkt.type == 0x0800
    ip = pkt[IP]
    assert (ip.version, ip.ihl, ip.ttl, ip.proto, ip.frag, ip.flags) == (4, 5, 64, 1, 0, 0)
    assert ip.dst == to_ip and ip.len == len(frame) - 14
    assert_ip_checksums(frame)
    return pkt


# -- echo -------------------------------------------------------------------------------

def test_echo_to_switch_address_is_answered(sp):
    data = bytes(range(56))
    frame = ip_frame(10, "10.0.0.2", SWITCH_IP, ICMP(type=8, id=0x1234, seq=7) / Raw(data))
    pkt = check_reply_envelope(*only_frame(sp.handle(10, Punt.LOCAL, frame)), 10, "10.0.0.2")
    assert pkt[IP].src == SWITCH_IP
    icmp = pkt[ICMP]
    assert (icmp.type, icmp.code, icmp.id, icmp.seq) == (0, 0, 0x1234, 7)
    assert bytes(icmp.payload) == data
    assert sp.counters["echo_reply_sent"] == 1


def test_echo_with_ip_options_and_padding_is_answered(sp):
    frame = ip_frame(10, "10.0.0.2", SWITCH_IP, ICMP(type=8, id=1, seq=1) / b"xy",
                     options=b"\x01\x01\x01\x00") + bytes(10)
    pkt = check_reply_envelope(*only_frame(sp.handle(10, Punt.LOCAL, frame)), 10, "10.0.0.2")
    assert bytes(pkt[ICMP].payload) == b"xy"


def test_echo_with_bad_icmp_checksum_is_dropped(sp):
    frame = ip_frame(10, "10.0.0.2", SWITCH_IP, ICMP(type=8, id=1, seq=1, chksum=0xBEEF))
    assert sp.handle(10, Punt.LOCAL, frame) == ([], [])
    assert sp.counters["drop_malformed_icmp"] == 1


def test_local_reason_for_a_tenant_address_is_dropped(sp):
    frame = ip_frame(10, "10.0.0.2", "10.0.0.3", ICMP(type=8))
    assert sp.handle(10, Punt.LOCAL, frame) == ([], [])
    assert sp.counters["drop_not_local"] == 1


@pytest.mark.parametrize("l4", [ICMP(type=0), ICMP(type=13), ICMP(type=3, code=3)])
def test_other_icmp_to_switch_is_dropped(sp, l4):
    assert sp.handle(10, Punt.LOCAL, ip_frame(10, "10.0.0.2", SWITCH_IP, l4)) == ([], [])
    assert sp.counters["drop_local_icmp"] == 1


def test_fragment_to_switch_is_dropped(sp):
    frame = ip_frame(10, "10.0.0.2", SWITCH_IP, ICMP(type=8) / bytes(16), flags="MF")
    assert sp.handle(10, Punt.LOCAL, frame) == ([], [])
    assert sp.counters["drop_local_fragment"] == 1


@pytest.mark.parametrize("l4,code", [(UDP(sport=5000, dport=53) / b"q", 3),
                                     (TCP(sport=40000, dport=22, flags="S"), 3),
                                     (GRE(), 2)])
def test_other_traffic_to_switch_gets_unreachable(sp, l4, code):
    frame = ip_frame(10, "10.0.0.2", SWITCH_IP, l4)
    pkt = check_reply_envelope(*only_frame(sp.handle(10, Punt.LOCAL, frame)), 10, "10.0.0.2")
    assert pkt[IP].src == SWITCH_IP
    assert (pkt[ICMP].type, pkt[ICMP].code) == (3, code)
    assert raw(pkt[ICMP])[4:8] == bytes(4)              # "unused"
    assert raw(pkt[ICMP])[8:] == frame[14:]


def test_unreachable_from_another_switch_address_comes_from_it(sp):
    other = "10.0.0.9"
    sp.view.addresses[(sp.view.port_scope(10), ip_int(other))] = sp.view.port_scope(10)
    frame = ip_frame(10, "10.0.0.2", other, UDP(sport=5000, dport=53) / b"q")
    pkt = check_reply_envelope(*only_frame(sp.handle(10, Punt.LOCAL, frame)), 10, "10.0.0.2")
    assert pkt[IP].src == other and (pkt[ICMP].type, pkt[ICMP].code) == (3, 3)


# -- errors -----------------------------------------------------------------------------

def test_ttl_exceeded_quotes_the_datagram(sp):
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(sport=33434, dport=33435) / b"trace", ttl=1)
    pkt = check_reply_envelope(*only_frame(sp.handle(10, Punt.TTL_EXCEEDED, frame)), 10, "10.0.0.2")
    assert pkt[IP].src == SWITCH_IP
    assert (pkt[ICMP].type, pkt[ICMP].code) == (11, 0)
    quote = pkt[IPerror]
    assert quote.src == "10.0.0.2" and quote.dst == "10.1.2.3" and quote.ttl == 1
    assert quote[UDPerror].dport == 33435
    assert raw(pkt[ICMP])[8:] == frame[14:]
    assert sp.counters["icmp_sent_11_0"] == 1


def test_error_quote_is_capped_at_576_bytes(sp):
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(sport=1, dport=2) / bytes(1400), ttl=1)
    port, reply = only_frame(sp.handle(10, Punt.TTL_EXCEEDED, frame))
    pkt = check_reply_envelope(port, reply, 10, "10.0.0.2")
    assert pkt[IP].len == 576
    assert raw(pkt[ICMP])[8:] == frame[14:14 + 548]


def test_ethernet_padding_is_not_quoted(sp):
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(sport=1, dport=2), ttl=1)
    padded = frame + b"\xAA" * (60 - len(frame))
    pkt = Ether(only_frame(sp.handle(10, Punt.TTL_EXCEEDED, padded))[1])
    assert raw(pkt[ICMP])[8:] == frame[14:]


def test_no_route_gets_net_unreachable(sp):
    frame = ip_frame(10, "10.0.0.2", "172.16.0.1", TCP(dport=80, flags="S"))
    pkt = check_reply_envelope(*only_frame(sp.handle(10, Punt.NO_ROUTE, frame)), 10, "10.0.0.2")
    assert (pkt[ICMP].type, pkt[ICMP].code) == (3, 0)
    assert raw(pkt[ICMP])[8:] == frame[14:]


def test_error_about_echo_request_is_sent(sp):
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", ICMP(type=8, id=3, seq=4), ttl=1)
    assert len(sp.handle(10, Punt.TTL_EXCEEDED, frame).frames) == 1


@pytest.mark.parametrize("name,frame,counter", [
    ("about an ICMP error",
     ip_frame(10, "10.0.0.2", "10.1.2.3", ICMP(type=3, code=1) / bytes(28), ttl=1),
     "icmp_suppressed_about_error"),
    ("non-first fragment",
     ip_frame(10, "10.0.0.2", "10.1.2.3", bytes(16), ttl=1, proto=17, frag=100),
     "icmp_suppressed_fragment"),
    ("link-level broadcast",
     ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(), ttl=1, eth_dst="ff:ff:ff:ff:ff:ff"),
     "icmp_suppressed_l2_multicast"),
    ("IP multicast",
     ip_frame(10, "10.0.0.2", "239.1.1.1", UDP(), ttl=1), "icmp_suppressed_ip_multicast"),
    ("limited broadcast",
     ip_frame(10, "10.0.0.2", "255.255.255.255", UDP(), ttl=1), "icmp_suppressed_ip_multicast"),
    ("source 0.0.0.0",
     ip_frame(10, "0.0.0.0", "10.1.2.3", UDP(), ttl=1), "icmp_suppressed_bad_source"),
])
def test_rfc1812_suppressions(sp, name, frame, counter):
    assert sp.handle(10, Punt.TTL_EXCEEDED, frame) == ([], []), name
    assert sp.counters[counter] == 1


def test_first_fragment_gets_an_error(sp):
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(sport=1, dport=2) / bytes(64), ttl=1, flags="MF")
    assert len(sp.handle(10, Punt.TTL_EXCEEDED, frame).frames) == 1


def test_no_icmp_source_address_means_no_error(sp):
    sp.view.icmp_sources.pop(10)
    frame = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(), ttl=1)
    assert sp.handle(10, Punt.TTL_EXCEEDED, frame) == ([], [])
    assert sp.counters["icmp_no_source_address"] == 1


def test_an_echo_from_the_unspecified_address_gets_no_reply(sp):
    frame = ip_frame(10, "0.0.0.0", SWITCH_IP, ICMP(type=8))     # the source rule lets it in
    assert sp.handle(10, Punt.LOCAL, frame) == ([], [])
    assert sp.counters["drop_echo_bad_source"] == 1


def test_spoofed_source_gets_no_error(sp):
    frame = ip_frame(10, "10.0.0.3", "10.1.2.3", UDP(), ttl=1)
    assert sp.handle(10, Punt.TTL_EXCEEDED, frame) == ([], [])
    assert sp.counters["drop_spoofed_source"] == 1


# -- rate limiting --------------------------------------------------------------------

def test_token_bucket():
    b = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not b.take(0.05)            # half a token
    assert b.take(0.1)                 # one token after 0.1 s
    assert not b.take(0.1)
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]   # capped at burst
    assert not b.take(50.0)            # a clock going back adds nothing


def test_icmp_errors_are_rate_limited_per_namespace(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(icmp_rate=100.0, icmp_burst=50), clock=clock)
    from_2 = ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(), ttl=1)
    from_3 = ip_frame(11, "10.0.0.3", "10.1.2.3", UDP(), ttl=1)
    sent = sum(len(sp.handle(10, Punt.TTL_EXCEEDED, from_2).frames) for _ in range(80))
    assert sent == 50 and sp.counters["icmp_rate_limited"] == 30
    assert len(sp.handle(11, Punt.TTL_EXCEEDED, from_3).frames) == 1   # its own bucket
    clock.now += 0.1                                                    # 10 tokens back
    sent = sum(len(sp.handle(10, Punt.TTL_EXCEEDED, from_2).frames) for _ in range(20))
    assert sent == 10


def test_echo_replies_are_not_rate_limited(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(icmp_burst=1, icmp_rate=1.0), clock=clock)
    frame = ip_frame(10, "10.0.0.2", SWITCH_IP, ICMP(type=8))
    assert sum(len(sp.handle(10, Punt.LOCAL, frame).frames) for _ in range(10)) == 10


@pytest.mark.parametrize("field,value", [("icmp_rate", 0), ("icmp_burst", 0), ("ttl", 256),
                                         ("pending_frames_per_neighbour", 0),
                                         ("arp_retry_interval", -1.0), ("arp_max_requests", 0)])
def test_bad_config_is_refused(field, value):
    with pytest.raises(InvalidArgument, match=field):
        SlowPathConfig(**{field: value})
