"""One test per forwarding step of docs/architecture.md, run on the reference and the core."""
from fastpath import Batch, verdicts as V
from fastpath.reference import ipv4_checksum
from fastpath_frames import (A1, A2, A3, A6, BCAST, DIRECTED, GW_MAC, PEER, ROOT, SIB, SW, T1, T2,
                             T3, T6, build_world, from_t1, ip, ipv4_frame, mac, port_mac, run)

import pytest


def verdict_of(b, i=0):
    return b.verdict[i], V.REASON_NAMES[b.reason[i]]


def header_ok(frame):
    ihl = frame[14] & 15
    h = frame[14:14 + ihl * 4]
    return ipv4_checksum(h[:10] + b"\0\0" + h[12:]) == int.from_bytes(h[10:12], "big")


def test_demux_delivers_to_the_owner_port_as_a_routed_hop(make_dp):
    dp = build_world(make_dp())
    sent = from_t1(A2, ttl=64)[1]
    b = run(dp, [from_t1(A2, ttl=64)])
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none")
    assert b.out_port[0] == 2
    out = b.frame(0)
    assert out[0:6] == PEER[2] and out[6:12] == port_mac(2)
    assert out[14 + 8] == 63 and header_ok(out)
    assert out[12:14] == sent[12:14] and out[14 + 12:] == sent[14 + 12:]    # addresses, payload
    c = dp.counters()
    n = len(sent)
    assert c["ports"][1] == {"rx_packets": 1, "rx_bytes": n, "tx_packets": 0, "tx_bytes": 0}
    assert c["ports"][2] == {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 1, "tx_bytes": n}
    assert c["namespaces"][T1]["rx_packets"] == 1 and c["namespaces"][T2]["tx_packets"] == 1


def test_scapy_built_frame_is_routed_through_the_default_gateway(make_dp):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    dp = build_world(make_dp())
    frame = bytes(Ether(dst=port_mac(1), src=PEER[1]) / IP(src="10.0.0.1", dst="8.8.8.8", ttl=9)
                  / UDP(sport=1, dport=2) / b"hello")
    b = run(dp, [(1, frame)])
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none") and b.out_port[0] == 0
    out = Ether(b.frame(0))
    assert out.dst == GW_MAC.hex(":") and out.src == port_mac(0).hex(":")
    assert out[IP].ttl == 8 and out[IP].dst == "8.8.8.8"
    assert header_ok(b.frame(0)) and bytes(out[UDP].payload) == b"hello"


def test_on_link_route_needs_the_neighbour(make_dp):
    dp = build_world(make_dp())
    b = run(dp, [from_t1(ip("10.9.1.5"))])
    assert verdict_of(b) == (V.VERDICT_SLOWPATH, "no_neighbour")
    with dp.update():
        dp.set_neighbour(ROOT, ip("10.9.1.5"), mac(0x333))
    b = run(dp, [from_t1(ip("10.9.1.5"))])
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none") and b.frame(0)[0:6] == mac(0x333)


def test_longest_prefix_wins(make_dp):
    dp = build_world(make_dp())
    with dp.update():
        dp.add_route(ROOT, ip("10.9.1.0"), 24, 0, ip("10.0.0.101"))
        dp.add_route(ROOT, ip("10.9.1.128"), 25, 0, ip("10.0.0.102"))
        dp.set_neighbour(ROOT, ip("10.0.0.101"), mac(0x401))
        dp.set_neighbour(ROOT, ip("10.0.0.102"), mac(0x402))
        dp.set_neighbour(ROOT, ip("10.9.2.1"), mac(0x403))
    b = run(dp, [from_t1(ip("10.9.1.5")), from_t1(ip("10.9.1.200")), from_t1(ip("10.9.2.1")),
                 from_t1(ip("11.0.0.1"))])
    assert [b.frame(i)[0:6] for i in range(4)] == [mac(0x401), mac(0x402), mac(0x403), GW_MAC]
    assert dp.lookup_route(ROOT, ip("10.9.1.200")) == (0, ip("10.0.0.102"))


def test_no_route_goes_to_the_slow_path(make_dp):
    dp = build_world(make_dp())
    with dp.update():
        dp.remove_route(ROOT, 0, 0)
    b = run(dp, [from_t1(ip("8.8.8.8"))])
    assert verdict_of(b) == (V.VERDICT_SLOWPATH, "no_route")
    assert dp.counters()["namespaces"][T1]["reasons"]["no_route"] == 1


@pytest.mark.parametrize("ttl,expected", [(0, "ttl_expired"), (1, "ttl_expired"), (2, "none")])
def test_ttl(make_dp, ttl, expected):
    dp = build_world(make_dp())
    b = run(dp, [from_t1(A2, ttl=ttl), from_t1(ip("8.8.8.8"), ttl=ttl)])
    for i in range(2):
        assert V.REASON_NAMES[b.reason[i]] == expected
        if expected == "none":
            assert b.frame(i)[14 + 8] == 1 and header_ok(b.frame(i))


def test_ttl_255_and_every_protocol_keep_a_valid_checksum(make_dp):
    dp = build_world(make_dp())
    frames = [from_t1(A2, ttl=t, proto=p) for t in (2, 128, 255) for p in (0, 1, 6, 17, 255)]
    b = run(dp, frames)
    for i in range(len(frames)):
        assert b.verdict[i] == V.VERDICT_FORWARD and header_ok(b.frame(i))


def ones_sum(data):
    s = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def zero_checksum_frame(field, ttl_zero_at):
    """From tenant 1 to A2: an IPv4 header whose correct checksum is 0x0000 while its TTL
    is ``ttl_zero_at`` (the ID is chosen for that), sent with TTL 64 and, when the TTL is
    64, ``field`` in the checksum field (0x0000, or the equivalent 0xFFFF)."""
    port, f = from_t1(A2, ttl=ttl_zero_at)
    h = bytearray(f[14:34])
    h[4:6] = h[10:12] = b"\0\0"
    h[4:6] = (~ones_sum(h) & 0xFFFF).to_bytes(2, "big")      # now the header sums to all ones
    h[8] = 64
    h[10:12] = (field if ttl_zero_at == 64 else ipv4_checksum(bytes(h))).to_bytes(2, "big")
    return port, f[:14] + bytes(h) + f[34:]


@pytest.mark.parametrize("field", [0x0000, 0xFFFF])
def test_a_zero_header_checksum_may_be_sent_as_0xffff(make_dp, field):
    # RFC 1071: a header is valid when all its words, checksum included, sum to all ones;
    # 0x0000 and 0xFFFF are the same checksum (one's complement +0 and -0)
    dp = build_world(make_dp())
    b = run(dp, [zero_checksum_frame(field, 64)])
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none")
    out = b.frame(0)
    assert out[14 + 8] == 63 and header_ok(out) and out[24:26] == b"\x01\x00"


def test_ttl_update_that_lands_on_a_zero_checksum(make_dp):
    dp = build_world(make_dp())
    b = run(dp, [zero_checksum_frame(None, 63)])
    out = b.frame(0)
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none")
    assert out[14 + 8] == 63 and out[24:26] == b"\0\0" and header_ok(out)


def test_ip_options_and_ethernet_padding_are_kept(make_dp):
    dp = build_world(make_dp())
    frame = from_t1(A2, options=b"\x01\x01\x01\x00", pad=b"\0" * 7)
    b = run(dp, [frame])
    out = b.frame(0)
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none") and len(out) == len(frame[1])
    assert header_ok(out) and out[34:38] == b"\x01\x01\x01\x00"


def test_switch_address_goes_to_the_slow_path(make_dp):
    dp = build_world(make_dp())
    assert verdict_of(run(dp, [from_t1(SW)])) == (V.VERDICT_SLOWPATH, "local")


def test_destination_without_port_is_a_counted_drop(make_dp):
    dp = build_world(make_dp())
    assert verdict_of(run(dp, [from_t1(A3)])) == (V.VERDICT_DROP, "no_port")
    assert dp.counters()["reasons"]["no_port"] == 1


def test_peer_mac_unknown_then_learned(make_dp):
    dp = build_world(make_dp(), peers=False)
    assert verdict_of(run(dp, [from_t1(A2)])) == (V.VERDICT_SLOWPATH, "peer_unknown")
    assert dp.peer_mac(1) == PEER[1]                           # learned from the frame's source
    reply = (2, ipv4_frame(port_mac(2), mac(0x777), A2, A1))
    b = run(dp, [reply, from_t1(A2)])
    assert verdict_of(b, 0) == (V.VERDICT_FORWARD, "none") and b.frame(0)[0:6] == PEER[1]
    assert verdict_of(b, 1) == (V.VERDICT_FORWARD, "none") and b.frame(1)[0:6] == mac(0x777)


def test_spoofed_frames_teach_nothing(make_dp):
    dp = build_world(make_dp(), peers=False)
    run(dp, [(1, ipv4_frame(port_mac(1), mac(0x999), A2, A1))])
    assert dp.peer_mac(1) is None


def test_arp_goes_to_the_slow_path(make_dp):
    from fastpath_frames import arp_frame
    dp = build_world(make_dp())
    b = run(dp, [(1, arp_frame(PEER[1], A1, SW)), (1, arp_frame(PEER[1], A1, SW)[:40])])
    assert verdict_of(b, 0) == (V.VERDICT_SLOWPATH, "arp")
    assert verdict_of(b, 1) == (V.VERDICT_DROP, "malformed")


@pytest.mark.parametrize("src,why", [
    (A1, None), (A2, "spoofed_source"), (ip("10.0.0.50"), "spoofed_source"),
    (SW, "spoofed_source"),                                   # the gateway's: the switch's own
    (0, "martian_source"),                                    # unicast from 0.0.0.0
    (ip("0.1.2.3"), "martian_source"), (ip("127.0.0.1"), "martian_source"),
    (ip("224.0.0.1"), "martian_source"), (ip("240.0.0.1"), "martian_source"),
    (0xFFFFFFFF, "martian_source")])
def test_source_rule_of_an_l3(make_dp, src, why):
    dp = build_world(make_dp())
    b = run(dp, [(1, ipv4_frame(port_mac(1), PEER[1], src, A2))])
    assert verdict_of(b) == ((V.VERDICT_FORWARD, "none") if why is None else (V.VERDICT_DROP, why))


@pytest.mark.parametrize("src,why", [
    (ip("8.8.8.8"), None), (ip("10.0.0.77"), None), (A1, "spoofed_source"),
    (A3, "spoofed_source"), (SW, "spoofed_source"),           # the L2's own: only the switch's
    (0, "martian_source"), (ip("127.0.0.1"), "martian_source")])
def test_source_rule_of_an_l2_port(make_dp, src, why):
    dp = build_world(make_dp())
    b = run(dp, [(0, ipv4_frame(port_mac(0), PEER[0], src, A2))])
    assert verdict_of(b) == ((V.VERDICT_FORWARD, "none") if why is None else (V.VERDICT_DROP, why))


def test_limited_broadcast_reaches_the_senders_subnet_only(make_dp):
    dp = build_world(make_dp(), subnet=True)
    with dp.update():                   # T3 (with a port now) on another subnet of the scope
        dp.set_port(3, T3, port_mac(3))
        dp.remove_address(ROOT, A3)
        dp.add_address(ROOT, ip("10.1.0.3"), T3, 24)
        dp.set_broadcast(ROOT, DIRECTED, [T1, T2])
        dp.set_broadcast(ROOT, ip("10.1.0.255"), [T3])
    frame = ipv4_frame(BCAST, PEER[1], A1, 0xFFFFFFFF, ttl=1)
    b = run(dp, [(1, frame), (0, ipv4_frame(BCAST, PEER[0], ip("10.0.0.77"), 0xFFFFFFFF)),
                 (3, ipv4_frame(BCAST, mac(0x103), ip("10.1.0.3"), 0xFFFFFFFF))])
    assert verdict_of(b, 0) == (V.VERDICT_FANOUT, "none")
    assert b.fanout_n[0] == 1 and b.fanout_count == 1
    port, copy = b.copy(0)
    assert port == 2 and copy == BCAST + port_mac(2) + frame[12:]          # TTL untouched
    assert b.frame(0) == frame                                              # original intact
    assert verdict_of(b, 1) == (V.VERDICT_DROP, "no_listener")              # the uplink: routed
    assert verdict_of(b, 2) == (V.VERDICT_DROP, "no_listener")              # alone on 10.1.0/24
    assert dp.counters()["ports"][6]["tx_packets"] == 0                     # never the sibling L2


@pytest.mark.parametrize("plen", [31, 32])
def test_limited_broadcast_of_a_subnet_without_broadcast_reaches_nobody(make_dp, plen):
    dp = build_world(make_dp())
    with dp.update():
        dp.remove_address(ROOT, A1)
        dp.add_address(ROOT, A1, T1, plen)
    b = run(dp, [(1, ipv4_frame(BCAST, PEER[1], A1, 0xFFFFFFFF))])
    assert verdict_of(b) == (V.VERDICT_DROP, "no_listener")


def test_directed_broadcast_and_multicast(make_dp):
    dp = build_world(make_dp(), subnet=True)
    bc = ip("10.0.0.255")
    assert dp.lookup_broadcast(ROOT, bc) == [T1, T2, T3] and dp.lookup_address(ROOT, bc) == -1
    mdns = ip("224.0.0.251")                       # link-local: every L3 of the scope
    b = run(dp, [(1, ipv4_frame(BCAST, PEER[1], A1, bc)),
                 (1, ipv4_frame(mac(0x5E0101) , PEER[1], A1, mdns)),
                 (1, ipv4_frame(bytes.fromhex("01005e0000fb"), PEER[1], A1, mdns))])
    assert verdict_of(b, 0) == (V.VERDICT_FANOUT, "none") and b.copy(0)[0] == 2
    assert verdict_of(b, 1) == (V.VERDICT_DROP, "not_for_us")      # unicast MAC not ours
    assert verdict_of(b, 2) == (V.VERDICT_FANOUT, "none")
    assert b.copy(1)[1][:12] == bytes.fromhex("01005e0000fb") + port_mac(2)


def test_broadcast_nobody_else_hears_is_dropped(make_dp):
    dp = build_world(make_dp())
    b = run(dp, [(6, ipv4_frame(BCAST, PEER[6], A1, 0xFFFFFFFF))])
    assert verdict_of(b) == (V.VERDICT_DROP, "no_listener")


def test_fanout_list_overflow_is_counted_per_copy(make_dp):
    dp = build_world(make_dp(), subnet=True)
    with dp.update():
        dp.set_port(3, T3, port_mac(3))
    b = Batch(capacity=2, max_fanout=1)
    frame = ipv4_frame(BCAST, PEER[1], A1, 0xFFFFFFFF)
    b.load([(1, frame), (1, frame)])
    dp.process(b)
    assert verdict_of(b, 0) == (V.VERDICT_FANOUT, "fanout_overflow") and b.fanout_n[0] == 1
    assert verdict_of(b, 1) == (V.VERDICT_DROP, "fanout_overflow")
    assert dp.counters()["reasons"]["fanout_overflow"] == 3
    assert dp.counters()["namespaces"][T1]["reasons"]["fanout_overflow"] == 3


@pytest.mark.parametrize("frame,reason", [
    ((1, ipv4_frame(mac(0x55), PEER[1], A1, A2)), "not_for_us"),
    ((1, ipv4_frame(BCAST, PEER[1], A1, A2)), "not_for_us"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, ethertype=0x88CC)), "unsupported_ethertype"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, ethertype=0x86DD)), "malformed"),   # no IPv6 inside
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, ethertype=0x8100)), "unsupported_ethertype"),
    ((9, ipv4_frame(port_mac(1), PEER[1], A1, A2)), "unknown_port"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2)[:13]), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2)[:33]), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, ihl=4)), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, ihl=15)), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, version=6)), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, total=1500)), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, total=19)), "malformed"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, A2, checksum=0x1234)), "bad_checksum"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, ip("127.0.0.1"))), "bad_destination"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, ip("0.1.2.3"))), "bad_destination"),
    ((1, ipv4_frame(port_mac(1), PEER[1], A1, ip("240.0.0.1"))), "bad_destination"),
])
def test_drop_reasons(make_dp, frame, reason):
    dp = build_world(make_dp())
    b = run(dp, [frame])
    assert verdict_of(b) == (V.VERDICT_DROP, reason)
    c = dp.counters()
    assert c["reasons"][reason] == 1 and sum(c["reasons"].values()) == 1
    if reason != "unknown_port":
        assert c["namespaces"][T1]["reasons"][reason] == 1


def test_sibling_scopes_keep_their_addresses_apart(make_dp):
    dp = build_world(make_dp())
    assert dp.lookup_address(ROOT, A1) == T1 and dp.lookup_address(SIB, A6) == T6
    assert dp.lookup_address(SIB, A2) == -1
    b = run(dp, [(6, ipv4_frame(port_mac(6), PEER[6], A6, A2)), from_t1(A1)])
    assert verdict_of(b, 0) == (V.VERDICT_SLOWPATH, "no_route")     # A2 is not in scope 5
    assert verdict_of(b, 1) == (V.VERDICT_FORWARD, "none") and b.out_port[1] == 1
