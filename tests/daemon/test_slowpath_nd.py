"""Slow path neighbour discovery: answers for the scope (and only it), silence for the
asker's own address and for free addresses, duplicate address detection, learning,
spoofing, hop limit 255, rogue routers, the switch's router advertisements."""
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st
from scapy.compat import raw
from scapy.layers.inet6 import (ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect,
                                ICMPv6ND_RS, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo,
                                ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr, IPv6)
from scapy.layers.l2 import Ether

from pyctl.daemon import packets6 as pk6
from pyctl.daemon.slowpath import NeighbourLearned, PeerMac, Punt
from tests.support.slowpath import (ENDPOINT_MAC, PORT_MAC, assert_icmp6_checksum, ip6_frame,
                                    mac_bytes)

V6 = ipaddress.IPv6Address


def port_ll(port):
    return str(pk6.link_local_of(mac_bytes(PORT_MAC[port])))


def solicitation(port, src, target, dst=None, hlim=255, slla=True, eth_dst=None):
    dst = dst or str(pk6.solicited_node(V6(target)))
    l4 = ICMPv6ND_NS(tgt=target)
    if slla:
        l4 = l4 / ICMPv6NDOptSrcLLAddr(lladdr=ENDPOINT_MAC[port])
    if eth_dst is None:
        eth_dst = pk6.group_mac(V6(dst)).hex(":") if V6(dst).is_multicast else PORT_MAC[port]
    return ip6_frame(port, src, dst, l4, hlim=hlim, eth_dst=eth_dst)


def advertisement(port, src, target, dst="ff02::1", flags="O", tlla=None):
    l4 = ICMPv6ND_NA(tgt=target, R=0, S=int("S" in flags), O=int("O" in flags))
    l4 = l4 / ICMPv6NDOptDstLLAddr(lladdr=tlla or ENDPOINT_MAC[port])
    eth_dst = "33:33:00:00:00:01" if V6(dst).is_multicast else PORT_MAC[port]
    return ip6_frame(port, src, dst, l4, hlim=255, eth_dst=eth_dst)


def only_frame(out):
    assert len(out.frames) == 1, out.frames
    return out.frames[0]


def check_answer(frame, port, target, dst, eth_dst, solicited=True):
    pkt = Ether(frame)
    assert pkt.src == PORT_MAC[port] and pkt.dst == eth_dst and pkt.type == 0x86DD
    ip = pkt[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == (port_ll(port), dst, 255)
    na = pkt[ICMPv6ND_NA]
    assert (na.R, na.S, na.O, na.tgt) == (1, int(solicited), 1, target)
    assert pkt[ICMPv6NDOptDstLLAddr].lladdr == PORT_MAC[port]
    assert_icmp6_checksum(frame)


@pytest.mark.parametrize("target", [
    "fd00::3",        # another tenant of the scope
    "fd00::1",        # the switch's own address
    "fd00:1::5",      # routed via the uplink: proxy, as ARP
    "fd00::77",       # on the uplink's link
])
def test_solicitation_from_a_tenant_is_answered_with_the_port_mac(sp, target):
    out = sp.handle(10, Punt.ND, solicitation(10, "fd00::2", target))
    port, frame = only_frame(out)
    assert port == 10
    check_answer(frame, 10, target, "fd00::2", ENDPOINT_MAC[10])
    assert sp.counters["nd_advert_sent"] == 1


def test_the_ports_own_link_local_address_is_answered(sp):
    out = sp.handle(11, Punt.ND, solicitation(11, "fe80::5054:ff:fe00:3", port_ll(11)))
    check_answer(only_frame(out)[1], 11, port_ll(11), "fe80::5054:ff:fe00:3", ENDPOINT_MAC[11])


def test_unicast_solicitation_checks_reachability_and_is_answered(sp):
    frame = solicitation(10, "fd00::2", "fd00::3", dst="fd00::3", eth_dst=PORT_MAC[10])
    check_answer(only_frame(sp.handle(10, Punt.ND, frame))[1], 10, "fd00::3", "fd00::2",
                 ENDPOINT_MAC[10])


def test_a_solicitation_teaches_its_sender(sp):
    out = sp.handle(10, Punt.ND, solicitation(10, "fd00::2", "fd00::3"))
    mac = mac_bytes(ENDPOINT_MAC[10])
    assert out.learned == [NeighbourLearned(1, V6("fd00::2"), mac, 10), PeerMac(10, mac)]
    assert sp.neighbour(1, V6("fd00::2")) == (mac, 10)


def test_a_link_local_sender_teaches_only_the_peer_mac(sp):
    out = sp.handle(10, Punt.ND, solicitation(10, "fe80::1", "fd00::3"))
    assert out.learned == [PeerMac(10, mac_bytes(ENDPOINT_MAC[10]))]
    check_answer(only_frame(out)[1], 10, "fd00::3", "fe80::1", ENDPOINT_MAC[10])


@pytest.mark.parametrize("src", ["fd00::2", "fe80::2"])
def test_a_tenant_asking_for_its_own_address_gets_no_answer(sp, src):
    out = sp.handle(10, Punt.ND, solicitation(10, src, "fd00::2"))
    assert out.frames == [] and sp.counters["nd_own_address"] == 1


def test_dad_for_its_own_address_gets_no_answer(sp):
    out = sp.handle(10, Punt.ND, solicitation(10, "::", "fd00::2", slla=False))
    assert out.frames == [] and sp.counters["nd_own_address"] == 1
    assert out.learned == [PeerMac(10, mac_bytes(ENDPOINT_MAC[10]))]


@pytest.mark.parametrize("target", ["fd00::3", "fd00::1"])
def test_dad_for_an_address_someone_holds_shows_the_conflict(sp, target):
    out = sp.handle(10, Punt.ND, solicitation(10, "::", target, slla=False))
    check_answer(only_frame(out)[1], 10, target, "ff02::1", "33:33:00:00:00:01", solicited=False)


@pytest.mark.parametrize("target", ["fd00::77", "fd00:1::5", "fd00::4", "fd00:9::1"])
def test_dad_for_a_free_address_is_never_answered(sp, target):
    out = sp.handle(10, Punt.ND, solicitation(10, "::", target, slla=False))
    assert out.frames == [] and sp.counters["nd_dad_free"] == 1


@settings(max_examples=200, deadline=None)
@given(low=st.integers(0, 2**64 - 1), high=st.sampled_from([0xfd00 << 48, 0xfd00_0001 << 32,
                                                            0x2001_0db8 << 32]))
def test_dad_is_answered_exactly_for_held_addresses(low, high):
    from pyctl.daemon.slowpath import SlowPath
    from tests.support.slowpath import StaticView
    sp = SlowPath(StaticView())
    target = V6((high << 64) | low)
    if target.is_link_local or target.is_multicast or target.is_unspecified:
        return
    out = sp.handle(11, Punt.ND, solicitation(11, "::", str(target), slla=False))
    held = sp.view.owner(1, target) not in (None, 3)
    assert bool(out.frames) == held


def test_another_scopes_addresses_are_never_answered(sp):
    # scope 5 holds fd00::1 and fd00::2 only; fd00::3 is scope 1's.
    out = sp.handle(20, Punt.ND, solicitation(20, "fd00::2", "fd00::3"))
    assert out.frames == [] and sp.counters["nd_ignored"] == 1
    out = sp.handle(20, Punt.ND, solicitation(20, "fd00::2", "fd00::1"))
    check_answer(only_frame(out)[1], 20, "fd00::1", "fd00::2", ENDPOINT_MAC[20])


def test_another_links_link_local_address_is_not_answered(sp):
    out = sp.handle(10, Punt.ND, solicitation(10, "fd00::2", port_ll(11)))
    assert out.frames == [] and sp.counters["nd_ignored_link_local"] == 1


def test_the_uplinks_own_link_is_not_proxied(sp):
    out = sp.handle(12, Punt.ND, solicitation(12, "fd00::fe", "fd00::77"))
    assert out.frames == [] and sp.counters["nd_ignored"] == 1
    out = sp.handle(12, Punt.ND, solicitation(12, "fd00::fe", "fd00::2"))   # a tenant: proxied
    check_answer(only_frame(out)[1], 12, "fd00::2", "fd00::fe", ENDPOINT_MAC[12])


@pytest.mark.parametrize("frame, counter", [
    (solicitation(10, "fd00::2", "fd00::3", hlim=64), "drop_nd_not_on_link"),
    (solicitation(10, "::", "fd00::3", slla=True), "drop_nd_malformed"),
    (solicitation(10, "::", "fd00::3", dst="ff02::1", slla=False), "drop_nd_malformed"),
    (solicitation(10, "fd00::3", "fd00::1"), "drop_nd_spoofed"),           # another's address
    (solicitation(10, "ff02::5", "fd00::1"), "drop_nd_spoofed"),
    (solicitation(12, "fd00::1", "fd00::2"), "drop_nd_spoofed"),     # the switch's, as ARP
    (ip6_frame(10, "fd00::2", "ff02::1:ff00:3", ICMPv6ND_NS(tgt="fd00::3")
               / ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:99"), hlim=255,
               eth_dst="33:33:ff:00:00:03"), "drop_nd_lladdr_mismatch"),
    (ip6_frame(10, "fd00::2", "ff02::1:ff00:3", ICMPv6ND_NS(tgt="fd00::3", code=1), hlim=255,
               eth_dst="33:33:ff:00:00:03"), "drop_nd_not_on_link"),
    (ip6_frame(10, "fd00::2", "ff02::1:ff00:3", ICMPv6ND_NS(tgt="fd00::3", cksum=0x1234),
               hlim=255, eth_dst="33:33:ff:00:00:03"), "drop_nd_malformed"),
    (ip6_frame(10, "fd00::2", "ff02::1:ff00:3", raw(ICMPv6ND_NS(tgt="fd00::3"))[:20], hlim=255,
               eth_dst="33:33:ff:00:00:03"), "drop_nd_malformed"),
])
def test_bad_solicitations_are_counted_drops(sp, frame, counter):
    port = 10 if b"\x52\x54\x00\x00\x00\xfe" not in frame[6:12] else 12
    out = sp.handle(port, Punt.ND, frame)
    assert out == ([], []) and sp.counters[counter] == 1
    sender = sp.view.port_namespace(port)                    # and as the sender's
    assert sp.counters.dropped_by(sender) == {counter: 1}
    assert all(sp.counters.dropped_by(ns) == {} for ns in (1, 2, 3, 6) if ns != sender)


def test_an_option_of_length_zero_is_malformed(sp):
    body = bytes(4) + V6("fd00::3").packed + b"\x01\x00" + bytes(6)
    message = pk6.build_icmp6(V6("fd00::2"), V6("ff02::1:ff00:3"), 135, 0, body)
    frame = ip6_frame(10, "fd00::2", "ff02::1:ff00:3", b"", hlim=255, eth_dst="33:33:ff:00:00:03")
    frame = frame[:18] + (len(message)).to_bytes(2, "big") + bytes([58]) + frame[21:54] + message
    out = sp.handle(10, Punt.ND, frame)
    assert out == ([], []) and sp.counters["drop_nd_malformed"] == 1


# -- advertisements ----------------------------------------------------------------------

def test_an_advertisement_teaches_and_is_never_forwarded(sp):
    out = sp.handle(12, Punt.ND, advertisement(12, "fd00::fe", "fd00::fe"))
    assert out.frames == []
    assert out.learned == [NeighbourLearned(1, V6("fd00::fe"), mac_bytes(ENDPOINT_MAC[12]), 12)]


@pytest.mark.parametrize("port, target, counter", [
    (10, "fd00::3", "drop_nd_spoofed"),          # a tenant claiming another's address
    (12, "fd00::1", "drop_nd_spoofed"),          # the uplink claiming the switch's
    (12, "fd00::2", "drop_nd_spoofed"),          # ... or a tenant's
])
def test_advertisements_for_others_addresses_are_refused(sp, port, target, counter):
    out = sp.handle(port, Punt.ND, advertisement(port, "fd00::fe" if port == 12 else "fd00::2",
                                                 target))
    assert out == ([], []) and sp.counters[counter] == 1
    assert sp.neighbour(1, V6(target)) is None


@pytest.mark.parametrize("frame", [solicitation(12, "fd00::1", "fd00::2"),
                                   advertisement(12, "fd00::fe", "fd00::1")])
def test_a_claim_of_the_switchs_address_is_never_learned(sp, frame):
    # Even where the source rule would let an L2 port use the L2's own addresses.
    sp.view.source_allowed = lambda port_id, ip: True
    out = sp.handle(12, Punt.ND, frame)
    assert out == ([], []) and sp.counters["drop_nd_switch_address"] == 1
    assert sp.neighbour(1, V6("fd00::1")) is None


def test_a_solicited_advertisement_to_a_group_is_malformed(sp):
    out = sp.handle(12, Punt.ND, advertisement(12, "fd00::fe", "fd00::fe", flags="SO"))
    assert out == ([], []) and sp.counters["drop_nd_malformed"] == 1


# -- routers ----------------------------------------------------------------------------

def router_solicitation(port, src="fe80::2"):
    l4 = ICMPv6ND_RS()
    if src != "::":
        l4 = l4 / ICMPv6NDOptSrcLLAddr(lladdr=ENDPOINT_MAC[port])
    return ip6_frame(port, src, "ff02::2", l4, hlim=255, eth_dst="33:33:00:00:00:02")


def test_router_solicitations_are_ignored_unless_the_l2_advertises(sp):
    out = sp.handle(10, Punt.ND, router_solicitation(10))
    assert out.frames == [] and sp.counters["nd_router_solicit_ignored"] == 1


def test_an_advertising_l2_answers_solicitations_with_its_prefixes(sp, clock):
    sp.view.advertising.add(1)
    sp.view.mtus[10] = 9000
    port, frame = only_frame(sp.handle(10, Punt.ND, router_solicitation(10)))
    pkt = Ether(frame)
    assert port == 10 and (pkt.src, pkt.dst) == (PORT_MAC[10], "33:33:00:00:00:01")
    ip = pkt[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == (port_ll(10), "ff02::1", 255)
    ra = pkt[ICMPv6ND_RA]
    assert (ra.M, ra.O, ra.routerlifetime, ra.chlim) == (0, 0, 1800, 64)
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == PORT_MAC[10]
    assert pkt[ICMPv6NDOptMTU].mtu == 9000
    prefix = pkt[ICMPv6NDOptPrefixInfo]
    assert (prefix.prefix, prefix.prefixlen, prefix.L, prefix.A) == ("fd00::", 64, 1, 1)
    assert_icmp6_checksum(frame)
    assert sp.handle(10, Punt.ND, router_solicitation(10, "::")).frames == []   # within 3 s
    assert sp.counters["nd_advert_delayed"] == 1
    clock.now += 2.0
    assert [p for p, _ in sp.tick().frames if p == 10] == []    # (the others' first ones go)
    clock.now += 1.0                                  # ... and sent once the 3 s are over
    assert [p for p, f in sp.tick().frames if Ether(f).haslayer(ICMPv6ND_RA)] == [10]
    clock.now += 3.5
    assert len(sp.handle(10, Punt.ND, router_solicitation(10)).frames) == 1


def test_an_advertising_l2_advertises_out_of_each_port_and_stops_with_a_last_one(sp, clock):
    sp.view.advertising.add(1)
    out = sp.tick()
    ras = [(p, Ether(f)) for p, f in out.frames if Ether(f).haslayer(ICMPv6ND_RA)]
    assert sorted(p for p, _ in ras) == [10, 11, 12]           # scope 1's ports, not 20
    clock.now += 10
    assert not any(Ether(f).haslayer(ICMPv6ND_RA) for _, f in sp.tick().frames)
    clock.now += 6.5                                           # the initial ones: 16 s apart
    assert len([f for _, f in sp.tick().frames if Ether(f).haslayer(ICMPv6ND_RA)]) == 3
    sp.view.advertising.clear()
    last = [Ether(f) for _, f in sp.tick().frames if Ether(f).haslayer(ICMPv6ND_RA)]
    assert len(last) == 3 and {p[ICMPv6ND_RA].routerlifetime for p in last} == {0}
    assert sp.counters["nd_advert_final"] == 3


@pytest.mark.parametrize("message", [
    ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptPrefixInfo(prefix="2001:db8::", prefixlen=64),
    ICMPv6ND_Redirect(tgt="fe80::66", dst="fd00::3"),
])
def test_a_tenants_router_messages_reach_nobody(sp, message):
    frame = ip6_frame(10, "fe80::2", "ff02::1" if isinstance(message, ICMPv6ND_RA) else "fd00::3",
                      message, hlim=255, eth_dst="33:33:00:00:00:01")
    out = sp.handle(10, Punt.ND, frame)
    assert out.frames == [] and sp.counters["drop_rogue_router"] == 1
    assert sp.counters.dropped_by(2) == {"drop_rogue_router": 1}       # port 10's namespace
    assert sp.counters.dropped_by(3) == {}


def test_a_router_ports_advertisements_reach_the_scope(sp):
    sp.view.routers.add(12)
    frame = ip6_frame(12, "fe80::fe", "ff02::1", ICMPv6ND_RA(routerlifetime=1800), hlim=255,
                      eth_dst="33:33:00:00:00:01")
    out = sp.handle(12, Punt.ND, frame)
    assert sorted(p for p, _ in out.frames) == [10, 11]        # not back, not to scope 5
    for port, relayed in out.frames:
        assert relayed[:6] == b"\x33\x33\x00\x00\x00\x01" and relayed[6:12] == mac_bytes(PORT_MAC[port])
        assert relayed[14:] == frame[14:]
    assert sp.counters["router_message_relayed"] == 2


def test_a_router_ports_redirect_reaches_the_host_it_is_for_only(sp):
    sp.view.routers.add(12)
    sp.handle(10, Punt.ND, solicitation(10, "fd00::2", "fd00::3"))       # fd00::2 is known
    redirect = ICMPv6ND_Redirect(tgt="fe80::66", dst="fd00:1::9")
    out = sp.handle(12, Punt.ND, ip6_frame(12, "fe80::fe", "fd00::2", redirect, hlim=255))
    assert [p for p, _ in out.frames] == [10]
    assert out.frames[0][1][:6] == mac_bytes(ENDPOINT_MAC[10])
    out = sp.handle(12, Punt.ND, ip6_frame(12, "fe80::fe", "fe80::2", redirect, hlim=255))
    assert out.frames == [] and sp.counters["drop_router_message_no_port"] == 1
