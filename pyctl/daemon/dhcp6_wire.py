"""DHCPv6 on the wire (RFC 8415): what the switch's DHCPv6 server (dhcp6.py) reads -- a
client's message in an Ethernet/IPv6/UDP frame (546 -> 547) -- and writes -- its
Advertise or Reply, to the client's link-local address at its MAC.

``parse_client_message(frame)`` returns a ``ClientMessage`` or raises ``Malformed``
naming what was wrong (the server counts it by that name; nothing else escapes).  Every
option is a (code, length, data) triple whose length must lie within its container;
the options the server reads must have their RFC's size; the identifiers (DUIDs) 3 to
130 bytes; a message holds at most ``MAX_IAS`` IAs of at most ``MAX_IA_ADDRESSES``
addresses.  Builders (``option``, ``ia_na``, ``ia_address``, ``status``,
``build_reply``) return bytes, the frame with its UDP checksum filled in.  Addresses
are ``ipaddress.IPv6Address``; MACs 6-byte ``bytes``.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from pyctl.daemon import packets6 as pk6
from pyctl.daemon.packets import build_ethernet, checksum, parse_ethernet

__all__ = ["ClientMessage", "IaNa", "Malformed", "parse_client_message", "build_reply",
           "option", "ia_na", "ia_address", "status", "TYPE_NAMES"]

CLIENT_PORT, SERVER_PORT = 546, 547
ALL_SERVERS = ipaddress.IPv6Address("ff02::1:2")     # All_DHCP_Relay_Agents_and_Servers

# message types
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE, RECONFIGURE, \
    INFORMATION_REQUEST, RELAY_FORW, RELAY_REPL = range(1, 14)
TYPE_NAMES = {SOLICIT: "solicit", ADVERTISE: "advertise", REQUEST: "request",
              CONFIRM: "confirm", RENEW: "renew", REBIND: "rebind", REPLY: "reply",
              RELEASE: "release", DECLINE: "decline", RECONFIGURE: "reconfigure",
              INFORMATION_REQUEST: "information_request", RELAY_FORW: "relay_forw",
              RELAY_REPL: "relay_repl"}

# options
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IA_TA, OPT_IAADDR = 1, 2, 3, 4, 5
OPT_PREFERENCE, OPT_ELAPSED_TIME, OPT_STATUS_CODE, OPT_RAPID_COMMIT = 7, 8, 13, 14
OPT_IA_PD = 25
# status codes
SUCCESS, UNSPEC_FAIL, NO_ADDRS_AVAIL, NO_BINDING, NOT_ON_LINK = 0, 1, 2, 3, 4

MIN_DUID, MAX_DUID = 3, 130      # a 2-byte type and at least one byte; RFC 8415 11.1: <= 128 + 2
MAX_IAS = 16
MAX_IA_ADDRESSES = 16
INFINITY = 0xFFFFFFFF

_OPT = struct.Struct("!HH")
_IA = struct.Struct("!III")              # IAID, T1, T2
_IAADDR = struct.Struct("!16sII")        # address, preferred, valid
_UDP = struct.Struct("!HHHH")


class Malformed(ValueError):
    """A frame that is not a usable DHCPv6 client message; ``args[0]`` says what is wrong."""


class IaNa(NamedTuple):
    iaid: int
    t1: int
    t2: int
    addresses: tuple          # IPv6Address each, the IA_NA's IAADDR options in order


class ClientMessage(NamedTuple):
    msg_type: int
    xid: int                  # the 3-byte transaction id
    client_id: bytes | None   # the client's DUID
    server_id: bytes | None   # the server's DUID it names, if any
    ia_nas: tuple             # IaNa each
    other_ias: tuple          # (option code, IAID) of each IA_TA and IA_PD (not served)
    rapid_commit: bool
    src: ipaddress.IPv6Address    # the client's address (link-local)
    src_mac: bytes


def options(data: bytes) -> list[tuple[int, bytes]]:
    """The (code, data) options of ``data``, in order; a length past the end is malformed."""
    out, i = [], 0
    while i < len(data):
        if i + _OPT.size > len(data):
            raise Malformed("option_truncated")
        code, length = _OPT.unpack_from(data, i)
        i += _OPT.size
        if i + length > len(data):
            raise Malformed("option_truncated")
        out.append((code, bytes(data[i:i + length])))
        i += length
    return out


def _duid(value: bytes) -> bytes:
    if not MIN_DUID <= len(value) <= MAX_DUID:
        raise Malformed("duid_length")
    return value


def _ia_na(value: bytes) -> IaNa:
    if len(value) < _IA.size:
        raise Malformed("ia_length")
    iaid, t1, t2 = _IA.unpack_from(value)
    addresses = []
    for code, data in options(value[_IA.size:]):
        if code == OPT_IAADDR:
            if len(data) < _IAADDR.size:
                raise Malformed("iaaddr_length")
            options(data[_IAADDR.size:])             # its own options: well-formed, unread
            if len(addresses) == MAX_IA_ADDRESSES:
                raise Malformed("too_many_addresses")
            addresses.append(ipaddress.IPv6Address(data[:16]))
    return IaNa(iaid, t1, t2, tuple(addresses))


def _udp_sum(src, dst, segment: bytes) -> int:
    return checksum(pk6.pseudo_header(src, dst, len(segment), pk6.IPPROTO_UDP) + segment)


def parse_client_message(frame: bytes) -> ClientMessage:
    """The DHCPv6 client message (UDP 546 -> 547) in an Ethernet frame."""
    eth = parse_ethernet(frame)
    if eth is None or eth.ethertype != pk6.ETH_P_IPV6:
        raise Malformed("not_ipv6")
    ip = pk6.parse_ipv6(eth.payload)
    if ip is None:
        raise Malformed("not_ipv6")
    if ip.upper != pk6.IPPROTO_UDP or ip.frag_offset or ip.more_fragments:
        raise Malformed("not_udp")
    segment = ip.upper_data
    if len(segment) < _UDP.size:
        raise Malformed("udp_truncated")
    sport, dport, length, csum = _UDP.unpack_from(segment)
    if (sport, dport) != (CLIENT_PORT, SERVER_PORT):
        raise Malformed("not_dhcp6_client")
    if length != len(segment):
        raise Malformed("udp_length")
    if csum == 0 or _udp_sum(ip.src, ip.dst, segment) != 0:     # mandatory in IPv6
        raise Malformed("udp_checksum")
    if not ip.src.is_link_local:
        raise Malformed("source_not_link_local")    # RFC 8415 18: a client speaks from those
    body = segment[_UDP.size:]
    if len(body) < 4:
        raise Malformed("short_message")
    msg_type, xid = body[0], int.from_bytes(body[1:4], "big")
    if msg_type not in TYPE_NAMES:
        raise Malformed("message_type")
    if msg_type in (RELAY_FORW, RELAY_REPL):
        return ClientMessage(msg_type, xid, None, None, (), (), False, ip.src, eth.src)
    client_id = server_id = None
    ia_nas, other_ias, rapid = [], [], False
    for code, value in options(body[4:]):
        if code in (OPT_CLIENTID, OPT_SERVERID):
            if (client_id if code == OPT_CLIENTID else server_id) is not None:
                raise Malformed("option_repeated")
            if code == OPT_CLIENTID:
                client_id = _duid(value)
            else:
                server_id = _duid(value)
        elif code in (OPT_IA_NA, OPT_IA_TA, OPT_IA_PD):
            if len(ia_nas) + len(other_ias) == MAX_IAS:
                raise Malformed("too_many_ias")
            if code == OPT_IA_NA:
                ia = _ia_na(value)
                if any(other.iaid == ia.iaid for other in ia_nas):
                    raise Malformed("ia_repeated")
                ia_nas.append(ia)
            else:
                if len(value) < 4:
                    raise Malformed("ia_length")
                other_ias.append((code, int.from_bytes(value[:4], "big")))
        elif code == OPT_RAPID_COMMIT:
            if value:
                raise Malformed("option_length")
            rapid = True
        elif code == OPT_ELAPSED_TIME and len(value) != 2:
            raise Malformed("option_length")
    return ClientMessage(msg_type, xid, client_id, server_id, tuple(ia_nas), tuple(other_ias),
                         rapid, ip.src, eth.src)


# -- building ----------------------------------------------------------------------------

def option(code: int, data: bytes = b"") -> bytes:
    return _OPT.pack(code, len(data)) + data


def status(code: int, message: str = "") -> bytes:
    return option(OPT_STATUS_CODE, code.to_bytes(2, "big") + message.encode())


def ia_address(address, preferred: int, valid: int) -> bytes:
    return option(OPT_IAADDR, _IAADDR.pack(address.packed, preferred, valid))


def ia_na(iaid: int, t1: int, t2: int, inner: bytes = b"", code: int = OPT_IA_NA) -> bytes:
    """An IA_NA (or, ``code``, an IA_PD: the same head) holding the ``inner`` options."""
    return option(code, _IA.pack(iaid, t1, t2) + inner)


def build_reply(request: ClientMessage, msg_type: int, body_options: bytes, *,
                server_mac: bytes, server_ip) -> bytes:
    """The server's ``msg_type`` (ADVERTISE, REPLY) answering ``request``: its transaction
    id and ``body_options`` (the server's identifier, the client's, ...), from the port's
    link-local address ``server_ip`` to the client's address and MAC, hop limit 255."""
    body = bytes([msg_type]) + request.xid.to_bytes(3, "big") + body_options
    segment = _UDP.pack(SERVER_PORT, CLIENT_PORT, _UDP.size + len(body), 0) + body
    csum = _udp_sum(server_ip, request.src, segment) or 0xFFFF
    segment = segment[:6] + csum.to_bytes(2, "big") + segment[8:]
    return build_ethernet(request.src_mac, server_mac, pk6.ETH_P_IPV6,
                          pk6.build_ipv6(server_ip, request.src, pk6.IPPROTO_UDP, segment,
                                         hop_limit=pk6.ND_HOP_LIMIT))
