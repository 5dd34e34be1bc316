"""DHCPv6 on the wire (pyctl/daemon/dhcp6_wire.py) against hand-made bytes: a client's
message is read field by field; every malformed or truncated one raises ``Malformed``
naming what is wrong (never another exception, whatever the bytes); a reply is
framed to the client with a UDP checksum another parser (scapy) accepts."""
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6OptIA_NA, DHCP6OptServerId
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from pyctl.daemon import dhcp6_wire as wire
from pyctl.daemon import packets6 as pk6
from tests.support.dhcp6_frames import (CLIENT_LL, CLIENT_MAC, DUID, SWITCH_MAC, V6, frame, ia_na,
                                        message, opt)

def test_a_solicit_is_read_field_by_field():
    body = message(1, opt(1, DUID), opt(8, b"\0\0"), ia_na(7, "fd00::7", t1=10, t2=20),
                   opt(25, struct.pack("!III", 9, 0, 0)), opt(14), opt(6, b"\0\x17"))
    msg = wire.parse_client_message(frame(body))
    assert msg == wire.ClientMessage(1, 0xABCDEF, DUID, None,
                                     (wire.IaNa(7, 10, 20, (V6("fd00::7"),)),), ((25, 9),),
                                     True, CLIENT_LL, CLIENT_MAC)


def test_relay_messages_are_read_without_their_options():
    msg = wire.parse_client_message(frame(message(12) + b"\x00\x01"))    # options not read
    assert msg.msg_type == wire.RELAY_FORW and msg.client_id is None


@pytest.mark.parametrize("make, why", [
    (lambda: frame(message(1, opt(1, DUID)))[:-3], "not_ipv6"),             # IPv6 length past the end
    (lambda: frame(message(1), next_header=6), "not_udp"),
    (lambda: frame(message(1), sport=547), "not_dhcp6_client"),
    (lambda: frame(message(1), dport=546), "not_dhcp6_client"),
    (lambda: frame(message(1), length=7), "udp_length"),
    (lambda: frame(message(1), length=40), "udp_length"),
    (lambda: frame(message(1), csum=0), "udp_checksum"),                    # mandatory in IPv6
    (lambda: frame(message(1), csum=0x1234), "udp_checksum"),
    (lambda: frame(message(1), src=V6("fd00::7")), "source_not_link_local"),
    (lambda: frame(b"\x01\x00\x00"), "short_message"),
    (lambda: frame(message(0)), "message_type"),
    (lambda: frame(message(14)), "message_type"),
    (lambda: frame(message(1, b"\x00\x01\x00")), "option_truncated"),      # head cut short
    (lambda: frame(message(1, b"\x00\x01\x00\x09" + DUID[:5])), "option_truncated"),
    (lambda: frame(message(1, opt(1, b"\x00\x01"))), "duid_length"),
    (lambda: frame(message(1, opt(1, b"\x00\x02" + bytes(129)))), "duid_length"),
    (lambda: frame(message(1, opt(1, DUID), opt(1, DUID))), "option_repeated"),
    (lambda: frame(message(3, opt(2, DUID), opt(2, DUID))), "option_repeated"),
    (lambda: frame(message(1, opt(3, b"\0" * 11))), "ia_length"),
    (lambda: frame(message(1, opt(25, b"\0" * 3))), "ia_length"),
    (lambda: frame(message(1, ia_na(1), ia_na(1))), "ia_repeated"),
    (lambda: frame(message(1, opt(3, bytes(12) + opt(5, bytes(23))))), "iaaddr_length"),
    (lambda: frame(message(1, opt(3, bytes(12) + b"\x00\x05\x00\x20" + bytes(8)))), "option_truncated"),
    (lambda: frame(message(1, opt(3, bytes(12) + opt(5, bytes(24) + b"\x00")))), "option_truncated"),
    (lambda: frame(message(1, *(ia_na(i) for i in range(17)))), "too_many_ias"),
    (lambda: frame(message(1, ia_na(1, *(f"fd00::{i + 1:x}" for i in range(17))))), "too_many_addresses"),
    (lambda: frame(message(1, opt(14, b"\x01"))), "option_length"),
    (lambda: frame(message(1, opt(8, b"\x01"))), "option_length"),
])
def test_malformed_messages_say_what_is_wrong(make, why):
    with pytest.raises(wire.Malformed) as exc:
        wire.parse_client_message(make())
    assert exc.value.args[0] == why


def test_a_fragment_or_an_ipv4_frame_is_not_a_message():
    fragment = bytes([17, 0, 0, 1, 0, 0, 0, 1])                  # offset 0, more fragments
    whole = frame(message(1, opt(1, DUID)))
    ip = bytearray(whole[14:54])
    ip[6] = 44
    ip[4:6] = (len(whole) - 54 + 8).to_bytes(2, "big")
    fragmented = whole[:14] + bytes(ip) + fragment + whole[54:]
    for bad, why in ((fragmented, "not_udp"), (whole[:12] + b"\x08\x00" + whole[14:], "not_ipv6"),
                     (whole[:10], "not_ipv6")):
        with pytest.raises(wire.Malformed) as exc:
            wire.parse_client_message(bad)
        assert exc.value.args[0] == why


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 13))
def test_any_bytes_parse_or_raise_malformed(options, msg_type):
    try:
        wire.parse_client_message(frame(message(msg_type, options)))
    except wire.Malformed:
        pass


def test_a_message_cut_inside_an_option_is_refused():
    """Cut after each byte (lengths rebuilt around it): read only where an option ends."""
    options = [opt(1, DUID), opt(2, DUID), ia_na(7, "fd00::7", "fd00::8"), opt(8, b"\0\0")]
    body = message(3, *options)
    ends = {4 + sum(map(len, options[:k])) for k in range(len(options) + 1)}
    for cut in range(4, len(body)):
        if cut in ends:
            wire.parse_client_message(frame(body[:cut]))
        else:
            with pytest.raises(wire.Malformed) as exc:
                wire.parse_client_message(frame(body[:cut]))
            assert exc.value.args[0] in ("option_truncated", "ia_length", "iaaddr_length",
                                         "duid_length", "option_length")


def test_a_reply_goes_to_the_client_with_a_checksum_scapy_accepts():
    request = wire.parse_client_message(frame(message(1, opt(1, DUID), ia_na(7))))
    server_ll = pk6.link_local_of(SWITCH_MAC)
    body = wire.option(wire.OPT_SERVERID, b"\x00\x04" + bytes(16)) + \
        wire.ia_na(7, 300, 480, wire.ia_address(V6("fd00::7"), 600, 600))
    out = wire.build_reply(request, wire.ADVERTISE, body, server_mac=SWITCH_MAC, server_ip=server_ll)
    pkt = Ether(out)
    assert (pkt.src, pkt.dst) == ("02:00:00:00:00:01", "02:aa:00:00:00:07")
    assert (pkt[IPv6].src, pkt[IPv6].dst) == (str(server_ll), str(CLIENT_LL))
    assert (pkt[UDP].sport, pkt[UDP].dport) == (547, 546)
    resent = Ether(bytes(pkt))
    del resent[UDP].chksum
    assert Ether(bytes(resent))[UDP].chksum == pkt[UDP].chksum
    advert = pkt[DHCP6_Advertise]
    assert advert.trid == 0xABCDEF
    assert pkt[DHCP6OptServerId].duid is not None
    ia = pkt[DHCP6OptIA_NA]
    assert (ia.iaid, ia.T1, ia.T2) == (7, 300, 480)
    assert [(a.addr, a.preflft, a.validlft) for a in ia.ianaopts] == [("fd00::7", 600, 600)]
