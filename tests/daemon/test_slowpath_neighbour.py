"""Slow path neighbour resolution: ARP requests, bounded queues, release, timeout; fuzzing."""
import pytest
from hypothesis import given, settings, strategies as st
from scapy.compat import raw
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

from pyctl.daemon.packets import ip_int
from pyctl.daemon.slowpath import NeighbourLearned, PeerMac, Punt, SlowPath, SlowPathConfig
from tests.support.slowpath import (ENDPOINT_MAC, PORT_MAC, SWITCH_IP, FakeClock, StaticView,
                               arp_frame, assert_ip_checksums, check_every_truncation,
                               ip_frame, mac_bytes, sent_frames)

ROUTER_MAC = ENDPOINT_MAC[12]


def routed(seq, ttl=64, dst="10.1.2.3"):
    return ip_frame(10, "10.0.0.2", dst, UDP(sport=4000, dport=5000) / f"frame{seq}".encode(), ttl=ttl)


def router_reply():
    return arp_frame(12, 2, "10.0.0.254", SWITCH_IP, hwdst=PORT_MAC[12], eth_dst=PORT_MAC[12])


def check_arp_request(port, frame, target, sender=SWITCH_IP):
    assert port == 12
    pkt = Ether(frame)
    assert pkt.dst == "ff:ff:ff:ff:ff:ff" and pkt.src == PORT_MAC[12] and pkt.type == 0x0806
    arp = pkt[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)
    assert arp.hwsrc == PORT_MAC[12] and arp.psrc == sender
    assert arp.hwdst == "00:00:00:00:00:00" and arp.pdst == target


def test_unknown_next_hop_is_resolved_and_frames_released(sp):
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    assert len(out.frames) == 1
    check_arp_request(*out.frames[0], target="10.0.0.254")
    assert sp.pending_neighbours == 1
    assert sp.handle(10, Punt.NO_NEIGHBOUR, routed(1)) == ([], [])   # one request is enough
    out = sp.handle(12, Punt.ARP, router_reply())
    assert out.learned == [NeighbourLearned(1, ip_int("10.0.0.254"), mac_bytes(ROUTER_MAC), 12)]
    for seq, (pkt, frame) in enumerate(sent_frames(out, 12, ROUTER_MAC, 2)):
        assert pkt[IP].ttl == 63 and pkt[IP].src == "10.0.0.2" and pkt[IP].dst == "10.1.2.3"
        assert bytes(pkt[UDP].payload) == f"frame{seq}".encode()
        assert_ip_checksums(frame)
        assert raw(pkt[IP])[12:] == routed(seq)[14 + 12:]         # all but TTL/checksum unchanged
    assert sp.pending_neighbours == 0
    assert sp.counters["neighbour_resolved"] == 1 and sp.counters["frame_forwarded"] == 2


def test_directly_attached_destination_is_resolved_itself(sp):
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0, dst="10.0.0.77"))
    check_arp_request(*out.frames[0], target="10.0.0.77")


def test_known_neighbour_forwards_at_once(sp):
    sp.handle(12, Punt.ARP, router_reply())
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    assert len(out.frames) == 1 and Ether(out.frames[0][1]).dst == ROUTER_MAC


def test_queue_keeps_the_newest_frames(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(pending_frames_per_neighbour=4), clock=clock)
    for seq in range(6):
        sp.handle(10, Punt.NO_NEIGHBOUR, routed(seq))
    assert sp.counters["drop_pending_overflow"] == 2
    out = sp.handle(12, Punt.ARP, router_reply())
    got = [bytes(Ether(f)[UDP].payload) for _, f in out.frames]
    assert got == [f"frame{s}".encode() for s in range(2, 6)]


def test_default_queue_holds_a_burst_like_linux(sp):
    for seq in range(50):                       # Linux queues 101 per neighbour (unres_qlen)
        sp.handle(10, Punt.NO_NEIGHBOUR, routed(seq))
    out = sp.handle(12, Punt.ARP, router_reply())
    assert len(out.frames) == 50 and sp.counters["drop_pending_overflow"] == 0


def test_waiting_bytes_are_bounded_and_accounted(clock):
    size = len(routed(0))
    sp = SlowPath(StaticView(), SlowPathConfig(pending_frames_per_neighbour=3,
                                               max_pending_bytes=4 * size), clock=clock)
    for seq in range(3):
        sp.handle(10, Punt.NO_NEIGHBOUR, routed(seq, dst="10.0.0.10"))
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(3, dst="10.0.0.10"))       # pushes out the oldest
    assert sp.pending_bytes == 3 * size and sp.counters["drop_pending_overflow"] == 1
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(4, dst="10.0.0.11"))
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(5, dst="10.0.0.11"))       # over the byte bound
    assert sp.pending_bytes == 4 * size and sp.counters["drop_pending_bytes"] == 1
    sp.forget_port(12)
    assert sp.pending_bytes == 0 and sp.pending_neighbours == 0


def test_pending_neighbours_are_bounded(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(max_pending_neighbours=2), clock=clock)
    for host in (10, 11, 12):
        sp.handle(10, Punt.NO_NEIGHBOUR, routed(0, dst=f"10.0.0.{host}"))
    assert sp.pending_neighbours == 2 and sp.counters["drop_pending_full"] == 1


def test_retries_then_host_unreachable(sp, clock):
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(1))
    assert sp.tick() == ([], [])                     # not due yet
    for _ in range(2):                               # requests 2 and 3
        clock.now += 1.0
        out = sp.tick()
        assert len(out.frames) == 1
        check_arp_request(*out.frames[0], target="10.0.0.254")
    clock.now += 1.0
    out = sp.tick()                                  # gives up
    assert sp.pending_neighbours == 0
    assert sp.counters["arp_request_sent"] == 3 and sp.counters["drop_neighbour_timeout"] == 2
    for seq, (pkt, frame) in enumerate(sent_frames(out, 10, ENDPOINT_MAC[10], 2)):
        assert pkt[IP].src == SWITCH_IP and pkt[IP].dst == "10.0.0.2"
        assert (pkt[ICMP].type, pkt[ICMP].code) == (3, 1)
        assert raw(pkt[ICMP])[8:] == routed(seq)[14:]
        assert_ip_checksums(frame)
    # A late reply now only teaches the neighbour.
    assert sp.handle(12, Punt.ARP, router_reply()).frames == []


def test_probe_from_zero_without_switch_address(sp):
    sp.view.icmp_sources.pop(12)
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    check_arp_request(*out.frames[0], target="10.0.0.254", sender="0.0.0.0")


def test_reply_on_another_port_does_not_release(sp):
    sp.view.ports[13] = 1                            # a second uplink of the L2
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))      # the route says: out of port 12
    out = sp.handle(13, Punt.ARP, arp_frame(13, 2, "10.0.0.254", SWITCH_IP, hwdst=PORT_MAC[13]))
    assert out.frames == [] and sp.pending_neighbours == 1
    assert sp.neighbour(1, ip_int("10.0.0.254")) == (mac_bytes(ENDPOINT_MAC[13]), 13)
    assert len(sp.handle(12, Punt.ARP, router_reply()).frames) == 1


def test_spoofed_reply_does_not_release(sp):
    sp.view.routes[1][1] = (sp.view.routes[1][1][0], 12, "10.0.0.3")   # via tenant 3's address
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    out = sp.handle(12, Punt.ARP, arp_frame(12, 2, "10.0.0.3", SWITCH_IP, hwdst=PORT_MAC[12]))
    assert out == ([], []) and sp.pending_neighbours == 1


def test_released_frame_with_ttl_1_gets_time_exceeded(sp):
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0, ttl=1))
    out = sp.handle(12, Punt.ARP, router_reply())
    assert len(out.frames) == 1
    port, frame = out.frames[0]
    assert port == 10 and (Ether(frame)[ICMP].type, Ether(frame)[ICMP].code) == (11, 0)


def test_no_route_any_more_gets_net_unreachable(sp):
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0, dst="172.16.1.1"))
    assert len(out.frames) == 1 and Ether(out.frames[0][1])[ICMP].code == 0


def test_forget_port_drops_its_neighbours_and_queues(sp):
    sp.handle(12, Punt.ARP, arp_frame(12, 1, "10.0.0.99", SWITCH_IP))
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    sp.forget_port(12)
    assert sp.neighbour(1, ip_int("10.0.0.99")) is None
    assert sp.pending_neighbours == 0 and sp.counters["drop_port_gone"] == 1


def test_neighbour_cache_is_bounded(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(max_neighbours=2), clock=clock)
    for host in (50, 51, 52):
        sp.handle(12, Punt.ARP, arp_frame(12, 1, f"10.0.0.{host}", SWITCH_IP))
    assert sp.neighbour(1, ip_int("10.0.0.50")) is None
    assert sp.neighbour(1, ip_int("10.0.0.52")) is not None
    assert sp.counters["neighbour_evicted"] == 1


# -- malformed input never raises; every frame counts somewhere ---------------------------

def _valid_frames():
    return [arp_frame(10, 1, "10.0.0.2", "10.0.0.3"), router_reply(),
            ip_frame(10, "10.0.0.2", SWITCH_IP, ICMP(type=8) / b"ping"),
            ip_frame(10, "10.0.0.2", SWITCH_IP, UDP(dport=7)), routed(0, ttl=1), routed(1)]


@pytest.mark.parametrize("reason", list(Punt) + [0, 99])
def test_every_truncation_is_handled(reason):
    check_every_truncation(_valid_frames(), reason, 14 + 20)


@settings(max_examples=300, deadline=None)
@given(port=st.sampled_from([10, 11, 12, 20, 99]), reason=st.integers(0, 7),
       frame=st.one_of(st.binary(max_size=200),
                       st.sampled_from(_valid_frames()).flatmap(
                           lambda f: st.tuples(st.integers(0, len(f) - 1), st.integers(0, 255)).map(
                               lambda c: f[:c[0]] + bytes([c[1]]) + f[c[0] + 1:]))))
def test_random_and_corrupted_frames_never_raise(port, reason, frame):
    sp = SlowPath(StaticView(), clock=FakeClock())
    out = sp.handle(port, reason, frame)
    assert sum(sp.counters.values()) >= 1
    for egress, data in out.frames:
        assert egress in (10, 11, 12, 20)
        assert len(data) >= 42
    sp.tick()


def test_unknown_tenant_mac_is_resolved_on_its_port(sp):
    frame = ip_frame(12, "10.1.9.9", "10.0.0.3", UDP(sport=1, dport=2) / b"in")
    out = sp.handle(12, Punt.PEER_UNKNOWN, frame)
    port, req = out.frames[0]
    arp = Ether(req)[ARP]
    assert port == 11 and Ether(req).src == PORT_MAC[11]
    assert (arp.op, arp.psrc, arp.pdst) == (1, SWITCH_IP, "10.0.0.3")
    out = sp.handle(11, Punt.ARP, arp_frame(11, 2, "10.0.0.3", SWITCH_IP, hwdst=PORT_MAC[11],
                                            eth_dst=PORT_MAC[11]))
    assert PeerMac(11, mac_bytes(ENDPOINT_MAC[11])) in out.learned
    (port, fwd), = out.frames
    pkt = Ether(fwd)
    assert port == 11 and pkt.dst == ENDPOINT_MAC[11] and pkt.src == PORT_MAC[11]
    assert pkt[IP].ttl == 63 and bytes(pkt[UDP].payload) == b"in"



def test_arp_requests_are_rate_limited_and_counted(clock):
    sp = SlowPath(StaticView(), SlowPathConfig(arp_rate=0.01, arp_burst=1), clock=clock)
    first = sp.handle(10, Punt.NO_NEIGHBOUR, routed(1))
    assert [f[12:14] for _, f in first.frames] == [b"\x08\x06"]      # the first request goes out
    for _ in range(2):                                                 # the retries find no token
        clock.now += sp.config.arp_retry_interval + 0.01
        assert [f for _, f in sp.tick().frames if f[12:14] == b"\x08\x06"] == []
    assert sp.counters["arp_request_rate_limited"] == 2
    assert sp.counters["arp_request_sent"] == 1
