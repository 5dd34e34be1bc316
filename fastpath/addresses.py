"""Argument checks shared by the compiled Datapath and the reference: MACs and IPv4 ints."""
from pyctl.errors import InvalidArgument


def ip_str(ip):
    """Dotted quad of a host-order int (for messages)."""
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


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
