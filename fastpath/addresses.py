"""Argument checks shared by the compiled Datapath and the reference: MACs, the addresses
of both families, prefixes, gateways and groups, flags.

The Datapath API takes an IPv4 address as a host-order int and an IPv6 address as an
``ipaddress.IPv6Address`` (a prefix: the network's address + its length); the same methods
take both.  The checks below say which family a value is, refuse what no table may hold
(InvalidArgument) and give the int the tables key by (IPv6: 128 bits); answers go back in
the family they were asked in (``address_value``, ``gateway_value``).
"""
import ipaddress

from fastpath.errors import InvalidArgument
from fastpath.ipv6 import is_solicited_node

V6 = ipaddress.IPv6Address
MAX_PLEN = {4: 32, 6: 128}
ALL_ONES = {4: 0xFFFFFFFF, 6: (1 << 128) - 1}


def ip_str(ip):
    """Dotted quad of a host-order int (for messages)."""
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


def addr_str(family, address):
    """An address of either family as people write it (for messages)."""
    return ip_str(address) if family == 4 else str(V6(address))


def value_str(value):
    """Whatever was passed as an address, for a message."""
    if isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:
        return ip_str(value)
    return str(value) if isinstance(value, V6) else repr(value)


def mac_bytes_to_int(mac, what="MAC"):
    """A 6-byte unicast MAC as the int the tables hold (wire order, little-endian load)."""
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        raise InvalidArgument(f"{what} must be 6 bytes, not {mac!r}")
    v = int.from_bytes(mac, "little")
    if v & 1 or v == 0:
        raise InvalidArgument(f"{what} {bytes(mac).hex(':')} is not a unicast address")
    return v


def family_of(ip, what="address"):
    """4 for an IPv4 address (a host-order int), 6 for an IPv6Address."""
    if isinstance(ip, V6):
        return 6
    if isinstance(ip, int) and 0 <= ip <= 0xFFFFFFFF:
        return 4
    raise InvalidArgument(f"{what} must be an IPv4 address as an int or an IPv6Address, not {ip!r}")


def lookup_key(ip, what="address"):
    """(family, int) of any address of either family (a lookup's argument)."""
    family = family_of(ip, what)
    return family, int(ip)


def check_ip(ip, what="address"):
    """An IPv4 host-order int a namespace may own (no 0/8, 127/8, multicast or class E)."""
    if not isinstance(ip, int) or not 0 <= ip <= 0xFFFFFFFF:
        raise InvalidArgument(f"{what} must be an IPv4 address as an int, not {ip!r}")
    first = ip >> 24
    if first == 0 or first == 127 or first >= 224:
        raise InvalidArgument(f"{what} {ip_str(ip)} is not a unicast host address")
    return ip


def check_ip6(ip, what="address"):
    """An IPv6Address a namespace may own or route through: no multicast, ::, ::1,
    link-local fe80::/10 (an address of one link, never held) or IPv4-mapped."""
    if not isinstance(ip, V6):
        raise InvalidArgument(f"{what} must be an IPv6Address, not {ip!r}")
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local \
            or ip.ipv4_mapped is not None:
        raise InvalidArgument(f"{what} {ip} is not a unicast host address")
    return ip


def host_key(ip, what="address"):
    """(family, int) of an address a namespace may own (a neighbour, a gateway)."""
    if family_of(ip, what) == 4:
        return 4, check_ip(ip, what)
    return 6, int(check_ip6(ip, what))


def onlink_key(family, plen):
    """The on-link prefix length an owned address is stored with (DemuxTable): the
    length of its subnet's prefix, IPv4 1..32 (None: 32), IPv6 0..128 (None: 128, none
    known).  A sender's subnet is what its broadcasts reach; within it frames are
    switched, hop limit / TTL kept."""
    if family == 4:
        if plen is None:
            return 32
        if isinstance(plen, bool) or not isinstance(plen, int) or not 1 <= plen <= 32:
            raise InvalidArgument(f"prefix length {plen!r} is not in 1..32")
        return plen
    if plen is None:
        return 128
    if isinstance(plen, bool) or not isinstance(plen, int) or not 0 <= plen <= 128:
        raise InvalidArgument(f"on-link prefix length {plen!r} is not in 0..128")
    return plen


def prefix_key(prefix, plen):
    """(family, int) of a route's prefix/plen: the length in range, no host bits set."""
    family = family_of(prefix, "prefix")
    bits = MAX_PLEN[family]
    if isinstance(plen, bool) or not isinstance(plen, int) or not 0 <= plen <= bits:
        raise InvalidArgument(f"prefix length {plen!r} is not in 0..{bits}")
    key = int(prefix)
    if key & (ALL_ONES[family] >> plen):
        raise InvalidArgument(f"{addr_str(family, key)}/{plen} has host bits set")
    return family, key


def route_key(prefix, plen):
    """(family, int) of a route to remove, or None for what cannot be one."""
    try:
        return prefix_key(prefix, plen)
    except InvalidArgument:
        return None


def gateway_key(family, gateway):
    """A route's gateway as the next-hop table holds it (0: on-link).  IPv4: 0 or a host
    int; IPv6: None (or 0, the default) or an IPv6Address."""
    if family == 4:
        return 0 if gateway == 0 else check_ip(gateway, "gateway")
    if gateway is None or (isinstance(gateway, int) and not isinstance(gateway, bool) and gateway == 0):
        return 0
    if not isinstance(gateway, V6):
        raise InvalidArgument(f"the gateway of an IPv6 route is an IPv6Address or None, not {gateway!r}")
    return int(check_ip6(gateway, "gateway"))


def check_flag(value, what):
    """A real bool (a table flag)."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{what} must be True or False, not {value!r}")
    return value


def address_value(family, key):
    """An address of ``family`` as the API answers it."""
    return key if family == 4 else V6(key)


def gateway_value(family, key):
    """A next hop's gateway as the API answers it (IPv6 on-link: None)."""
    if family == 4:
        return key
    return None if key == 0 else V6(key)


def check_group(group_ip):
    """A multicast group the group tables hold: 224.0.0.0/4 outside link-local 224.0.0.0/24."""
    if not isinstance(group_ip, int) or not 0 <= group_ip <= 0xFFFFFFFF or group_ip >> 28 != 0xE:
        raise InvalidArgument(f"group {group_ip!r} is not an IPv4 multicast address as an int")
    if group_ip >> 8 == 0xE00000:
        raise InvalidArgument(f"group {ip_str(group_ip)} is link-local (224.0.0.0/24): "
                              "it reaches the sender's subnet and takes no members")
    return group_ip


def group_key(group):
    """(family, int) of a group the group tables hold: IPv4 224.0.0.0/4 outside
    224.0.0.0/24; IPv6 ff00::/8 of a scope wider than link-local, and the solicited-node
    groups (ff02::1:ff00:0/104: their members are the owners of the addresses they are
    made from); other groups of link scope and narrower reach every L3 of the scope, or
    nobody, without an entry."""
    if isinstance(group, V6):
        if not group.is_multicast:
            raise InvalidArgument(f"group {group} is not an IPv6 multicast address")
        if group.packed[1] & 0x0F <= 2 and not is_solicited_node(group):
            raise InvalidArgument(f"group {group} is of link scope or narrower: it reaches every L3 "
                                  "of the scope (or none) and takes no members")
        return 6, int(group)
    return 4, check_group(group)


def group_str(group_ip):
    """The group for a message, whatever was passed."""
    return value_str(group_ip)
