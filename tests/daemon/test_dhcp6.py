"""The DHCPv6 server (pyctl/daemon/dhcp6.py) with hand-made client messages: it leases
exactly the IPv6 addresses the port's namespace holds (with an L2 address on their
subnet) and nothing else; a pull ends the lease at the next Renew (lifetimes 0) and a
lost binding answers NoBinding; RFC 8415 16's discards are counted; its state is
bounded; its DUID is stable.  Replies are read back with scapy (another parser)."""
import ipaddress

import pytest
from scapy.layers.dhcp6 import (DHCP6OptClientId, DHCP6OptIA_NA, DHCP6OptIA_PD, DHCP6OptPref,
                                DHCP6OptRapidCommit, DHCP6OptServerId, DHCP6OptStatusCode)
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from pyctl.daemon import dhcp6_wire as wire
from pyctl.daemon import packets6 as pk6
from pyctl.daemon.dhcp6 import Dhcp6Server, server_duid
from pyctl.daemon.dhcp_leases import DhcpPort
from tests.support.dhcp6_frames import (CLIENT_LL, DUID, SWITCH_MAC, frame, ia_na,
                                        message, opt)

SERVER_DUID = b"\x00\x04" + bytes(range(16))
OTHER_DUID = b"\x00\x04" + bytes(16)


def port(addresses=("fd00::7/64",), gateways=("fd00::1/64", "10.0.0.1/24"), lease=600):
    return DhcpPort(3, SWITCH_MAC, 1500, lease, tuple(map(ipaddress.ip_interface, addresses)),
                    tuple(map(ipaddress.ip_interface, gateways)))


@pytest.fixture
def server():
    ports = {1: port()}
    srv = Dhcp6Server(ports.get, SERVER_DUID, max_clients=4)
    srv.ports = ports
    return srv


def send(server, msg_type, *options, now=0.0, client=DUID, server_id=None):
    ids = (opt(1, client) if client else b"") + (opt(2, server_id) if server_id else b"")
    return server.handle(1, frame(message(msg_type, ids, *options)), now)


def reply(out):
    """The one reply: (scapy packet of its DHCPv6 layer, {iaid: [(addr, pref, valid)]},
    {iaid: status code of the IA}, the message's own status code or None)."""
    assert len(out) == 1 and out[0][0] == 1
    pkt = Ether(out[0][1])
    assert pkt[IPv6].src == str(pk6.link_local_of(SWITCH_MAC)) and pkt[IPv6].dst == str(CLIENT_LL)
    dhcp = pkt[IPv6].payload.payload
    assert bytes(dhcp[DHCP6OptServerId].duid) == SERVER_DUID
    addresses, ia_status = {}, {}
    for ia in _layers(dhcp, DHCP6OptIA_NA):
        addresses[ia.iaid] = [(a.addr, a.preflft, a.validlft) for a in ia.ianaopts
                              if a.optcode == 5]
        ia_status.update({ia.iaid: o.statuscode for o in ia.ianaopts if o.optcode == 13})
    top = [o for o in _top_options(dhcp) if isinstance(o, DHCP6OptStatusCode)]
    return dhcp, addresses, ia_status, (top[0].statuscode if top else None)


def _layers(pkt, cls):
    found, layer = [], pkt
    while layer is not None and layer.name != "NoPayload":
        if isinstance(layer, cls):
            found.append(layer)
        layer = layer.payload
    return found


def _top_options(dhcp):
    return [layer for layer in _layers(dhcp.payload, object)]


def test_solicit_then_request_leases_exactly_the_pushed_addresses(server):
    server.ports[1] = port(addresses=("fd00::7/64", "fd00::8/64", "fd09::5/64", "10.0.0.7/24"))
    dhcp, addresses, _, top = reply(send(server, wire.SOLICIT, ia_na(7)))
    assert dhcp.msgtype == wire.ADVERTISE and dhcp.trid == 0xABCDEF and top is None
    assert addresses == {7: [("fd00::7", 600, 600), ("fd00::8", 600, 600)]}   # fd09::5: no gateway
    ia = dhcp[DHCP6OptIA_NA]
    assert (ia.T1, ia.T2) == (300, 480)
    assert dhcp[DHCP6OptPref].prefval == 255 and bytes(dhcp[DHCP6OptClientId].duid) == DUID
    assert {type(o).__name__ for o in _top_options(dhcp)} == {
        "DHCP6OptServerId", "DHCP6OptClientId", "DHCP6OptIA_NA", "DHCP6OptPref"}                                 # nothing else: no DNS, no domain
    dhcp, addresses, _, _ = reply(send(server, wire.REQUEST, ia_na(7), server_id=SERVER_DUID, now=1.0))
    assert dhcp.msgtype == wire.REPLY and addresses == {7: [("fd00::7", 600, 600), ("fd00::8", 600, 600)]}
    assert [(b["iaid"], b["addresses"], b["bound"]) for b in server.leases_of(1)] == \
        [(7, ["fd00::7", "fd00::8"], True)]
    assert server.counters["tx_advertise"] == server.counters["tx_reply"] == 1


def test_rapid_commit_binds_at_once(server):
    dhcp, addresses, _, _ = reply(send(server, wire.SOLICIT, ia_na(7), opt(14)))
    assert dhcp.msgtype == wire.REPLY and DHCP6OptRapidCommit in dhcp
    assert addresses == {7: [("fd00::7", 600, 600)]} and server.leases_of(1)[0]["bound"]
    off = Dhcp6Server(server.ports.get, SERVER_DUID, rapid_commit=False)
    assert reply(off.handle(1, frame(message(wire.SOLICIT, opt(1, DUID), ia_na(7), opt(14))), 0.0))[0] \
        .msgtype == wire.ADVERTISE


def test_a_pull_ends_the_lease_at_the_next_renew(server):
    send(server, wire.REQUEST, ia_na(7), server_id=SERVER_DUID)
    _, addresses, _, _ = reply(send(server, wire.RENEW, ia_na(7, "fd00::7"), server_id=SERVER_DUID,
                                    now=300.0))
    assert addresses == {7: [("fd00::7", 600, 600)]}                  # still held: renewed
    server.ports[1] = port(addresses=("fd00::9/64",))                 # fd00::7 pulled, ::9 pushed
    _, addresses, _, _ = reply(send(server, wire.RENEW, ia_na(7, "fd00::7"), server_id=SERVER_DUID,
                                    now=600.0))
    assert addresses == {7: [("fd00::9", 600, 600), ("fd00::7", 0, 0)]}
    server.ports[1] = port(addresses=())                              # all pulled
    _, addresses, _, _ = reply(send(server, wire.RENEW, ia_na(7, "fd00::9"), server_id=SERVER_DUID,
                                    now=900.0))
    assert addresses == {7: [("fd00::9", 0, 0)]} and server.leases_of(1) == []
    _, addresses, ia_status, _ = reply(send(server, wire.RENEW, ia_na(7, "fd00::9"),
                                            server_id=SERVER_DUID, now=901.0))
    assert addresses == {7: []} and ia_status == {7: wire.NO_BINDING}
    assert server.counters["no_binding"] == 1


def test_rebind_finds_or_rebuilds_the_binding(server):
    """After a restart (no binding): a held address is bound again, one no longer held
    goes back with lifetimes 0."""
    _, addresses, _, _ = reply(send(server, wire.REBIND, ia_na(7, "fd00::7", "fd00::99")))
    assert addresses == {7: [("fd00::7", 600, 600), ("fd00::99", 0, 0)]}
    assert server.leases_of(1)[0]["bound"]


def test_an_address_is_in_one_ia_at_a_time(server):
    send(server, wire.REQUEST, ia_na(7), server_id=SERVER_DUID)
    other = b"\x00\x03\x00\x01" + bytes.fromhex("02aa00000008")
    dhcp, addresses, ia_status, top = reply(send(server, wire.SOLICIT, ia_na(1), client=other))
    assert top == wire.NO_ADDRS_AVAIL and addresses == {}
    _, addresses, ia_status, _ = reply(send(server, wire.REQUEST, ia_na(1), client=other,
                                            server_id=SERVER_DUID))
    assert ia_status == {1: wire.NO_ADDRS_AVAIL} and addresses == {1: []}
    _, addresses, ia_status, _ = reply(send(server, wire.REQUEST, ia_na(7), ia_na(8),
                                            server_id=SERVER_DUID))
    assert addresses == {7: [("fd00::7", 600, 600)], 8: []} and ia_status == {8: wire.NO_ADDRS_AVAIL}


def test_prefix_delegation_and_temporary_addresses_are_refused(server):
    dhcp, _, _, _ = reply(send(server, wire.SOLICIT, ia_na(7), opt(25, bytes(12)), opt(4, bytes(4))))
    pd = dhcp[DHCP6OptIA_PD]
    assert [o.statuscode for o in pd.iapdopt if o.optcode == 13] == [6]      # NoPrefixAvail


def test_release_decline_confirm_and_information_request(server):
    send(server, wire.REQUEST, ia_na(7), server_id=SERVER_DUID)
    _, _, _, top = reply(send(server, wire.CONFIRM, ia_na(7, "fd00::7")))
    assert top == wire.SUCCESS
    _, _, _, top = reply(send(server, wire.CONFIRM, ia_na(7, "fd00::5")))
    assert top == wire.NOT_ON_LINK
    assert send(server, wire.CONFIRM, ia_na(7)) == []                     # no address: no reply
    _, _, ia_status, top = reply(send(server, wire.RELEASE, ia_na(7, "fd00::7"), ia_na(9),
                                      server_id=SERVER_DUID))
    assert top == wire.SUCCESS and ia_status == {9: wire.NO_BINDING} and server.leases_of(1) == []
    send(server, wire.REQUEST, ia_na(7), server_id=SERVER_DUID)
    _, _, _, top = reply(send(server, wire.DECLINE, ia_na(7, "fd00::7"), server_id=SERVER_DUID))
    assert top == wire.SUCCESS and server.leases_of(1) == []
    dhcp, addresses, _, top = reply(send(server, wire.INFORMATION_REQUEST, client=None))
    assert dhcp.msgtype == wire.REPLY and addresses == {} and top is None
    assert {type(o).__name__ for o in _top_options(dhcp)} == {"DHCP6OptServerId"}


@pytest.mark.parametrize("msg_type, options, server_id, client, why", [
    (wire.SOLICIT, (ia_na(7),), SERVER_DUID, DUID, "invalid_server_id_present"),
    (wire.SOLICIT, (ia_na(7),), None, None, "invalid_no_client_id"),
    (wire.REQUEST, (ia_na(7),), None, DUID, "invalid_no_server_id"),
    (wire.REQUEST, (ia_na(7),), OTHER_DUID, DUID, "other_server"),
    (wire.RENEW, (ia_na(7),), OTHER_DUID, DUID, "other_server"),
    (wire.REBIND, (ia_na(7),), SERVER_DUID, DUID, "invalid_server_id_present"),
    (wire.CONFIRM, (ia_na(7, "fd00::7"),), SERVER_DUID, DUID, "invalid_server_id_present"),
    (wire.RELEASE, (ia_na(7),), None, DUID, "invalid_no_server_id"),
    (wire.INFORMATION_REQUEST, (ia_na(7),), None, DUID, "invalid_ia_in_information_request"),
    (wire.INFORMATION_REQUEST, (), OTHER_DUID, DUID, "other_server"),
    (wire.ADVERTISE, (), None, DUID, "ignored"),
    (wire.RECONFIGURE, (), None, DUID, "ignored"),
])
def test_what_rfc_8415_discards_is_counted(server, msg_type, options, server_id, client, why):
    assert send(server, msg_type, *options, client=client, server_id=server_id) == []
    assert server.counters[why] == 1 and server.ns_counters[3][why] == 1
    assert server.leases_of(1) == []


def test_malformed_relayed_and_unserved_messages_are_counted(server):
    assert server.handle(1, frame(message(1, opt(1, b"\x00"))), 0.0) == []
    assert server.counters["malformed_duid_length"] == 1
    assert server.handle(1, frame(message(wire.RELAY_FORW)), 0.0) == []
    assert server.counters["relayed"] == 1
    assert server.handle(2, frame(message(1, opt(1, DUID), ia_na(7))), 0.0) == []
    assert server.counters["not_served"] == 1


def client(i):
    return b"\x00\x03\x00\x01" + bytes([2, 0, 0, 0, 0, i])


def test_state_is_bounded_and_expires():
    """Each address is in one IA: a second client gets one only when an address is pushed
    while the first holds the others; past ``max_clients`` IAs a port's book is full."""
    ports = {1: port(addresses=("fd00::2/64",))}
    srv = Dhcp6Server(ports.get, SERVER_DUID, max_clients=2)

    def request(i, now=0.0):
        return srv.handle(1, frame(message(wire.REQUEST, opt(1, client(i)), opt(2, SERVER_DUID),
                                           ia_na(1))), now)
    for i, held in enumerate((("fd00::2/64",), ("fd00::2/64", "fd00::3/64"),
                              ("fd00::2/64", "fd00::3/64", "fd00::4/64"))):
        ports[1] = port(addresses=held)
        _, addresses, status, _ = reply(request(i))
    assert [b["addresses"] for b in srv.leases_of(1)] == [["fd00::2"], ["fd00::3"]]
    assert addresses == {1: []} and status == {1: wire.NO_ADDRS_AVAIL}
    assert srv.counters["clients_full"] == 1                              # the third: no room
    srv.tick(599.0)
    assert len(srv.leases_of(1)) == 2
    _, addresses, _, _ = reply(request(2, now=600.0))                     # expired ones make room
    assert addresses == {1: [("fd00::2", 600, 600), ("fd00::3", 600, 600), ("fd00::4", 600, 600)]}
    srv.tick(10_000.0)
    assert srv.leases_of(1) == [] and srv.counters["expired"] == 3
    request(0, now=10_001.0)
    srv.forget_port(1)
    assert srv.leases == {}


def test_the_server_duid_is_stable_per_switch(tmp_path):
    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef\n")
    one = server_duid("/run/tapswitch.sock", str(machine))
    assert one == server_duid("/run/tapswitch.sock", str(machine))
    assert one != server_duid("/run/other.sock", str(machine))
    assert one[:2] == b"\x00\x04" and len(one) == 18
