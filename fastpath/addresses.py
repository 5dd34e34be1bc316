"""Argument checks shared by the compiled Datapath and the reference: MACs, IPv4 ints,
prefix lengths, groups, flags."""
import ipaddress

from fastpath.errors import InvalidArgument


def ip_str(ip):
    """Dotted quad of a host-order int (for messages)."""
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


def addr_str(family, address):
    """An address of either family as people write it (for messages)."""
    return ip_str(address) if family == 4 else str(ipaddress.IPv6Address(address))


def mac_bytes_to_int(mac, what="MAC"):
    """A 6-byte unicast MAC as the int the tables hold (wire order, little-endian load)."""
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        raise InvalidArgument(f"{what} must be 6 bytes, not {mac!r}")
    v = int.from_bytes(mac, "little")
    if v & 1 or v == 0:
        raise InvalidArgument(f"{what} {bytes(mac).hex(':')} is not a unicast address")
    return v


def check_ip(ip, what="address"):
    """An IPv4 host-order int a namespace may own (no 0/8, 127/8, multicast or class E)."""
    if not isinstance(ip, int) or not 0 <= ip <= 0xFFFFFFFF:
        raise InvalidArgument(f"{what} must be an IPv4 address as an int, not {ip!r}")
    first = ip >> 24
    if first == 0 or first == 127 or first >= 224:
        raise InvalidArgument(f"{what} {ip_str(ip)} is not a unicast host address")
    return ip


def check_plen(plen, what="prefix length"):
    """The prefix length of an IPv4 address's subnet: an int in 1..32."""
    if isinstance(plen, bool) or not isinstance(plen, int) or not 1 <= plen <= 32:
        raise InvalidArgument(f"{what} {plen!r} is not in 1..32")
    return plen


def check_flag(value, what):
    """A real bool (a table flag)."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{what} must be True or False, not {value!r}")
    return value


def check_group(group_ip):
    """A multicast group the group tables hold: 224.0.0.0/4 outside link-local 224.0.0.0/24."""
    if not isinstance(group_ip, int) or not 0 <= group_ip <= 0xFFFFFFFF or group_ip >> 28 != 0xE:
        raise InvalidArgument(f"group {group_ip!r} is not an IPv4 multicast address as an int")
    if group_ip >> 8 == 0xE00000:
        raise InvalidArgument(f"group {ip_str(group_ip)} is link-local (224.0.0.0/24): "
                              "it reaches the sender's subnet and takes no members")
    return group_ip


def group_str(group_ip):
    """The group for a message, whatever was passed."""
    return ip_str(group_ip) if isinstance(group_ip, int) and 0 <= group_ip <= 0xFFFFFFFF else repr(group_ip)
