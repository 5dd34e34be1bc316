"""The fast path's isolation rules (issue 14), one test each, on the reference and the core:
a frame within a subnet is switched (TTL kept), between subnets routed (TTL - 1); a
directed broadcast from another subnet is dropped unless the scope lets them in (RFC
2644); DHCP server messages come only from the L2's own ports and the L3 ports marked as
DHCP servers; a DHCP client's broadcast from 0.0.0.0 reaches those servers only."""
import struct

import pytest

from fastpath import verdicts as V
from fastpath.reference import ipv4_checksum
from fastpath_frames import (A1, A2, BCAST, DIRECTED, PEER, ROOT, T1, T2, T3, build_world, ip,
                             ipv4_frame, ipv4_header, mac, port_mac, run)

OTHER = ip("10.1.0.3")              # T3's address on another subnet of the scope


def verdict_of(b, i=0):
    return int(b.verdict[i]), V.REASON_NAMES[int(b.reason[i])]


def two_subnets(dp):
    """The subnet world, T3 (with port 3) moved to 10.1.0.0/24."""
    build_world(dp, subnet=True)
    with dp.update():
        dp.set_port(3, T3, port_mac(3))
        dp.remove_address(ROOT, ip("10.0.0.3"))
        dp.add_address(ROOT, OTHER, T3, 24)
        dp.set_broadcast(ROOT, DIRECTED, [T1, T2])
        dp.set_broadcast(ROOT, ip("10.1.0.255"), [T3])
    dp.set_peer_mac(3, mac(0x103))
    return dp


def udp(sport, dport, data=b"dhcp"):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


# -- TTL: only routing takes one ---------------------------------------------------------

@pytest.mark.parametrize("ttl", [0, 1, 2, 64])
def test_within_a_subnet_the_ttl_is_kept(make_dp, ttl):
    dp = two_subnets(make_dp())
    frame = ipv4_frame(port_mac(1), PEER[1], A1, A2, ttl=ttl)
    b = run(dp, [(1, frame)])
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none") and b.out_port[0] == 2
    assert b.frame(0) == PEER[2] + port_mac(2) + frame[12:]          # MACs only: same bytes


def test_between_subnets_the_ttl_goes_down(make_dp):
    dp = two_subnets(make_dp())
    b = run(dp, [(1, ipv4_frame(port_mac(1), PEER[1], A1, OTHER, ttl=9)),
                 (1, ipv4_frame(port_mac(1), PEER[1], A1, OTHER, ttl=1))])
    assert verdict_of(b, 0) == (V.VERDICT_FORWARD, "none") and b.frame(0)[22] == 8
    assert verdict_of(b, 1) == (V.VERDICT_SLOWPATH, "ttl_expired")


def test_another_prefix_length_is_another_subnet(make_dp):
    dp = two_subnets(make_dp())
    with dp.update():
        dp.add_address(ROOT, A2, T2, 25)                  # 10.0.0.2/25 vs T1's 10.0.0.1/24
    b = run(dp, [(1, ipv4_frame(port_mac(1), PEER[1], A1, A2, ttl=9))])
    assert b.frame(0)[22] == 8


def test_from_an_uplink_a_frame_is_routed(make_dp):
    dp = two_subnets(make_dp())
    b = run(dp, [(0, ipv4_frame(port_mac(0), PEER[0], ip("10.0.0.77"), A2, ttl=9))])
    assert verdict_of(b) == (V.VERDICT_FORWARD, "none") and b.frame(0)[22] == 8


# -- directed broadcasts: on-link, or by the scope's option ---------------------------------

def test_a_directed_broadcast_from_another_subnet_is_dropped_by_default(make_dp):
    dp = two_subnets(make_dp())
    frames = [(3, ipv4_frame(BCAST, mac(0x103), OTHER, DIRECTED)),               # 10.1.0.3
              (0, ipv4_frame(BCAST, PEER[0], ip("8.8.8.8"), DIRECTED)),          # the uplink
              (1, ipv4_frame(BCAST, PEER[1], A1, ip("10.1.0.255")))]             # T1 -> 10.1/24
    b = run(dp, frames)
    assert [verdict_of(b, i) for i in range(3)] == [(V.VERDICT_DROP, "directed_broadcast")] * 3
    assert dp.counters()["namespaces"][T3]["reasons"]["directed_broadcast"] == 1
    with dp.update():
        dp.set_directed_broadcast(ROOT, True)
    b = run(dp, frames)
    assert [verdict_of(b, i)[0] for i in range(3)] == [V.VERDICT_FANOUT] * 3
    assert sorted(b.copy(k)[0] for k in range(b.fanout_count)) == [1, 1, 2, 2, 3]


def test_a_directed_broadcast_on_its_subnet_always_reaches_it(make_dp):
    dp = two_subnets(make_dp())
    b = run(dp, [(1, ipv4_frame(BCAST, PEER[1], A1, DIRECTED))])
    assert verdict_of(b) == (V.VERDICT_FANOUT, "none") and b.copy(0)[0] == 2


# -- DHCP: server messages from trusted ports only; client broadcasts to them --------------

def test_a_dhcp_server_message_from_a_tenant_is_dropped(make_dp):
    dp = two_subnets(make_dp())
    offers = [(1, ipv4_frame(BCAST, PEER[1], A1, 0xFFFFFFFF, payload=udp(67, 68))),
              (1, ipv4_frame(port_mac(1), PEER[1], A1, A2, payload=udp(67, 68))),
              (1, ipv4_frame(port_mac(1), PEER[1], A1, A2, payload=udp(67, 67))),  # a relay's
              (1, ipv4_frame(port_mac(1), PEER[1], A1, A2, payload=udp(67, 68)[:2]))]  # 2 bytes
    b = run(dp, offers)
    assert [verdict_of(b, i) for i in range(4)] == [(V.VERDICT_DROP, "rogue_dhcp")] * 4
    assert dp.counters()["namespaces"][T1]["reasons"]["rogue_dhcp"] == 4
    assert dp.counters()["ports"][2]["tx_packets"] == 0


def test_a_dhcp_server_port_and_the_uplinks_may_answer(make_dp):
    dp = two_subnets(make_dp())
    with dp.update():
        dp.set_port(1, T1, port_mac(1), dhcp_server=True)
    b = run(dp, [(1, ipv4_frame(BCAST, PEER[1], A1, 0xFFFFFFFF, payload=udp(67, 68))),
                 (1, ipv4_frame(port_mac(1), PEER[1], A1, A2, payload=udp(67, 68))),
                 (0, ipv4_frame(port_mac(0), PEER[0], ip("10.0.0.77"), A2, payload=udp(67, 68)))])
    assert verdict_of(b, 0) == (V.VERDICT_FANOUT, "none") and b.copy(0)[0] == 2
    assert verdict_of(b, 1) == verdict_of(b, 2) == (V.VERDICT_FORWARD, "none")


def test_server_ports_of_a_later_fragment_or_another_protocol_are_not_read(make_dp):
    dp = two_subnets(make_dp())
    head = ipv4_header(A1, A2, payload_len=12)
    head = head[:6] + b"\x00\x01" + head[8:10] + b"\0\0" + head[12:]    # fragment offset 8
    head = head[:10] + ipv4_checksum(head).to_bytes(2, "big") + head[12:]
    later = port_mac(1) + PEER[1] + b"\x08\x00" + head + udp(67, 68)[:4] + b"x" * 8
    tcp = ipv4_frame(port_mac(1), PEER[1], A1, A2, proto=6, payload=udp(67, 68))
    b = run(dp, [(1, later), (1, tcp)])
    assert [verdict_of(b, i) for i in range(2)] == [(V.VERDICT_FORWARD, "none")] * 2


def test_a_dhcp_clients_broadcast_reaches_the_dhcp_servers_only(make_dp):
    dp = two_subnets(make_dp())
    discover = (2, ipv4_frame(BCAST, PEER[2], 0, 0xFFFFFFFF, payload=udp(68, 67)))
    b = run(dp, [discover])
    assert verdict_of(b) == (V.VERDICT_DROP, "no_listener")             # no server: nobody
    with dp.update():
        dp.set_port(3, T3, port_mac(3), dhcp_server=True)               # on another subnet
    b = run(dp, [discover])
    assert verdict_of(b) == (V.VERDICT_FANOUT, "none") and b.fanout_count == 1
    assert b.copy(0)[0] == 3
