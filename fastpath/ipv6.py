"""IPv6 as the fast path reads it, written once for the reference and the slow path:
the extension-header chain and its bounds, the ICMPv6 types the switch keeps for
itself, and the address classes the forwarding rules test.  The compiled core has the
same in C (fastpath/ipv6.pxi); the differential tests hold the two together.

The chain.  From the fixed header's next-header field, these are walked: hop-by-hop
options (0, only right after the fixed header, RFC 8200 4.1), routing (43), destination
options (60), fragment (44) and the authentication header (51, so that what it carries
is seen).  Anything else is the upper layer (TCP, UDP, ICMPv6, ESP, no next header, ...).
A fragment header with a non-zero offset ends the walk: the upper layer is in the first
fragment, and a later one has none (``FRAGMENT``).  A chain is refused -- a counted
``bad_extension_header`` drop -- when a header runs past the payload length, when it
has more than ``MAX_EXT_HEADERS`` headers or more than ``MAX_EXT_BYTES`` bytes of them,
or when hop-by-hop options are not first.  The bounds are what hosts send (one or two
headers, a routing header of a few segments) with room; a longer chain is how filters
are evaded (RFC 9098), and it is work per frame.
"""
import ipaddress

__all__ = ["ETHERTYPE", "HEADER_LEN", "MAX_EXT_HEADERS", "MAX_EXT_BYTES", "FRAGMENT",
           "ICMPV6", "ND_TYPES", "MLD_TYPES", "walk", "is_martian_source", "is_link_local",
           "multicast_scope", "LINK_SCOPE", "group_mac", "solicited_node", "is_solicited_node"]

ETHERTYPE = 0x86DD
HEADER_LEN = 40
MAX_EXT_HEADERS = 8
MAX_EXT_BYTES = 256
FRAGMENT = 256                       # the "upper layer" of a non-first fragment: unknown
HOP_BY_HOP, ROUTING, FRAGMENT_HEADER, DEST_OPTS, AUTH = 0, 43, 44, 60, 51
ICMPV6 = 58
ND_TYPES = frozenset(range(133, 138))          # RS, RA, NS, NA, redirect
MLD_TYPES = frozenset((130, 131, 132, 143))    # query, v1 report, done, v2 report
LINK_SCOPE = 2                                 # ff02::/16 and the like: the sender's link
SOLICITED_NODE = int(ipaddress.IPv6Address("ff02::1:ff00:0"))  # /104, RFC 4291 2.7.1


def walk(packet):
    """(upper-layer protocol, its offset in ``packet``) for an IPv6 packet (fixed header
    first, ``len(packet)`` = 40 + payload length), or None for a refused chain.  The
    protocol is ``FRAGMENT`` for a fragment that does not start at offset 0."""
    nh, off, count = packet[6], HEADER_LEN, 0
    while nh in (HOP_BY_HOP, ROUTING, FRAGMENT_HEADER, DEST_OPTS, AUTH):
        if nh == HOP_BY_HOP and off != HEADER_LEN:
            return None
        if off + 2 > len(packet):
            return None
        count += 1
        if nh == FRAGMENT_HEADER:
            size = 8
        elif nh == AUTH:
            size = (packet[off + 1] + 2) * 4
        else:
            size = (packet[off + 1] + 1) * 8
        if count > MAX_EXT_HEADERS or off + size > len(packet) or off + size - HEADER_LEN > MAX_EXT_BYTES:
            return None
        if nh == FRAGMENT_HEADER and int.from_bytes(packet[off + 2:off + 4], "big") & 0xFFF8:
            return FRAGMENT, off + size
        nh, off = packet[off], off + size
    return nh, off


def is_martian_source(address):
    """Never a source on a link: multicast, loopback, an IPv4-mapped address."""
    address = ipaddress.IPv6Address(address)
    return address.is_multicast or address.is_loopback or address.ipv4_mapped is not None


def is_link_local(address):
    """fe80::/10: an address of the sender's own link, which a frame never leaves with."""
    return ipaddress.IPv6Address(address).is_link_local


def multicast_scope(group):
    """The scope field (RFC 4291 2.7) of a multicast address: 1 interface, 2 link, ..."""
    return ipaddress.IPv6Address(group).packed[1] & 0x0F


def group_mac(group):
    """The Ethernet MAC of an IPv6 multicast group (RFC 2464 7): 33:33 + its low 32 bits."""
    return b"\x33\x33" + ipaddress.IPv6Address(group).packed[12:]


def solicited_node(address):
    """The solicited-node group of an address (RFC 4291 2.7.1): ff02::1:ff + its low 24 bits."""
    return ipaddress.IPv6Address(SOLICITED_NODE | (int(address) & 0xFFFFFF))


def is_solicited_node(group):
    """Is ``group`` a solicited-node group (ff02::1:ff00:0/104)?  Such a group reaches
    the owners of the addresses it is made from, not the whole scope: a kernel joins
    the solicited-node group of each of its addresses, and nobody else does."""
    return int(ipaddress.IPv6Address(group)) >> 24 == SOLICITED_NODE >> 24
