"""Wire formats the slow path reads and writes: Ethernet II, ARP, IPv4, ICMP.

Parsers take bytes and return a small record, or None for anything malformed;
they never raise on bad input.  Builders return bytes with every checksum
filled in.  IPv4 addresses are host-order ``int`` (as everywhere between pyctl
and the fast path), MAC addresses 6-byte ``bytes``.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

ETH_HLEN = 14
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

ARP_REQUEST = 1
ARP_REPLY = 2
ARP_LEN = 28

IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17

IP_MF = 0x2000
IP_DF = 0x4000
IP_OFFMASK = 0x1FFF

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
# Destination-unreachable codes (RFC 792).
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PROT_UNREACH = 2
ICMP_PORT_UNREACH = 3
ICMP_FRAG_NEEDED = 4
# ICMP types that are queries, not errors (RFC 1812 4.3.2.7: errors are never
# sent about an ICMP error; every other ICMP type counts as one).
ICMP_QUERY_TYPES = frozenset({0, 8, 13, 14, 15, 16, 17, 18})

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6sI6sI")
_IPV4 = struct.Struct("!BBHHHBBHII")
_ICMP = struct.Struct("!BBH")


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum of ``data`` (0 when the data carries a valid one)."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_str(ip: int) -> str:
    return str(ipaddress.IPv4Address(ip))


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def is_multicast_mac(mac: bytes) -> bool:
    """True for group (multicast and broadcast) Ethernet addresses."""
    return bool(mac[0] & 1)


def is_unicast_host(ip: int) -> bool:
    """True if ``ip`` can name one host as a source (RFC 1812 4.2.2.11, 5.3.7):
    not 0/8, not loopback, not multicast or class E, not limited broadcast."""
    first = ip >> 24
    return first != 0 and first != 127 and first < 224


class Ethernet(NamedTuple):
    dst: bytes
    src: bytes
    ethertype: int
    payload: bytes


class Arp(NamedTuple):
    op: int
    sha: bytes
    spa: int
    tha: bytes
    tpa: int


class IPv4(NamedTuple):
    tos: int
    total_length: int
    ident: int
    flags_frag: int
    ttl: int
    proto: int
    src: int
    dst: int
    header: bytes     # the header as received, options included
    payload: bytes    # the data after the header, up to total_length
    datagram: bytes   # header + payload, Ethernet padding removed

    @property
    def frag_offset(self) -> int:
        return self.flags_frag & IP_OFFMASK

    @property
    def more_fragments(self) -> bool:
        return bool(self.flags_frag & IP_MF)


class Icmp(NamedTuple):
    type: int
    code: int
    rest: bytes       # the 4 bytes after the checksum (id/seq, unused, ...)
    data: bytes


def parse_ethernet(frame: bytes) -> Ethernet | None:
    if len(frame) < ETH_HLEN:
        return None
    dst, src, ethertype = _ETH.unpack_from(frame)
    return Ethernet(dst, src, ethertype, bytes(frame[ETH_HLEN:]))


def parse_arp(payload: bytes) -> Arp | None:
    """An Ethernet/IPv4 ARP request or reply (trailing padding ignored)."""
    if len(payload) < ARP_LEN:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(payload)
    if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4:
        return None
    if op not in (ARP_REQUEST, ARP_REPLY):
        return None
    return Arp(op, sha, spa, tha, tpa)


def parse_ipv4(payload: bytes) -> IPv4 | None:
    """A complete IPv4 datagram with a valid header checksum."""
    if len(payload) < 20:
        return None
    vihl, tos, total, ident, ff, ttl, proto, _csum, src, dst = _IPV4.unpack_from(payload)
    hlen = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or hlen < 20 or total < hlen or total > len(payload):
        return None
    header = bytes(payload[:hlen])
    if checksum(header) != 0:
        return None
    datagram = bytes(payload[:total])
    return IPv4(tos, total, ident, ff, ttl, proto, src, dst, header, datagram[hlen:], datagram)


def parse_icmp(payload: bytes, verify: bool = True) -> Icmp | None:
    """An ICMP message; with ``verify`` its checksum must be valid."""
    if len(payload) < 8:
        return None
    if verify and checksum(payload) != 0:
        return None
    itype, code, _ = _ICMP.unpack_from(payload)
    return Icmp(itype, code, bytes(payload[4:8]), bytes(payload[8:]))


def build_ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return _ETH.pack(dst, src, ethertype) + payload


def build_arp(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> bytes:
    return _ARP.pack(1, ETH_P_IP, 6, 4, op, sha, spa, tha, tpa)


def build_ipv4(src: int, dst: int, proto: int, payload: bytes, *, ttl: int = 64,
               tos: int = 0, ident: int = 0, df: bool = False) -> bytes:
    """An option-less IPv4 datagram with its header checksum."""
    total = 20 + len(payload)
    ff = IP_DF if df else 0
    head = _IPV4.pack(0x45, tos, total, ident, ff, ttl, proto, 0, src, dst)
    return _IPV4.pack(0x45, tos, total, ident, ff, ttl, proto, checksum(head), src, dst) + payload


def build_icmp(itype: int, code: int, rest: bytes, data: bytes) -> bytes:
    """An ICMP message; ``rest`` is the 4-byte field after the checksum."""
    body = rest + data
    return _ICMP.pack(itype, code, checksum(_ICMP.pack(itype, code, 0) + body)) + body


def _copied_options(options: bytes) -> bytes:
    """The options a fragment after the first carries (RFC 791: those with the copied
    flag), padded to a multiple of 4 bytes."""
    out, i = b"", 0
    while i < len(options):
        kind = options[i]
        if kind == 0:                         # end of options
            break
        if kind == 1:                         # no-operation
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break                             # malformed: copy no more
        length = options[i + 1]
        if kind & 0x80:
            out += options[i:i + length]
        i += length
    return out + bytes(-len(out) % 4)


def fragment_ipv4(ip: IPv4, mtu: int) -> list[bytes] | None:
    """``ip`` cut into fragments of at most ``mtu`` bytes (RFC 791 3.2), or None when
    no fragment could carry data (an MTU below header + 8).  A fragment of a
    fragment keeps its place (offset) and its last piece the original MF flag."""
    head = ip.header
    later = head[:20] + _copied_options(head[20:])
    first_room = (mtu - len(head)) // 8 * 8
    room = (mtu - len(later)) // 8 * 8
    if first_room < 8 or room < 8:
        return None
    data, base = ip.payload, ip.frag_offset
    out, at = [], 0
    while at < len(data):
        header = head if at == 0 else later
        size = first_room if at == 0 else room
        piece = data[at:at + size]
        more = at + len(piece) < len(data) or ip.more_fragments
        flags = (ip.flags_frag & IP_DF) | (IP_MF if more else 0) | (base + at // 8)
        fixed = bytearray(header)
        fixed[0] = 0x40 | len(header) // 4
        struct.pack_into("!HHH", fixed, 2, len(header) + len(piece), ip.ident, flags)
        struct.pack_into("!H", fixed, 10, 0)
        struct.pack_into("!H", fixed, 10, checksum(bytes(fixed)))
        out.append(bytes(fixed) + piece)
        at += len(piece)
    return out


def decrement_ttl(datagram: bytes) -> bytes:
    """The datagram with TTL one lower and the header checksum updated (RFC 1624).

    The caller checks that the TTL is above 1 first."""
    b = bytearray(datagram)
    b[8] -= 1
    # TTL is the high byte of word 4: HC' = ~(~HC + ~m + m') with m' = m - 0x0100.
    old = (datagram[8] << 8) | datagram[9]
    new = (b[8] << 8) | b[9]
    s = (~((b[10] << 8) | b[11]) & 0xFFFF) + (~old & 0xFFFF) + new
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into("!H", b, 10, ~s & 0xFFFF)
    return bytes(b)
