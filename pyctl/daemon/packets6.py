"""Wire formats the slow path reads and writes for IPv6: the header and its
extension-header chain, ICMPv6 (with the pseudo-header checksum), neighbour
discovery's messages and options, and the addresses ND and MLD derive from
others (group MACs, a port's link-local address; solicited-node groups are
``fastpath.ipv6``'s, re-exported here).

Parsers take bytes and return a small record, or None for anything malformed;
they never raise on bad input.  Builders return bytes with every checksum
filled in.  Addresses are ``ipaddress.IPv6Address``, MACs 6-byte ``bytes``
(pyctl.daemon.packets has Ethernet, ARP, IPv4 and ICMP).
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from fastpath.ipv6 import solicited_node  # noqa: F401  (ND's, written once with the fast path's)
from pyctl.daemon.packets import checksum

ETH_P_IPV6 = 0x86DD
IPV6_HLEN = 40
IPPROTO_HOPOPTS = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
EXTENSION_HEADERS = frozenset({IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT,
                               IPPROTO_DSTOPTS})
MAX_EXTENSION_HEADERS = 8         # a longer chain is malformed (the fast path's bound too)

# ICMPv6 types (RFC 4443, 4861, 2710, 3810)
ICMP6_DEST_UNREACH = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_PARAM_PROB = 4
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
MLD_QUERY = 130
MLD_REPORT = 131
MLD_DONE = 132
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
ND_NEIGHBOUR_SOLICIT = 135
ND_NEIGHBOUR_ADVERT = 136
ND_REDIRECT = 137
MLD2_REPORT = 143
ND_TYPES = frozenset(range(ND_ROUTER_SOLICIT, ND_REDIRECT + 1))
MLD_TYPES = frozenset({MLD_QUERY, MLD_REPORT, MLD_DONE, MLD2_REPORT})
# Destination-unreachable codes
UNREACH_NO_ROUTE = 0
UNREACH_ADMIN = 1
UNREACH_BEYOND_SCOPE = 2
UNREACH_ADDRESS = 3
UNREACH_PORT = 4
# Parameter-problem codes
PARAM_HEADER = 0
PARAM_NEXT_HEADER = 1

# ND option types
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
OPT_PREFIX_INFO = 3
OPT_REDIRECTED_HEADER = 4
OPT_MTU = 5
# NA flags (the first byte of the message after the checksum)
NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20

ND_HOP_LIMIT = 255                # RFC 4861: anything else crossed a router
UNSPECIFIED = ipaddress.IPv6Address("::")
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_ROUTERS = ipaddress.IPv6Address("ff02::2")
ALL_MLDV2_ROUTERS = ipaddress.IPv6Address("ff02::16")

_IPV6 = struct.Struct("!IHBB16s16s")


def group_mac(group: ipaddress.IPv6Address) -> bytes:
    """The Ethernet address of an IPv6 group: 33:33 and its last 32 bits (RFC 2464)."""
    return b"\x33\x33" + group.packed[12:]


def link_local_of(mac: bytes) -> ipaddress.IPv6Address:
    """The modified EUI-64 link-local address of a MAC (RFC 4291 2.5.1): the switch's
    address on each of its ports, made from the port's MAC."""
    eui = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui)


def is_unicast_host(ip: ipaddress.IPv6Address) -> bool:
    """True if ``ip`` can name one host as a source: not unspecified, loopback,
    multicast or IPv4-mapped."""
    return not (ip.is_unspecified or ip.is_loopback or ip.is_multicast
                or ip.ipv4_mapped is not None)


class IPv6(NamedTuple):
    tclass: int
    flow: int
    hop_limit: int
    next_header: int          # of the fixed header
    src: ipaddress.IPv6Address
    dst: ipaddress.IPv6Address
    upper: int                # the upper layer's protocol, past the extension headers
    upper_offset: int         # where it starts in ``datagram``
    upper_field: int          # the offset of the next-header field that names it
    frag_offset: int          # of a fragment header, in 8-byte units (0: none or first)
    more_fragments: bool
    router_alert: bool        # a hop-by-hop Router Alert option (MLD carries one)
    datagram: bytes           # header + payload, Ethernet padding removed

    @property
    def payload(self) -> bytes:
        """What follows the fixed header (extension headers included)."""
        return self.datagram[IPV6_HLEN:]

    @property
    def upper_data(self) -> bytes:
        return self.datagram[self.upper_offset:]


def parse_ipv6(payload: bytes) -> IPv6 | None:
    """A complete IPv6 datagram with a well-formed chain of at most
    ``MAX_EXTENSION_HEADERS`` extension headers (jumbograms are refused)."""
    if len(payload) < IPV6_HLEN:
        return None
    word, length, nh, hops, src, dst = _IPV6.unpack_from(payload)
    if word >> 28 != 6 or IPV6_HLEN + length > len(payload) or length == 0 and nh == IPPROTO_HOPOPTS:
        return None
    datagram = bytes(payload[:IPV6_HLEN + length])
    chain = _walk(datagram, nh)
    if chain is None:
        return None
    upper, offset, field, frag_offset, more, alert = chain
    return IPv6((word >> 20) & 0xFF, word & 0xFFFFF, hops, nh, ipaddress.IPv6Address(src),
                ipaddress.IPv6Address(dst), upper, offset, field, frag_offset, more, alert,
                datagram)


def _walk(datagram: bytes, nh: int):
    """(upper protocol, its offset, the offset of the field naming it, fragment offset,
    more fragments, router alert)."""
    offset, field, frag_offset, more, alert = IPV6_HLEN, 6, 0, False, False
    fragment_seen = False
    for count in range(MAX_EXTENSION_HEADERS + 1):
        if nh not in EXTENSION_HEADERS:
            return nh, offset, field, frag_offset, more, alert
        if count == MAX_EXTENSION_HEADERS or offset + 8 > len(datagram):
            return None
        if nh == IPPROTO_FRAGMENT:
            if fragment_seen:
                return None                          # two fragment headers
            word = struct.unpack_from("!H", datagram, offset + 2)[0]
            frag_offset, more, size, fragment_seen = word >> 3, bool(word & 1), 8, True
        else:
            if nh == IPPROTO_HOPOPTS and offset != IPV6_HLEN:
                return None                          # hop-by-hop only right after the header
            size = (datagram[offset + 1] + 1) * 8
            if offset + size > len(datagram):
                return None
            if nh == IPPROTO_HOPOPTS:
                alert = _router_alert(datagram[offset + 2:offset + size])
                if alert is None:
                    return None
        nh, field, offset = datagram[offset], offset, offset + size
    return None


def _router_alert(options: bytes):
    """True if the hop-by-hop options hold a Router Alert; None if malformed."""
    i, found = 0, False
    while i < len(options):
        kind = options[i]
        if kind == 0:                                # Pad1
            i += 1
            continue
        if i + 2 > len(options) or i + 2 + options[i + 1] > len(options):
            return None
        if kind == 5 and options[i + 1] == 2:
            found = True
        i += 2 + options[i + 1]
    return found


def pseudo_header(src, dst, length: int, proto: int) -> bytes:
    return src.packed + dst.packed + struct.pack("!IxxxB", length, proto)


def icmp6_checksum(src, dst, message: bytes) -> int:
    """The ICMPv6 checksum (0 when ``message`` carries a valid one)."""
    return checksum(pseudo_header(src, dst, len(message), IPPROTO_ICMPV6) + message)


class Icmp6(NamedTuple):
    type: int
    code: int
    body: bytes               # everything after the checksum


def parse_icmp6(ip: IPv6) -> Icmp6 | None:
    """The ICMPv6 message of an unfragmented datagram, its checksum checked."""
    if ip.upper != IPPROTO_ICMPV6 or ip.frag_offset or ip.more_fragments:
        return None
    message = ip.upper_data
    if len(message) < 4 or icmp6_checksum(ip.src, ip.dst, message) != 0:
        return None
    return Icmp6(message[0], message[1], message[4:])


def build_icmp6(src, dst, itype: int, code: int, body: bytes) -> bytes:
    """An ICMPv6 message from ``src`` to ``dst`` (they enter the checksum)."""
    head = bytes([itype, code, 0, 0]) + body
    csum = icmp6_checksum(src, dst, head)
    return bytes([itype, code]) + csum.to_bytes(2, "big") + body


def build_ipv6(src, dst, next_header: int, payload: bytes, *, hop_limit: int = 64,
               tclass: int = 0, flow: int = 0) -> bytes:
    word = (6 << 28) | (tclass << 20) | flow
    return _IPV6.pack(word, len(payload), next_header, hop_limit, src.packed, dst.packed) + payload


def decrement_hop_limit(datagram: bytes) -> bytes:
    """The datagram with its hop limit one lower (no header checksum in IPv6).
    The caller checks that it is above 1 first."""
    b = bytearray(datagram)
    b[7] -= 1
    return bytes(b)


# -- neighbour discovery ---------------------------------------------------------------

class NdOptions(NamedTuple):
    source_lladdr: bytes | None
    target_lladdr: bytes | None
    prefixes: tuple           # ((network, on_link, autonomous, valid, preferred), ...)
    mtu: int | None


def parse_nd_options(data: bytes) -> NdOptions | None:
    """RFC 4861 4.6: a sequence of (type, length in 8 bytes, ...); a zero length, one
    past the end, or a link-layer option that is not 8 bytes is malformed."""
    source = target = mtu = None
    prefixes = []
    i = 0
    while i < len(data):
        if i + 2 > len(data) or data[i + 1] == 0 or i + data[i + 1] * 8 > len(data):
            return None
        kind, size = data[i], data[i + 1] * 8
        body = data[i:i + size]
        if kind in (OPT_SOURCE_LLADDR, OPT_TARGET_LLADDR):
            if size != 8:
                return None
            if kind == OPT_SOURCE_LLADDR:
                source = bytes(body[2:8])
            else:
                target = bytes(body[2:8])
        elif kind == OPT_PREFIX_INFO:
            if size != 32 or body[2] > 128:
                return None
            plen, flags, valid, preferred = body[2], body[3], *struct.unpack_from("!II", body, 4)
            network = ipaddress.IPv6Network((bytes(body[16:32]), plen), strict=False)
            prefixes.append((network, bool(flags & 0x80), bool(flags & 0x40), valid, preferred))
        elif kind == OPT_MTU:
            if size != 8:
                return None
            mtu = struct.unpack_from("!I", body, 4)[0]
        i += size
    return NdOptions(source, target, tuple(prefixes), mtu)


class Solicitation(NamedTuple):
    target: ipaddress.IPv6Address
    options: NdOptions


class Advertisement(NamedTuple):
    flags: int                # NA_ROUTER | NA_SOLICITED | NA_OVERRIDE
    target: ipaddress.IPv6Address
    options: NdOptions


def _target_and_options(body: bytes):
    """(target, options) of a solicitation's or advertisement's body (after the ICMPv6
    checksum: 4 bytes of flags or reserved, the target, options); None if malformed."""
    if len(body) < 20:
        return None
    options = parse_nd_options(body[20:])
    target = ipaddress.IPv6Address(bytes(body[4:20]))
    if options is None or target.is_multicast:
        return None
    return target, options


def parse_solicitation(body: bytes) -> Solicitation | None:
    """A neighbour solicitation's body (after the ICMPv6 checksum)."""
    found = _target_and_options(body)
    return None if found is None else Solicitation(*found)


def parse_advertisement(body: bytes) -> Advertisement | None:
    """A neighbour advertisement's body (after the ICMPv6 checksum)."""
    found = _target_and_options(body)
    return None if found is None else Advertisement(body[0] & 0xE0, *found)


def lladdr_option(kind: int, mac: bytes) -> bytes:
    return bytes([kind, 1]) + mac


def build_solicitation(target, source_mac: bytes | None) -> bytes:
    """A neighbour solicitation's body; ``source_mac`` None (DAD: from ::) adds no option."""
    body = bytes(4) + target.packed
    return body if source_mac is None else body + lladdr_option(OPT_SOURCE_LLADDR, source_mac)


def build_advertisement(target, flags: int, target_mac: bytes) -> bytes:
    return bytes([flags, 0, 0, 0]) + target.packed + lladdr_option(OPT_TARGET_LLADDR, target_mac)


def build_router_advertisement(source_mac: bytes, mtu: int, prefixes, *, hop_limit: int = 64,
                               lifetime: int = 1800, valid: int = 2592000,
                               preferred: int = 604800, managed: bool = False,
                               autonomous: bool = True) -> bytes:
    """A router advertisement's body: the router's MAC, the link's MTU, and each prefix
    on-link (and autonomous when /64 and ``autonomous``).  ``managed``: the managed and
    other-configuration flags (addresses and the rest from DHCPv6), else both off."""
    flags = 0xC0 if managed else 0
    body = struct.pack("!BBHII", hop_limit, flags, lifetime, 0, 0)
    body += lladdr_option(OPT_SOURCE_LLADDR, source_mac)
    body += struct.pack("!BBHI", OPT_MTU, 1, 0, mtu)
    for network in prefixes:
        flags = 0x80 | (0x40 if autonomous and network.prefixlen == 64 else 0)
        body += struct.pack("!BBBBIII", OPT_PREFIX_INFO, 4, network.prefixlen, flags, valid,
                            preferred, 0) + network.network_address.packed
    return body
