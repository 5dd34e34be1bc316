"""Slow path ARP: answers for the scope's addresses, silence for DAD, learning, spoofing."""
import pytest
from scapy.layers.l2 import ARP, Ether

from pyctl.daemon.packets import ip_int
from pyctl.daemon.slowpath import NeighbourLearned, PeerMac, Punt
from tests.support.slowpath import ENDPOINT_MAC, PORT_MAC, arp_frame, mac_bytes


def only_frame(out):
    assert len(out.frames) == 1
    return out.frames[0]


@pytest.mark.parametrize("target", [
    "10.0.0.3",    # another tenant of the scope
    "10.0.0.1",    # the switch's own address
    "10.1.2.3",    # routed via the uplink: proxy ARP
    "10.0.0.77",   # on the uplink's link
])
def test_request_from_tenant_is_answered_with_port_mac(sp, target):
    out = sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.2", target))
    port, frame = only_frame(out)
    assert port == 10
    pkt = Ether(frame)
    assert pkt.dst == ENDPOINT_MAC[10] and pkt.src == PORT_MAC[10] and pkt.type == 0x0806
    arp = pkt[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 2)
    assert arp.hwsrc == PORT_MAC[10] and arp.psrc == target
    assert arp.hwdst == ENDPOINT_MAC[10] and arp.pdst == "10.0.0.2"
    assert len(frame) == 42
    assert sp.counters["arp_reply_sent"] == 1


def test_request_teaches_neighbour_and_peer_mac(sp):
    out = sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.2", "10.0.0.3"))
    mac = mac_bytes(ENDPOINT_MAC[10])
    assert out.learned == [NeighbourLearned(1, ip_int("10.0.0.2"), mac, 10), PeerMac(10, mac)]
    assert sp.neighbour(1, ip_int("10.0.0.2")) == (mac, 10)


def test_dad_probe_for_own_address_gets_no_answer(sp):
    out = sp.handle(10, Punt.ARP, arp_frame(10, 1, "0.0.0.0", "10.0.0.2"))
    assert out.frames == []
    assert out.learned == [PeerMac(10, mac_bytes(ENDPOINT_MAC[10]))]
    assert sp.counters["arp_own_address"] == 1


def test_dad_probe_for_another_tenants_address_is_defended(sp):
    port, frame = only_frame(sp.handle(10, Punt.ARP, arp_frame(10, 1, "0.0.0.0", "10.0.0.3")))
    arp = Ether(frame)[ARP]
    assert arp.op == 2 and arp.psrc == "10.0.0.3" and arp.pdst == "0.0.0.0"
    assert arp.hwdst == ENDPOINT_MAC[10]


def test_gratuitous_arp_learns_and_is_silent(sp):
    out = sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.2", "10.0.0.2"))
    assert out.frames == []
    assert NeighbourLearned(1, ip_int("10.0.0.2"), mac_bytes(ENDPOINT_MAC[10]), 10) in out.learned
    assert sp.counters["arp_gratuitous"] == 1


def test_gratuitous_reply_learns(sp):
    out = sp.handle(12, Punt.ARP, arp_frame(12, 2, "10.0.0.254", "10.0.0.254",
                                            hwdst="ff:ff:ff:ff:ff:ff"))
    assert out.frames == []
    assert out.learned == [NeighbourLearned(1, ip_int("10.0.0.254"), mac_bytes(ENDPOINT_MAC[12]), 12)]


def test_unroutable_target_is_ignored(sp):
    out = sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.2", "192.168.7.7"))
    assert out.frames == [] and sp.counters["arp_ignored"] == 1


def test_uplink_target_on_its_own_link_is_ignored(sp):
    # 10.0.0.77 is reached out of port 12 itself: the host asking can reach it directly.
    out = sp.handle(12, Punt.ARP, arp_frame(12, 1, "10.0.0.254", "10.0.0.77"))
    assert out.frames == [] and sp.counters["arp_ignored"] == 1


def test_uplink_request_for_tenant_and_switch_address_is_answered(sp):
    for target in ("10.0.0.2", "10.0.0.1"):
        port, frame = only_frame(sp.handle(12, Punt.ARP, arp_frame(12, 1, "10.0.0.254", target)))
        arp = Ether(frame)[ARP]
        assert port == 12 and arp.hwsrc == PORT_MAC[12] and arp.psrc == target


def test_scopes_are_isolated(sp):
    # 10.0.0.3 exists only in scope 1; port 20's scope has no such address and no routes.
    out = sp.handle(20, Punt.ARP, arp_frame(20, 1, "10.0.0.2", "10.0.0.3"))
    assert out.frames == []
    assert out.learned[0] == NeighbourLearned(5, ip_int("10.0.0.2"), mac_bytes(ENDPOINT_MAC[20]), 20)


def test_spoofed_sender_address_is_dropped_and_not_learned(sp):
    out = sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.3", "10.0.0.1"))
    assert out == ([], [])
    assert sp.counters["drop_arp_spoofed"] == 1
    assert sp.counters.dropped_by(2) == {"drop_arp_spoofed": 1}      # the sender's (port 10)
    assert sp.neighbour(1, ip_int("10.0.0.3")) is None


def test_uplink_may_not_claim_a_tenant_address(sp):
    out = sp.handle(12, Punt.ARP, arp_frame(12, 2, "10.0.0.2", "10.0.0.1", hwdst=PORT_MAC[12]))
    assert out == ([], []) and sp.counters["drop_arp_spoofed"] == 1


def test_sender_mac_must_match_ethernet_source(sp):
    frame = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=ENDPOINT_MAC[10]) /
                  ARP(op=1, hwsrc="52:54:00:99:99:99", psrc="10.0.0.2", pdst="10.0.0.1"))
    assert sp.handle(10, Punt.ARP, frame) == ([], [])
    assert sp.counters["drop_arp_sha_mismatch"] == 1


@pytest.mark.parametrize("mutate", [
    lambda f: f[:14 + 27],                                   # truncated
    lambda f: f[:14] + b"\x00\x06" + f[16:],                 # htype 6
    lambda f: f[:14 + 4] + b"\x08" + f[14 + 5:],             # hlen 8
    lambda f: f[:14 + 6] + b"\x00\x03" + f[14 + 8:],         # op 3 (RARP)
])
def test_malformed_arp_is_a_counted_drop(sp, mutate):
    frame = mutate(arp_frame(10, 1, "10.0.0.2", "10.0.0.1"))
    assert sp.handle(10, Punt.ARP, frame) == ([], [])
    assert sp.counters["drop_malformed_arp"] == 1


def test_unknown_port_is_a_counted_drop(sp):
    assert sp.handle(99, Punt.ARP, arp_frame(10, 1, "10.0.0.2", "10.0.0.1")) == ([], [])
    assert sp.counters["drop_unknown_port"] == 1
    assert sp.counters.by_namespace == {}                     # no namespace to charge


def test_a_namespace_that_goes_takes_its_drop_counts_along(sp):
    sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.3", "10.0.0.1"))
    sp.handle(11, Punt.ARP, arp_frame(11, 1, "10.0.0.2", "10.0.0.1"))
    sp.forget_namespace(2)
    assert sp.counters.dropped_by(2) == {} and sp.counters.dropped_by(3) == {"drop_arp_spoofed": 1}
    assert sp.counters["drop_arp_spoofed"] == 2                 # switch-wide: as it was


def test_padded_arp_is_accepted(sp):
    frame = arp_frame(10, 1, "10.0.0.2", "10.0.0.1") + bytes(18)   # padded to 60 bytes
    assert len(sp.handle(10, Punt.ARP, frame).frames) == 1


def test_claim_of_the_switch_address_is_never_learned(sp):
    # Even where the source rule lets an L2 port use the L2's own addresses.
    sp.view.source_allowed = lambda port_id, ip: True
    out = sp.handle(12, Punt.ARP, arp_frame(12, 1, "10.0.0.1", "10.0.0.1"))
    assert out == ([], []) and sp.counters["drop_arp_switch_address"] == 1
    assert sp.neighbour(1, ip_int("10.0.0.1")) is None
