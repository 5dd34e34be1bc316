"""The DHCP server (pyctl/daemon/dhcp.py) with crafted client messages: it offers and
acknowledges exactly what the port's namespace holds, with the L2's gateway, the mask
and the MTU and nothing else; refuses what is not held (a pulled address at renewal);
keeps its state bounded; counts every malformed message by what is wrong with it and
never raises.  Replies are read back with scapy (another parser than the server's)."""
import ipaddress
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from pyctl.daemon import dhcp_wire as wire
from pyctl.daemon.dhcp import DhcpPort, DhcpServer
from pyctl.daemon.packets import build_ethernet, build_ipv4, checksum

SWITCH_MAC = bytes.fromhex("020000000001")
CLIENT_MAC = bytes.fromhex("02aa00000007")
GW = "10.0.0.1"


def port(addresses=("10.0.0.7/24",), gateways=("10.0.0.1/24",), mtu=1500, lease=600):
    return DhcpPort(3, SWITCH_MAC, mtu, lease, tuple(map(ipaddress.IPv4Interface, addresses)),
                    tuple(map(ipaddress.IPv4Interface, gateways)))


def ip(text):
    return int(ipaddress.IPv4Address(text))


def client_frame(msg_type, *, mac=CLIENT_MAC, xid=0x1234, flags=0, ciaddr=0, requested=None,
                 server_id=None, client_id=None, giaddr=0, src=0, dst=0xFFFFFFFF, options=None,
                 udp_sum=True):
    """A client's message as a frame (struct-built: the fields as given, checksums right)."""
    opts = bytes([53, 1, msg_type])
    if requested is not None:
        opts += bytes([50, 4]) + requested.to_bytes(4, "big")
    if server_id is not None:
        opts += bytes([54, 4]) + server_id.to_bytes(4, "big")
    if client_id is not None:
        opts += bytes([61, len(client_id)]) + client_id
    body = struct.pack("!BBBBIHHIIII16s64s128s", 1, 1, 6, 0, xid, 0, flags, ciaddr, 0, 0, giaddr,
                       mac.ljust(16, b"\0"), b"", b"")
    body += wire.MAGIC.to_bytes(4, "big") + (opts + b"\xff" if options is None else options)
    return udp_frame(body, src, dst, udp_sum=udp_sum)


def udp_frame(body, src=0, dst=0xFFFFFFFF, *, sport=68, dport=67, udp_sum=True, length=None):
    seg = struct.pack("!HHHH", sport, dport, length or 8 + len(body), 0) + body
    if udp_sum:
        c = checksum(struct.pack("!IIBBH", src, dst, 0, 17, len(seg)) + seg) or 0xFFFF
        seg = seg[:6] + c.to_bytes(2, "big") + seg[8:]
    return build_ethernet(b"\xff" * 6, CLIENT_MAC, 0x0800, build_ipv4(src, dst, 17, seg))


@pytest.fixture
def server():
    ports = {1: port()}
    srv = DhcpServer(ports.get, max_clients=4)
    srv.ports = ports
    return srv


def reply(out):
    """The one reply: (scapy packet, {option name: value})."""
    assert len(out) == 1 and out[0][0] == 1
    pkt = Ether(out[0][1])
    opts = {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple)}
    return pkt, opts


def checksums_ok(frame):
    pkt = Ether(frame)
    raw = bytes(pkt[IP])
    return checksum(raw[:20]) == 0 and checksum(
        struct.pack("!4s4sBBH", raw[12:16], raw[16:20], 0, 17, len(raw) - 20) + raw[20:]) == 0


def test_discover_then_request_leases_exactly_the_pushed_address(server):
    pkt, opts = reply(server.handle(1, client_frame(wire.DISCOVER), 0.0))
    assert pkt[BOOTP].yiaddr == "10.0.0.7" and opts["message-type"] == 2
    assert opts == {"message-type": 2, "server_id": GW, "lease_time": 600,
                    "subnet_mask": "255.255.255.0", "router": GW, "interface-mtu": 1500}
    assert (pkt.src, pkt[IP].src, pkt[UDP].sport, pkt[UDP].dport) == \
        ("02:00:00:00:00:01", GW, 67, 68)
    assert (pkt.dst, pkt[IP].dst) == ("02:aa:00:00:00:07", "10.0.0.7")   # no broadcast flag
    assert len(pkt[BOOTP]) >= 300 and checksums_ok(bytes(pkt))
    pkt, opts = reply(server.handle(1, client_frame(wire.REQUEST, requested=ip("10.0.0.7"),
                                                    server_id=ip(GW)), 1.0))
    assert opts["message-type"] == 5 and pkt[BOOTP].yiaddr == "10.0.0.7"
    assert [(lease["address"], lease["bound"]) for lease in server.leases_of(1)] == [("10.0.0.7", True)]
    assert server.counters["tx_offer"] == server.counters["tx_ack"] == 1


def test_a_broadcast_flag_gets_a_broadcast_offer(server):
    pkt, _ = reply(server.handle(1, client_frame(wire.DISCOVER, flags=0x8000), 0.0))
    assert (pkt.dst, pkt[IP].dst) == ("ff:ff:ff:ff:ff:ff", "255.255.255.255")


def test_a_renewal_of_a_pulled_address_is_refused(server):
    server.handle(1, client_frame(wire.DISCOVER), 0.0)
    server.handle(1, client_frame(wire.REQUEST, requested=ip("10.0.0.7"), server_id=ip(GW)), 0.0)
    renew = client_frame(wire.REQUEST, ciaddr=ip("10.0.0.7"), src=ip("10.0.0.7"), dst=ip(GW))
    pkt, opts = reply(server.handle(1, renew, 300.0))             # still held: renewed
    assert opts["message-type"] == 5 and pkt[IP].dst == "10.0.0.7" and pkt[BOOTP].ciaddr == "10.0.0.7"
    server.ports[1] = port(addresses=())                           # pulled
    pkt, opts = reply(server.handle(1, renew, 600.0))
    assert opts == {"message-type": 6, "server_id": GW} and pkt[BOOTP].yiaddr == "0.0.0.0"
    assert pkt[IP].dst == "255.255.255.255" and server.leases_of(1) == []
    assert server.counters["tx_nak"] == 1


def test_only_held_addresses_with_a_gateway_are_offered(server):
    server.ports[1] = port(addresses=("10.0.0.7/24", "10.0.0.9/24", "10.9.0.5/24"))
    pkt, _ = reply(server.handle(1, client_frame(wire.DISCOVER, requested=ip("10.0.0.9")), 0.0))
    assert pkt[BOOTP].yiaddr == "10.0.0.9"                         # asked for and held
    pkt, _ = reply(server.handle(1, client_frame(wire.DISCOVER, mac=b"\x02" * 6,
                                                 requested=ip("10.0.0.99")), 0.0))
    assert pkt[BOOTP].yiaddr == "10.0.0.7"                         # not held: the first free
    assert server.handle(1, client_frame(wire.DISCOVER, mac=b"\x04" * 6), 0.0) == []
    assert server.counters["no_address"] == 1                      # 10.9.0.5 has no gateway
    out = server.handle(1, client_frame(wire.REQUEST, mac=b"\x04" * 6, requested=ip("10.9.0.5")), 0)
    assert reply(out)[1]["message-type"] == 6


def test_an_address_is_leased_to_one_client_at_a_time(server):
    reply(server.handle(1, client_frame(wire.DISCOVER), 0.0))
    other = b"\x02\xbb\x00\x00\x00\x08"
    assert server.handle(1, client_frame(wire.DISCOVER, mac=other), 1.0) == []
    out = server.handle(1, client_frame(wire.REQUEST, mac=other, requested=ip("10.0.0.7")), 2.0)
    assert reply(out)[1]["message-type"] == 6
    server.tick(100.0)                                             # the offer was never taken
    assert reply(server.handle(1, client_frame(wire.DISCOVER, mac=other), 101.0))[0][BOOTP].yiaddr == "10.0.0.7"


def test_clients_are_bounded_per_port(server):
    server.ports[1] = port(addresses=[f"10.0.0.{n}/24" for n in range(10, 20)])
    for n in range(4):
        reply(server.handle(1, client_frame(wire.DISCOVER, mac=bytes([2, 0, 0, 0, 9, n])), 0.0))
    assert server.handle(1, client_frame(wire.DISCOVER, mac=b"\x02\x00\x00\x00\x09\x09"), 0.0) == []
    assert server.counters["clients_full"] == 1 and len(server.leases_of(1)) == 4


def test_a_client_that_chose_another_server_releases_the_offer(server):
    reply(server.handle(1, client_frame(wire.DISCOVER), 0.0))
    assert server.handle(1, client_frame(wire.REQUEST, requested=ip("10.0.0.7"),
                                         server_id=ip("10.0.0.254")), 1.0) == []
    assert server.counters["other_server"] == 1 and server.leases_of(1) == []


def test_release_and_decline_free_the_address(server):
    reply(server.handle(1, client_frame(wire.DISCOVER), 0.0))
    reply(server.handle(1, client_frame(wire.REQUEST, requested=ip("10.0.0.7"), server_id=ip(GW)), 0))
    assert server.handle(1, client_frame(wire.RELEASE, ciaddr=ip("10.0.0.7")), 1.0) == []
    assert server.leases_of(1) == []
    reply(server.handle(1, client_frame(wire.DISCOVER), 2.0))
    assert server.handle(1, client_frame(wire.DECLINE, requested=ip("10.0.0.7")), 3.0) == []
    assert server.leases_of(1) == []


def test_leases_expire_and_go_with_their_port(server):
    reply(server.handle(1, client_frame(wire.DISCOVER), 0.0))
    reply(server.handle(1, client_frame(wire.REQUEST, requested=ip("10.0.0.7"), server_id=ip(GW)), 0))
    server.tick(599.0)
    assert len(server.leases_of(1)) == 1
    server.tick(601.0)
    assert server.leases_of(1) == [] and server.counters["expired"] == 1
    reply(server.handle(1, client_frame(wire.DISCOVER), 700.0))
    server.forget_port(1)
    assert server.leases_of(1) == []


def test_what_is_not_served_or_not_for_it_is_counted(server):
    assert server.handle(2, client_frame(wire.DISCOVER), 0.0) == []
    assert server.handle(1, client_frame(wire.DISCOVER, giaddr=ip("10.0.0.254")), 0.0) == []
    assert server.handle(1, client_frame(wire.INFORM, ciaddr=ip("10.0.0.7")), 0.0) == []
    assert server.handle(1, client_frame(wire.OFFER), 0.0) == []
    assert {k: server.counters[k] for k in ("not_served", "relayed", "ignored")} == \
        {"not_served": 1, "relayed": 1, "ignored": 2}
    assert server.ns_counters[3]["relayed"] == 1


MALFORMED = {
    "option_truncated": client_frame(wire.DISCOVER, options=bytes([53, 1, 1, 50, 4, 10, 0])),
    "no_end_option": client_frame(wire.DISCOVER, options=bytes([53, 1, 1])),
    "option_repeated": client_frame(wire.DISCOVER, options=bytes([53, 1, 1, 53, 1, 1, 255])),
    "option_length": client_frame(wire.DISCOVER, options=bytes([53, 1, 1, 50, 2, 10, 0, 255])),
    "message_type": client_frame(wire.DISCOVER, options=bytes([53, 1, 42, 255])),
    "no_magic_cookie": udp_frame(client_frame(wire.DISCOVER)[42:278] + b"\0\0\0\0" + b"\x35\x01\x01\xff"),
    "short_message": udp_frame(b"\x01\x01\x06" + bytes(100)),
    "udp_length": udp_frame(bytes(300), length=400, udp_sum=False),
    "udp_checksum": client_frame(wire.DISCOVER)[:40] + b"\x12\x34" + client_frame(wire.DISCOVER)[42:],
    "not_dhcp_client": udp_frame(bytes(300), sport=67),
    "not_ethernet_request": udp_frame(b"\x02\x01\x06" + bytes(300)),
    "not_udp": build_ethernet(b"\xff" * 6, CLIENT_MAC, 0x0800, build_ipv4(0, 0xFFFFFFFF, 6, bytes(40))),
    "not_ipv4": b"\xff" * 6 + CLIENT_MAC + b"\x86\xdd" + bytes(60),
}


@pytest.mark.parametrize("why", sorted(MALFORMED))
def test_a_malformed_message_is_counted_by_what_is_wrong(server, why):
    assert server.handle(1, MALFORMED[why], 0.0) == []
    assert server.counters == {f"malformed_{why}": 1}
    assert server.ns_counters[3] == {f"malformed_{why}": 1}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_frame_makes_the_server_raise(data):
    srv = DhcpServer({1: port()}.get)
    base = bytearray(client_frame(wire.REQUEST, requested=ip("10.0.0.7"), server_id=ip(GW)))
    cut = data.draw(st.integers(0, len(base)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)),
                               max_size=8))
    for at, value in flips:
        base[at] = value
    out = srv.handle(1, bytes(base[:cut]), 0.0)
    assert all(p == 1 and len(f) >= 14 for p, f in out)
    assert sum(srv.counters.values()) >= 1
