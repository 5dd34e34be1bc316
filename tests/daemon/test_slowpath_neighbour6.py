"""Slow path IPv6 neighbour resolution: solicitations to the solicited-node group, waiting
frames released by the advertisement (hop limit decremented) or dropped with address
unreachable, probes of stale neighbours, tenants' MACs; fuzzing over IPv6 frames."""
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoRequest, ICMPv6MLReport2,
                                ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6NDOptDstLLAddr,
                                ICMPv6NDOptSrcLLAddr, ICMPv6TimeExceeded, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, RouterAlert)
from scapy.layers.l2 import Ether

from pyctl.daemon.slowpath import NeighbourLearned, PeerMac, Punt, SlowPath
from tests.support.slowpath import (ENDPOINT_MAC, PORT_MAC, FakeClock, StaticView,
                                    assert_icmp6_checksum, check_every_truncation, ip6_frame,
                                    mac_bytes, sent_frames)

V6 = ipaddress.IPv6Address
ROUTER_MAC = ENDPOINT_MAC[12]


def routed(seq, hlim=64, dst="fd00:1::5"):
    return ip6_frame(10, "fd00::2", dst, UDP(sport=4000, dport=5000) / f"frame{seq}".encode(),
                     hlim=hlim)


def router_na(port=12, target="fd00::fe", mac=None):
    mac = mac or ENDPOINT_MAC[port]
    return ip6_frame(port, target, "fd00::1", ICMPv6ND_NA(tgt=target, S=1, O=1)
                     / ICMPv6NDOptDstLLAddr(lladdr=mac), hlim=255, eth_dst=PORT_MAC[port],
                     eth_src=mac)


def check_solicitation(port, frame, target, src="fd00::1", eth_dst=None, dst=None):
    pkt = Ether(frame)
    sn = "ff02::1:ff" + f"{int(V6(target)) & 0xFFFFFF:06x}"
    sn = str(V6(sn[:-6] + sn[-6:-4] + ":" + sn[-4:]))
    assert pkt.src == PORT_MAC[port]
    assert pkt.dst == (eth_dst or "33:33:" + ":".join(f"{b:02x}" for b in V6(sn).packed[12:]))
    ip = pkt[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == (src, dst or sn, 255)
    assert pkt[ICMPv6ND_NS].tgt == target
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == PORT_MAC[port]
    assert_icmp6_checksum(frame)


def test_an_unknown_next_hop_is_solicited_and_the_frames_released(sp):
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    (port, frame), = out.frames
    assert port == 12
    check_solicitation(12, frame, "fd00::fe")
    assert sp.handle(10, Punt.NO_NEIGHBOUR, routed(1)) == ([], [])    # one is enough
    out = sp.handle(12, Punt.ND, router_na())
    assert out.learned == [NeighbourLearned(1, V6("fd00::fe"), mac_bytes(ROUTER_MAC), 12)]
    for seq, (pkt, frame) in enumerate(sent_frames(out, 12, ROUTER_MAC, 2)):
        assert pkt[IPv6].hlim == 63 and bytes(pkt[UDP].payload) == f"frame{seq}".encode()
        assert frame[14 + 8:] == routed(seq)[14 + 8:]         # all but the hop limit unchanged
    assert sp.counters["nd_solicit_sent"] == 1 and sp.counters["neighbour_resolved"] == 1


def test_an_on_link_destination_is_solicited_itself(sp):
    (port, frame), = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0, dst="fd00::77")).frames
    check_solicitation(12, frame, "fd00::77")


def test_without_an_address_there_the_solicitation_comes_from_the_link_local(sp):
    sp.view.icmp_sources6.pop(12)
    (port, frame), = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0)).frames
    check_solicitation(12, frame, "fd00::fe", src="fe80::ff:fe00:c")


def test_retries_then_address_unreachable(sp, clock):
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    for _ in range(2):
        clock.now += 1.0
        (port, frame), = [f for f in sp.tick().frames]
        check_solicitation(port, frame, "fd00::fe")
    clock.now += 1.0
    (port, frame), = sp.tick().frames
    pkt = Ether(frame)
    assert port == 10 and pkt.dst == ENDPOINT_MAC[10]
    assert (pkt[IPv6].src, pkt[IPv6].dst) == ("fd00::1", "fd00::2")
    assert (pkt[ICMPv6DestUnreach].type, pkt[ICMPv6DestUnreach].code) == (1, 3)
    assert sp.counters["drop_neighbour_timeout"] == 1 and sp.pending_neighbours == 0


def test_a_released_frame_with_hop_limit_1_gets_time_exceeded(sp):
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0, hlim=1))
    (port, frame), = sp.handle(12, Punt.ND, router_na()).frames
    assert port == 10 and Ether(frame).haslayer(ICMPv6TimeExceeded)


def test_a_stale_neighbour_is_probed_by_unicast(sp, clock):
    sp.handle(12, Punt.ND, router_na())
    clock.now += sp.config.reachable_time + 0.1
    sp.tick()                                          # reachable -> stale
    clock.now += sp.config.arp_retry_interval
    (port, frame), = sp.tick().frames
    check_solicitation(12, frame, "fd00::fe", eth_dst=ROUTER_MAC, dst="fd00::fe")
    assert sp.counters["nd_probe_sent"] == 1


def test_an_unknown_tenant_mac_is_solicited_on_its_port(sp):
    frame = ip6_frame(12, "fd00:1::9", "fd00::3", UDP(sport=1, dport=2) / b"in")
    (port, req), = sp.handle(12, Punt.PEER_UNKNOWN, frame).frames
    check_solicitation(11, req, "fd00::3")
    assert port == 11
    na = ip6_frame(11, "fd00::3", "fd00::1", ICMPv6ND_NA(tgt="fd00::3", S=1, O=1)
                   / ICMPv6NDOptDstLLAddr(lladdr=ENDPOINT_MAC[11]), hlim=255)
    out = sp.handle(11, Punt.ND, na)
    assert PeerMac(11, mac_bytes(ENDPOINT_MAC[11])) in out.learned
    (port, fwd), = out.frames
    pkt = Ether(fwd)
    assert port == 11 and pkt.dst == ENDPOINT_MAC[11] and pkt[IPv6].hlim == 63


def test_both_families_share_the_one_table_and_its_bounds(clock):
    from pyctl.daemon.slowpath import SlowPathConfig
    from tests.support.slowpath import arp_frame
    sp = SlowPath(StaticView(), SlowPathConfig(max_neighbours=2), clock=clock)
    sp.handle(12, Punt.ND, router_na(target="fd00::50", mac="52:54:00:00:01:50"))
    sp.handle(12, Punt.ARP, arp_frame(12, 1, "10.0.0.50", "10.0.0.1"))
    assert sp.neighbour(1, V6("fd00::50")) is not None
    sp.handle(12, Punt.ND, router_na(target="fd00::51", mac="52:54:00:00:01:51"))
    assert sp.neighbour(1, V6("fd00::50")) is None                  # the oldest made room
    assert sp.neighbour(1, 0x0A000032) is not None and sp.counters["neighbour_evicted"] == 1


# -- malformed input never raises; every frame counts somewhere ------------------------------

def _valid_frames():
    return [
        routed(0), routed(1, hlim=1), router_na(),
        ip6_frame(10, "fd00::2", "ff02::1:ff00:3", ICMPv6ND_NS(tgt="fd00::3")
                  / ICMPv6NDOptSrcLLAddr(lladdr=ENDPOINT_MAC[10]), hlim=255),
        ip6_frame(10, "fd00::2", "fd00::1", ICMPv6EchoRequest(data=b"x" * 20)),
        ip6_frame(10, "fe80::2", "ff02::1", ICMPv6ND_RA(), hlim=255),
        ip6_frame(10, "fe80::2", "ff02::16", IPv6ExtHdrHopByHop(options=[RouterAlert()])
                  / ICMPv6MLReport2(), hlim=1),
        ip6_frame(10, "fd00::2", "fd00:1::5", IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()
                  / IPv6ExtHdrFragment() / UDP() / b"ext"),
    ]


@pytest.mark.parametrize("reason", list(Punt) + [0, 99])
def test_every_truncation_is_handled(reason):
    check_every_truncation(_valid_frames(), reason, 14 + 40)


@settings(max_examples=400, deadline=None)
@given(port=st.sampled_from([10, 11, 12, 20, 99]), reason=st.sampled_from(list(Punt) + [0, 99]),
       frame=st.sampled_from(_valid_frames()).flatmap(
           lambda f: st.tuples(st.integers(0, len(f) - 1), st.integers(0, 255)).map(
               lambda c: f[:c[0]] + bytes([c[1]]) + f[c[0] + 1:])))
def test_corrupted_ipv6_frames_never_raise(port, reason, frame):
    sp = SlowPath(StaticView(), clock=FakeClock())
    sp.view.advertising.add(1)
    sp.view.routers.add(12)
    out = sp.handle(port, reason, frame)
    assert sum(sp.counters.values()) >= 1
    for egress, data in out.frames:
        assert egress in (10, 11, 12, 20)
        assert len(data) >= 14 + 40 + 8
    sp.tick()
