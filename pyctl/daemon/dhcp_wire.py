"""DHCPv4 on the wire (RFC 2131, RFC 2132): what the switch's DHCP server (dhcp.py) reads
-- a client's message in an Ethernet/IPv4/UDP frame -- and writes -- its offer,
acknowledgement or refusal.

``parse_client_message(frame)`` returns a ``ClientMessage`` or raises ``Malformed``
naming what was wrong (the server counts it by that name; nothing else escapes).
``build_reply(...)`` returns the whole frame with every checksum filled in.  IPv4
addresses are host-order ``int``; MACs 6-byte ``bytes``.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from pyctl.daemon.packets import (BROADCAST_MAC, ETH_P_IP, IPPROTO_UDP, build_ethernet,
                                  build_ipv4, checksum, parse_ethernet, parse_ipv4)

__all__ = ["ClientMessage", "Malformed", "parse_client_message", "build_reply",
           "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"]

SERVER_PORT, CLIENT_PORT = 67, 68
MAGIC = 0x63825363
BOOTREQUEST, BOOTREPLY = 1, 2
HTYPE_ETHERNET = 1
FLAG_BROADCAST = 0x8000
MIN_MESSAGE = 300               # BOOTP's minimum (RFC 1542 2.1): replies are padded to it

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
TYPE_NAMES = {DISCOVER: "discover", OFFER: "offer", REQUEST: "request", DECLINE: "decline",
              ACK: "ack", NAK: "nak", RELEASE: "release", INFORM: "inform"}

OPT_PAD, OPT_END = 0, 255
OPT_SUBNET_MASK, OPT_ROUTER, OPT_MTU = 1, 3, 26
OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_OVERLOAD = 50, 51, 52
OPT_MESSAGE_TYPE, OPT_SERVER_ID, OPT_CLIENT_ID = 53, 54, 61

# op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr[16] sname[64] file[128]
_FIXED = struct.Struct("!BBBBIHHIIII16s64s128s")
_UDP = struct.Struct("!HHHH")


class Malformed(ValueError):
    """A frame that is not a usable DHCP client message; ``args[0]`` says what is wrong."""


class ClientMessage(NamedTuple):
    msg_type: int
    xid: int
    flags: int
    ciaddr: int
    giaddr: int
    chaddr: bytes           # the client's hardware address (6 bytes)
    requested: int | None   # option 50
    server_id: int | None   # option 54
    client_id: bytes        # option 61, else the hardware address: who the lease is for
    src_mac: bytes          # the frame's source MAC


def _options(data: bytes) -> dict[int, bytes]:
    """The options after the magic cookie; each option once (RFC 3396's concatenation of
    a repeated option is not needed for what is read here: a repeat is refused)."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == OPT_PAD:
            i += 1
            continue
        if code == OPT_END:
            return out
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            raise Malformed("option_truncated")
        if code in out:
            raise Malformed("option_repeated")
        out[code] = bytes(data[i + 2:i + 2 + data[i + 1]])
        i += 2 + data[i + 1]
    raise Malformed("no_end_option")


def _ip_option(options: dict[int, bytes], code: int) -> int | None:
    value = options.get(code)
    if value is None:
        return None
    if len(value) != 4:
        raise Malformed("option_length")
    return int.from_bytes(value, "big")


def parse_client_message(frame: bytes) -> ClientMessage:
    """The DHCP client message (UDP 68 -> 67) in an Ethernet frame."""
    eth = parse_ethernet(frame)
    if eth is None or eth.ethertype != ETH_P_IP:
        raise Malformed("not_ipv4")
    ip = parse_ipv4(eth.payload)
    if ip is None or ip.proto != IPPROTO_UDP or ip.frag_offset or ip.more_fragments:
        raise Malformed("not_udp")
    if len(ip.payload) < _UDP.size:
        raise Malformed("udp_truncated")
    sport, dport, length, csum = _UDP.unpack_from(ip.payload)
    if (sport, dport) != (CLIENT_PORT, SERVER_PORT):
        raise Malformed("not_dhcp_client")
    if not _UDP.size <= length <= len(ip.payload):
        raise Malformed("udp_length")
    if csum and _udp_sum(ip.src, ip.dst, ip.payload[:length]) != 0:
        raise Malformed("udp_checksum")
    body = ip.payload[_UDP.size:length]
    if len(body) < _FIXED.size + 4:
        raise Malformed("short_message")
    op, htype, hlen, _hops, xid, _secs, flags, ciaddr, _yi, _si, giaddr, chaddr, _sn, _fi = \
        _FIXED.unpack_from(body)
    if op != BOOTREQUEST or htype != HTYPE_ETHERNET or hlen != 6:
        raise Malformed("not_ethernet_request")
    if int.from_bytes(body[_FIXED.size:_FIXED.size + 4], "big") != MAGIC:
        raise Malformed("no_magic_cookie")
    options = _options(body[_FIXED.size + 4:])
    kind = options.get(OPT_MESSAGE_TYPE)
    if kind is None or len(kind) != 1 or kind[0] not in TYPE_NAMES:
        raise Malformed("message_type")
    client_id = options.get(OPT_CLIENT_ID) or chaddr[:6]
    return ClientMessage(kind[0], xid, flags, ciaddr, giaddr, chaddr[:6],
                         _ip_option(options, OPT_REQUESTED_IP), _ip_option(options, OPT_SERVER_ID),
                         client_id, eth.src)


def _udp_sum(src: int, dst: int, segment: bytes) -> int:
    pseudo = struct.pack("!IIBBH", src, dst, 0, IPPROTO_UDP, len(segment))
    return checksum(pseudo + segment)


def build_reply(request: ClientMessage, msg_type: int, *, server_mac: bytes, server_ip: int,
                yiaddr: int = 0, lease_time: int | None = None, mask: int | None = None,
                router: int | None = None, mtu: int | None = None) -> bytes:
    """The server's ``msg_type`` (OFFER, ACK, NAK) answering ``request``, addressed as
    RFC 2131 4.1 says: a NAK broadcast; to ``ciaddr`` when the client has one; broadcast
    when it asked for it; else to the offered address at the client's MAC."""
    opts = bytes([OPT_MESSAGE_TYPE, 1, msg_type]) + bytes([OPT_SERVER_ID, 4]) + server_ip.to_bytes(4, "big")
    if lease_time is not None:
        opts += bytes([OPT_LEASE_TIME, 4]) + lease_time.to_bytes(4, "big")
    if mask is not None:
        opts += bytes([OPT_SUBNET_MASK, 4]) + mask.to_bytes(4, "big")
    if router is not None:
        opts += bytes([OPT_ROUTER, 4]) + router.to_bytes(4, "big")
    if mtu is not None:
        opts += bytes([OPT_MTU, 2]) + mtu.to_bytes(2, "big")
    ciaddr = request.ciaddr if msg_type == ACK else 0
    body = _FIXED.pack(BOOTREPLY, HTYPE_ETHERNET, 6, 0, request.xid, 0, request.flags, ciaddr,
                       yiaddr, 0, request.giaddr, request.chaddr.ljust(16, b"\0"), b"", b"")
    body += MAGIC.to_bytes(4, "big") + opts + bytes([OPT_END])
    body = body.ljust(MIN_MESSAGE, b"\0")
    if msg_type == NAK or (request.flags & FLAG_BROADCAST and not request.ciaddr):
        dst_ip, dst_mac = 0xFFFFFFFF, BROADCAST_MAC
    elif request.ciaddr:
        dst_ip, dst_mac = request.ciaddr, request.src_mac
    else:
        dst_ip, dst_mac = yiaddr, request.chaddr
    segment = _UDP.pack(SERVER_PORT, CLIENT_PORT, _UDP.size + len(body), 0) + body
    csum = _udp_sum(server_ip, dst_ip, segment) or 0xFFFF
    segment = segment[:6] + csum.to_bytes(2, "big") + segment[8:]
    return build_ethernet(dst_mac, server_mac, ETH_P_IP,
                          build_ipv4(server_ip, dst_ip, IPPROTO_UDP, segment))
