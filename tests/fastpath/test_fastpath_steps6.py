"""One test per step of the IPv6 frame path (fastpath/process6.pxi's list), run on the
reference and the core."""
import pytest

from fastpath import verdicts as V
from fastpath_frames import BCAST, mac, port_mac
from fastpath_frames6 import (A1, A2, A3, A6, A7, AUTH, DEST_OPTS, FAR, FRAGMENT, GW6_MAC, HBH,
                              ICMPV6, LL1, NO_NEXT, ONLINK, PEER6, ROOT, ROUTING, SIB, SW, T1, T2,
                              T7, TCP, UDP, V6, build_world6, ext, from6, from_t1, icmp6,
                              ipv6_frame, mcast_mac, run6)


def verdict_of(b, i=0):
    return int(b.verdict[i]), V.REASON_NAMES[b.reason[i]]


FORWARD = (V.VERDICT_FORWARD, "none")


def slow(reason):
    return V.VERDICT_SLOWPATH, reason


def dropped(reason):
    return V.VERDICT_DROP, reason


def forwarded_from_t1(dp, dst, out_port, **kw):
    """Tenant 1's frame to ``dst`` (``from_t1``'s ``kw``) through ``dp``, which must forward
    it out of ``out_port``: (the frame sent, the frame out)."""
    port, sent = from_t1(dst, **kw)
    b = run6(dp, [(port, sent)])
    assert verdict_of(b) == FORWARD and b.out_port[0] == out_port
    return sent, b.frame(0)


# ---- delivery: switched inside a subnet, routed between subnets --------------------------

def test_same_subnet_delivery_keeps_the_hop_limit(make_dp):
    dp = build_world6(make_dp())
    sent, out = forwarded_from_t1(dp, A2, 2, hop=64)
    assert out[0:6] == PEER6[2] and out[6:12] == port_mac(2)
    assert out[12:] == sent[12:]                        # hop limit 64, addresses, payload
    c = dp.counters()
    assert c["ports"][1]["rx_packets"] == 1 and c["ports"][2]["tx_bytes"] == len(sent)
    assert c["namespaces"][T2]["tx_packets"] == 1


def test_delivery_to_another_subnet_of_the_scope_is_routed(make_dp):
    sent, out = forwarded_from_t1(build_world6(make_dp()), A7, 7, hop=64)
    assert out[0:6] == PEER6[7] and out[14 + 7] == 63
    assert out[14:21] == sent[14:21] and out[22:] == sent[22:]


@pytest.mark.parametrize("plen_1,plen_2,switched", [
    (64, 64, True), (48, 48, True), (120, 120, True), (128, 128, False), (64, 56, False),
    (None, 64, False), (0, 0, True)])
def test_a_subnet_is_the_owners_on_link_prefix(make_dp, plen_1, plen_2, switched):
    dp = build_world6(make_dp())
    with dp.update():
        dp.add_address(ROOT, A1, T1, plen_1)                    # the same owner: a new prefix
        dp.add_address(ROOT, A2, T2, plen_2)
    assert dp.address_onlink(ROOT, A1) == (128 if plen_1 is None else plen_1)
    b = run6(dp, [from_t1(A2, hop=9)])
    assert verdict_of(b) == FORWARD and b.frame(0)[14 + 7] == (9 if switched else 8)


def test_routed_through_the_default_gateway(make_dp):
    from scapy.layers.inet import UDP as ScapyUDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    dp = build_world6(make_dp())
    frame = bytes(Ether(dst=port_mac(1).hex(":"), src=PEER6[1].hex(":"))
                  / IPv6(src=str(A1), dst=str(FAR), hlim=9) / ScapyUDP(sport=1, dport=2) / b"hello")
    b = run6(dp, [(1, frame)])
    assert verdict_of(b) == FORWARD and b.out_port[0] == 0
    out = Ether(b.frame(0))
    assert out.dst == GW6_MAC.hex(":") and out.src == port_mac(0).hex(":")
    assert out[IPv6].hlim == 8 and out[IPv6].dst == str(FAR) and bytes(out[ScapyUDP].payload) == b"hello"


def test_on_link_route_needs_the_neighbour(make_dp):
    dp = build_world6(make_dp())
    assert verdict_of(run6(dp, [from_t1(ONLINK)])) == slow("no_neighbour")
    with dp.update():
        dp.set_neighbour(ROOT, ONLINK, mac(0x333))
    b = run6(dp, [from_t1(ONLINK)])
    assert verdict_of(b) == FORWARD and b.frame(0)[0:6] == mac(0x333)
    assert dp.lookup_route(ROOT, ONLINK) == (0, None)


def test_longest_prefix_wins(make_dp):
    dp = build_world6(make_dp())
    hops = {V6("fd00:9:1::"): (48, V6("fd00:1::101")), V6("fd00:9:1:2::"): (64, V6("fd00:1::102")),
            V6("fd00:9:1:2::7"): (128, V6("fd00:1::103")), V6("fd00::"): (20, V6("fd00:1::104"))}
    with dp.update():
        for k, (prefix, (plen, gw)) in enumerate(hops.items()):
            dp.add_route(ROOT, prefix, plen, 0, gw)
            dp.set_neighbour(ROOT, gw, mac(0x401 + k))
        dp.set_neighbour(ROOT, V6("fd00:9:2::1"), mac(0x405))
    dsts = [V6("fd00:9:1:3::1"), V6("fd00:9:1:2::8"), V6("fd00:9:1:2::7"), V6("fd00:9:2::1"),
            V6("fd00:fff::1"), V6("2001:db8::5")]
    b = run6(dp, [from_t1(d) for d in dsts])
    assert [b.frame(i)[0:6] for i in range(len(dsts))] == \
        [mac(0x401), mac(0x402), mac(0x403), mac(0x405), mac(0x404), GW6_MAC]
    assert dp.lookup_route(ROOT, V6("fd00:9:1:2::8")) == (0, V6("fd00:1::102"))


def test_no_route_goes_to_the_slow_path(make_dp):
    dp = build_world6(make_dp())
    with dp.update():
        dp.remove_route(ROOT, V6("::"), 0)
    assert verdict_of(run6(dp, [from_t1(FAR)])) == slow("no_route")
    assert dp.counters()["namespaces"][T1]["reasons"]["no_route"] == 1


@pytest.mark.parametrize("hop,dst,expected", [
    (0, FAR, slow("ttl_expired")), (1, FAR, slow("ttl_expired")), (2, FAR, FORWARD),
    (1, A7, slow("ttl_expired")), (0, A2, FORWARD), (1, A2, FORWARD)])
def test_hop_limit_runs_out_only_where_routed(make_dp, hop, dst, expected):
    dp = build_world6(make_dp())
    b = run6(dp, [from_t1(dst, hop=hop), from_t1(dst, hop=hop)])       # the second: cached
    assert verdict_of(b, 0) == verdict_of(b, 1) == expected


def test_to_the_switch_and_to_link_local_addresses_is_local(make_dp):
    dp = build_world6(make_dp())
    b = run6(dp, [from_t1(SW), from_t1(V6("fe80::1")), from6(1, LL1, V6("fe80::1"))])
    assert [verdict_of(b, i) for i in range(3)] == [slow("local")] * 3


def test_destination_without_port_or_peer(make_dp):
    dp = build_world6(make_dp(), peers=False)
    b = run6(dp, [from_t1(A3), from_t1(A2)])
    assert verdict_of(b, 0) == dropped("no_port")
    assert verdict_of(b, 1) == slow("peer_unknown")
    assert dp.peer_mac(1) == PEER6[1]                              # learned from the frame


# ---- DHCPv6 --------------------------------------------------------------------------------

DHCP6_SOLICIT = bytes.fromhex("02220223000c0000") + b"\x01abc"     # UDP 546 -> 547, a Solicit


@pytest.mark.parametrize("dst", [V6("ff02::1:2"), V6("fe80::1"), A2])
def test_a_dhcpv6_client_on_a_dhcp_served_port_is_the_switchs(make_dp, dst):
    dp = build_world6(make_dp())
    with dp.update():
        dp.set_port(1, T1, port_mac(1), serve_dhcp=True)
    dmac = mcast_mac(str(dst)) if dst.is_multicast else None
    src = A1 if dst == A2 else LL1
    b = run6(dp, [from6(1, src, dst, dmac=dmac, nh=UDP, payload=DHCP6_SOLICIT),
                  from6(1, src, dst, dmac=dmac, nh=UDP, payload=DHCP6_SOLICIT[:3]),
                  from6(1, src, dst, dmac=dmac, nh=UDP, payload=DHCP6_SOLICIT,
                        exts=[ext(FRAGMENT, b"\0\0\x08")]),
                  from6(1, V6("::"), dst, dmac=dmac, nh=UDP, payload=DHCP6_SOLICIT)])
    assert verdict_of(b, 0) == slow("dhcp")
    assert verdict_of(b, 1) != slow("dhcp")                 # too short for its ports
    assert verdict_of(b, 2) != slow("dhcp")                 # a later fragment: no UDP header
    assert verdict_of(b, 3) == dropped("spoofed_source")    # never from ::


DHCP6_ADVERTISE = bytes.fromhex("02230222000c0000") + b"\x02abc"   # UDP 547 -> 546
ALL_DHCP = V6("ff02::1:2")


def test_dhcpv6_on_a_port_not_served_is_not_the_switchs(make_dp):
    dp = build_world6(make_dp())
    b = run6(dp, [from6(1, A1, A2, nh=UDP, payload=DHCP6_SOLICIT)])
    assert verdict_of(b) == FORWARD


def test_a_dhcpv6_server_message_from_a_tenant_is_dropped(make_dp):
    dp = build_world6(make_dp())
    relay = DHCP6_ADVERTISE[:2] + DHCP6_SOLICIT[2:]                    # 547 -> 547, a relay's
    b = run6(dp, [from6(1, A1, A2, nh=UDP, payload=DHCP6_ADVERTISE),
                  from6(1, A1, V6("ff02::1"), dmac=mcast_mac("ff02::1"), nh=UDP, payload=DHCP6_ADVERTISE),
                  from6(1, A1, A2, nh=UDP, payload=relay),
                  from6(1, A1, A2, nh=UDP, payload=DHCP6_ADVERTISE[:2])])    # its source port only
    assert [verdict_of(b, i) for i in range(4)] == [dropped("rogue_dhcp")] * 4
    assert dp.counters()["namespaces"][T1]["reasons"]["rogue_dhcp"] == 4
    assert dp.counters()["ports"][2]["tx_packets"] == 0
    later = from6(1, A1, A2, nh=UDP, payload=DHCP6_ADVERTISE, exts=[ext(FRAGMENT, b"\0\0\x08")])
    tcp = from6(1, A1, A2, nh=TCP, payload=DHCP6_ADVERTISE + bytes(12))
    b = run6(dp, [later, tcp])                                         # no UDP header to read
    assert [verdict_of(b, i) for i in range(2)] == [FORWARD] * 2


def test_a_trusted_dhcpv6_server_and_the_uplinks_may_answer(make_dp):
    dp = build_world6(make_dp())
    with dp.update():
        dp.set_port(1, T1, port_mac(1), dhcp_server=True)
    b = run6(dp, [from6(1, A1, A2, nh=UDP, payload=DHCP6_ADVERTISE),
                  from6(0, V6("fd00:9::77"), A2, nh=UDP, payload=DHCP6_ADVERTISE)])
    assert verdict_of(b, 0) == verdict_of(b, 1) == FORWARD


def test_a_dhcpv6_clients_multicast_reaches_the_dhcp_servers_only(make_dp):
    dp = build_world6(make_dp())
    solicit = from6(2, V6("fe80::2"), ALL_DHCP, dmac=mcast_mac("ff02::1:2"), nh=UDP,
                    payload=DHCP6_SOLICIT)
    b = run6(dp, [solicit])
    assert verdict_of(b) == dropped("no_listener")                    # no server: nobody
    with dp.update():
        dp.set_port(7, T7, port_mac(7), dhcp_server=True)
    b = run6(dp, [solicit])
    assert verdict_of(b) == (V.VERDICT_FANOUT, "none") and b.fanout_count == 1
    assert b.copy(0)[0] == 7


# ---- the switch's own ICMPv6 -------------------------------------------------------------

@pytest.mark.parametrize("kind", [133, 134, 135, 136, 137])
@pytest.mark.parametrize("src,dst", [(A1, A2), (LL1, V6("ff02::1:ff00:2")), (V6("::"), V6("ff02::1:ff00:1")),
                                     (LL1, V6("ff02::2")), (A1, FAR)])
def test_neighbour_discovery_is_the_switchs(make_dp, kind, src, dst):
    dp = build_world6(make_dp())
    b = run6(dp, [from6(1, src, dst, nh=ICMPV6, hop=255, payload=icmp6(kind))])
    assert verdict_of(b) == slow("nd")


@pytest.mark.parametrize("kind", [130, 131, 132, 143])
@pytest.mark.parametrize("exts", [(), [ext(HBH, b"\x05\x02\x00\x00")]], ids=["bare", "router-alert"])
@pytest.mark.parametrize("src", [LL1, V6("::")])
def test_mld_is_the_switchs(make_dp, kind, exts, src):
    dp = build_world6(make_dp())
    b = run6(dp, [from6(1, src, V6("ff02::16"), nh=ICMPV6, hop=1, exts=exts, payload=icmp6(kind))])
    assert verdict_of(b) == slow("mld")


def test_other_icmpv6_is_forwarded_and_an_empty_one_is_malformed(make_dp):
    dp = build_world6(make_dp())
    b = run6(dp, [from_t1(A2, nh=ICMPV6, payload=icmp6(128)), from_t1(A2, nh=ICMPV6, payload=b"\x87\0\0")])
    assert verdict_of(b, 0) == FORWARD
    assert verdict_of(b, 1) == dropped("malformed")


# ---- extension headers -------------------------------------------------------------------

@pytest.mark.parametrize("exts", [
    [ext(HBH)], [ext(DEST_OPTS)], [ext(HBH), ext(DEST_OPTS), ext(ROUTING, b"\0\0\0\0"), ext(DEST_OPTS)],
    [ext(AUTH, b"\1" * 14)], [ext(FRAGMENT, b"\0\0\0\0\0\0\1")], [ext(DEST_OPTS, bytes(246))],
    [ext(DEST_OPTS)] * 8])
def test_a_chain_within_the_bounds_is_forwarded_as_it_came(make_dp, exts):
    sent, out = forwarded_from_t1(build_world6(make_dp()), A2, 2, exts=exts)
    assert out[12:] == sent[12:]


@pytest.mark.parametrize("exts,nh", [
    ([ext(DEST_OPTS), ext(HBH)], UDP),                      # hop-by-hop not first
    ([ext(DEST_OPTS)] * 9, UDP),                            # more than 8 headers
    ([ext(DEST_OPTS, bytes(255))], UDP),                    # more than 256 bytes
    ([ext(DEST_OPTS, bytes(120)), ext(DEST_OPTS, bytes(134))], UDP),
])
def test_a_chain_beyond_the_bounds_is_dropped(make_dp, exts, nh):
    dp = build_world6(make_dp())
    b = run6(dp, [from_t1(A2, exts=exts, nh=nh)])
    assert verdict_of(b) == dropped("bad_extension_header")
    assert dp.counters()["namespaces"][T1]["reasons"]["bad_extension_header"] == 1


def test_a_chain_that_runs_past_the_payload_length_is_dropped(make_dp):
    dp = build_world6(make_dp())
    frames = [from_t1(A2, exts=[ext(DEST_OPTS, bytes(14))], payload=b"", plen=p) for p in range(16)]
    frames += [from_t1(A2, exts=[ext(FRAGMENT)], payload=b"", plen=p) for p in range(8)]
    b = run6(dp, frames + [from_t1(A2, nh=HBH, payload=b"\x11")])
    assert all(verdict_of(b, i) == dropped("bad_extension_header") for i in range(len(frames) + 1))


def test_fragments(make_dp):
    dp = build_world6(make_dp())
    first_nd = from6(1, LL1, V6("ff02::1"), nh=ICMPV6, exts=[ext(FRAGMENT, b"\0\0\1\0\0\0\7")],
                     payload=icmp6(134))
    later = from_t1(A2, nh=ICMPV6, exts=[ext(FRAGMENT, b"\0\0\x09\0\0\0\7")], payload=b"\x86" * 8)
    b = run6(dp, [first_nd, later])
    assert verdict_of(b, 0) == slow("nd")                  # the first fragment names its type
    assert verdict_of(b, 1) == FORWARD                      # a later one has no upper layer


# ---- the source rule ---------------------------------------------------------------------

@pytest.mark.parametrize("src,expected", [
    (A1, FORWARD), (A2, dropped("spoofed_source")), (SW, dropped("spoofed_source")),
    (V6("fd00:1::99"), dropped("spoofed_source")), (V6("::1"), dropped("spoofed_source")),
    (V6("ff02::1"), dropped("spoofed_source")), (V6("::ffff:10.0.0.1"), dropped("spoofed_source")),
    (V6("::"), dropped("spoofed_source")), (LL1, dropped("link_local_source_routed"))])
def test_source_rule_of_an_l3(make_dp, src, expected):
    dp = build_world6(make_dp())
    assert verdict_of(run6(dp, [from6(1, src, A2)])) == expected


@pytest.mark.parametrize("src,expected", [                 # SW: the gateway's, the switch's own
    (FAR, FORWARD), (V6("fd00:1::77"), FORWARD), (A1, dropped("spoofed_source")),
    (A3, dropped("spoofed_source")), (SW, dropped("spoofed_source")),
    (V6("fe80::9"), dropped("link_local_source_routed"))])
def test_source_rule_of_an_l2_port(make_dp, src, expected):
    dp = build_world6(make_dp())
    assert verdict_of(run6(dp, [from6(0, src, A2)])) == expected


def test_a_link_local_source_never_leaves_its_link(make_dp):
    dp = build_world6(make_dp())
    with dp.update():
        dp.set_group(ROOT, V6("ff05::1:3"), [T2])
    b = run6(dp, [from6(1, LL1, A2), from6(1, LL1, FAR), from6(1, LL1, A7),
                  from6(1, LL1, V6("ff05::1:3"), dmac=mcast_mac("ff05::1:3")),
                  from6(1, LL1, V6("ff02::fb"), dmac=mcast_mac("ff02::fb"))])
    assert [verdict_of(b, i) for i in range(4)] == [dropped("link_local_source_routed")] * 4
    assert verdict_of(b, 4) == (V.VERDICT_FANOUT, "none")  # link scope: the L3s of the scope


# ---- multicast ---------------------------------------------------------------------------

def test_all_nodes_reaches_every_l3_of_the_scope_and_no_further(make_dp):
    dp = build_world6(make_dp())
    port, frame = from_t1(V6("ff02::1"), dmac=mcast_mac("ff02::1"), hop=1)
    b = run6(dp, [(port, frame), from6(0, FAR, V6("ff02::1"), dmac=mcast_mac("ff02::1"))])
    assert verdict_of(b, 0) == (V.VERDICT_FANOUT, "none")
    copies = [b.copy(k) for k in range(b.fanout_first[0], b.fanout_first[0] + b.fanout_n[0])]
    assert sorted(p for p, _ in copies) == [2, 7]
    for p, data in copies:
        assert data == bytes.fromhex("333300000001") + port_mac(p) + frame[12:]   # hop limit 1 kept
    assert b.frame(0) == frame
    assert sorted(b.copy(k)[0] for k in range(2, b.fanout_count)) == [1, 2, 7]
    assert dp.counters()["ports"][6]["tx_packets"] == 0                     # never the sibling L2


def test_a_solicited_node_group_reaches_its_members_only(make_dp):
    dp = build_world6(make_dp())
    group = V6("ff02::1:ff00:2")                 # A2's: T2 the member (the compiler's rule)
    with dp.update():
        dp.set_group(ROOT, group, [T2])
    assert dp.lookup_group(ROOT, group) == [T2]
    port, frame = from_t1(group, dmac=mcast_mac(group), hop=1)
    b = run6(dp, [(port, frame), from6(1, LL1, group, dmac=mcast_mac(group), hop=1),
                  from_t1(V6("ff02::1:ff00:9"), dmac=mcast_mac("ff02::1:ff00:9")),
                  from6(2, A2, group, dmac=mcast_mac(group))])
    assert verdict_of(b, 0) == verdict_of(b, 1) == (V.VERDICT_FANOUT, "none")
    for i in (0, 1):                             # port 2 only, never 7 (another L3 of the scope)
        copies = [b.copy(k) for k in range(b.fanout_first[i], b.fanout_first[i] + b.fanout_n[i])]
        assert [p for p, _ in copies] == [2]
    assert copies[0][1][:6] == bytes.fromhex("3333ff000002")
    assert verdict_of(b, 2) == dropped("no_listener")          # nobody holds ::9
    assert verdict_of(b, 3) == dropped("no_listener")          # to its own group: nobody else
    assert dp.counters()["groups"][(ROOT, group)]["copies"] == 2


def test_groups_of_wider_scope_go_to_their_members(make_dp):
    dp = build_world6(make_dp())
    group = V6("ff05::1:3")
    with dp.update():
        dp.set_group(ROOT, group, [T2, ROOT])
    assert dp.lookup_group(ROOT, group) == [ROOT, T2]
    port, frame = from_t1(group, dmac=mcast_mac(group))
    b = run6(dp, [(port, frame), from_t1(V6("ff05::1:4"), dmac=mcast_mac("ff05::1:4")),
                  from_t1(V6("ff01::1"), dmac=mcast_mac("ff01::1")),
                  from_t1(V6("ff10::1"), dmac=mcast_mac("ff10::1"))])
    assert verdict_of(b, 0) == (V.VERDICT_FANOUT, "none")
    assert sorted(b.copy(k)[0] for k in range(b.fanout_n[0])) == [0, 2]
    assert b.copy(0)[1][:6] == bytes.fromhex("333300010003") and b.copy(0)[1][12:14] == b"\x86\xdd"
    assert verdict_of(b, 1) == dropped("no_listener")
    assert verdict_of(b, 2) == verdict_of(b, 3) == dropped("bad_destination")
    assert dp.counters()["groups"][(ROOT, group)] == {"rx_packets": 1, "rx_bytes": len(frame), "copies": 2}
    with dp.update():
        dp.remove_group(ROOT, group)
    assert verdict_of(run6(dp, [(port, frame)])) == dropped("no_listener")


# ---- drops, MTU ------------------------------------------------------------------------

@pytest.mark.parametrize("frame,reason", [
    (from_t1(V6("::")), "bad_destination"), (from_t1(V6("::1")), "bad_destination"),
    (from_t1(V6("::ffff:10.0.0.2")), "bad_destination"),
    (from_t1(A2, dmac=BCAST), "not_for_us"), (from_t1(A2, dmac=mcast_mac("ff02::1")), "not_for_us"),
    (from_t1(A2, dmac=mac(0x55)), "not_for_us"),
    ((1, from_t1(A2)[1][:14 + 39]), "malformed"), ((1, from_t1(A2)[1][:14 + 45]), "malformed"),
    (from_t1(A2, version=4), "malformed"), (from_t1(A2, plen=17), "malformed"),
    (from_t1(A2, nh=ICMPV6, payload=b"\x80"), "malformed"),
])
def test_drop_reasons(make_dp, frame, reason):
    dp = build_world6(make_dp())
    b = run6(dp, [frame])
    assert verdict_of(b) == dropped(reason)
    c = dp.counters()
    assert c["reasons"][reason] == 1 and sum(c["reasons"].values()) == 1
    assert c["namespaces"][T1]["reasons"][reason] == 1


def test_ethernet_padding_after_the_payload_length_is_kept(make_dp):
    sent, out = forwarded_from_t1(build_world6(make_dp()), A2, 2, payload=b"", pad=bytes(6))
    assert out[12:] == sent[12:]


@pytest.mark.parametrize("dst,port", [(A2, 2), (A7, 7), (FAR, 0)])
def test_larger_than_the_egress_mtu_is_too_big(make_dp, dst, port):
    dp = build_world6(make_dp(), mtu={port: 1280})
    assert dp.port_mtu(port) == 1280
    fits, big = (from_t1(dst, payload=bytes(1280 - 40 - k)) for k in (0, -1))
    b = run6(dp, [fits, big])
    assert verdict_of(b, 0) == FORWARD
    assert verdict_of(b, 1) == slow("too_big")


def test_a_super_frame_is_judged_by_its_segments(make_dp):
    from fastpath_frames6 import gso_header
    dp = build_world6(make_dp(), mtu={0: 1500})
    tcp = bytes(12) + b"\x50\x10" + bytes(6)               # a TCP header, data offset 5
    frames = [from_t1(FAR, nh=TCP, payload=tcp + bytes(20000), exts=[ext(DEST_OPTS)])] * 3
    headers = {0: gso_header(4, 1432, 62, 16), 1: gso_header(4, 1433, 62, 16), 2: None}
    b = run6(dp, frames, headers, slot_size=32768)
    assert [verdict_of(b, i) for i in range(3)] == [FORWARD, slow("too_big"), slow("too_big")]
    assert b.frame(0)[14 + 7] == 63                         # the hop limit, once for all


def test_sibling_scopes_keep_their_addresses_apart(make_dp):
    dp = build_world6(make_dp())
    assert dp.lookup_address(ROOT, A1) == T1 and dp.lookup_address(SIB, A6) == 6
    assert dp.lookup_address(SIB, A2) == -1
    b = run6(dp, [from6(6, A6, A2), from_t1(A1)])
    assert verdict_of(b, 0) == slow("no_route")            # A2 is not in scope 5
