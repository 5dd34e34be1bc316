"""Parsing and validation of what the control plane is given: addresses,
networks, multicast groups, MACs and names.

Each ``parse_*`` returns a canonical value or raises ``InvalidArgument``
with a message that quotes the input. Both families follow the same rules
where they apply; IPv6 adds its own: link-local addresses (fe80::/10) belong
to a link, not to a namespace (every port has one, made from its MAC), so they
are neither held nor routed, and multicast groups of link scope or below
(ff00::/16 .. ff02::/16, like 224.0.0.0/24) are never joined.
"""
import ipaddress
import re

from pyctl.errors import InvalidArgument

__all__ = [
    "LOOPBACK_INTERFACES", "LIMITED_BROADCAST", "IPV6_LINK_LOCAL",
    "parse_interface", "parse_ip", "parse_network", "parse_group", "parse_mac",
    "check_namespace_name", "check_port_name", "check_netns_name", "sort_key",
    "is_link_scope_group", "default_network",
]

# Always present in every namespace, never pushable nor deletable.
LOOPBACK_INTERFACES = (ipaddress.ip_interface("127.0.0.1/8"), ipaddress.ip_interface("::1/128"))
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
IPV6_LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")
_IPV4_LINK_GROUPS = ipaddress.IPv4Network("224.0.0.0/24")
_DEFAULT = {4: ipaddress.IPv4Network("0.0.0.0/0"), 6: ipaddress.IPv6Network("::/0")}

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_PREFIX_DIGITS = re.compile(r"[0-9]{1,3}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_NAMESPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_PORT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")  # IFNAMSIZ - 1
_NETNS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
# The names' forms as regular expressions (whole-string), for the config file's JSON Schema.
NAME_PATTERNS = {"namespace": _NAMESPACE_NAME.pattern, "ifname": _PORT_NAME.pattern,
                 "netns": _NETNS_NAME.pattern, "mac": "[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}"}


def _ip_from_text(text, what):
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: not an IPv4 or IPv6 address") from None
    _refuse_scoped(ip, text, what)
    return ip


def _refuse_scoped(ip, text, what):
    if ip.version == 6 and (ip.scope_id is not None or ip.ipv4_mapped is not None):
        raise InvalidArgument(f"invalid {what} {text!r}: use a plain IPv6 address "
                              f"(no zone index, no IPv4-mapped form)")


def _split_prefix(value, what):
    """``(ip, prefixlen)`` from ``"A/N"`` text or an ipaddress interface/network object."""
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return value.ip, value.network.prefixlen
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value.network_address, value.prefixlen
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {what} {value!r}: expected text like '10.0.0.5/24'")
    text, slash, prefix = value.partition("/")
    if not slash:
        raise InvalidArgument(f"invalid {what} {value!r}: the prefix length is required "
                              f"(e.g. '{value}/24')")
    ip = _ip_from_text(text, what)
    if not _PREFIX_DIGITS.fullmatch(prefix):
        raise InvalidArgument(f"invalid {what} {value!r}: the prefix length must be a number")
    if int(prefix) > ip.max_prefixlen:
        raise InvalidArgument(f"invalid {what} {value!r}: prefix length {int(prefix)} "
                              f"is longer than {ip.max_prefixlen}")
    return ip, int(prefix)


def parse_interface(value, what="address"):
    """An interface address (host address + prefix) a namespace can own.

    ``10.0.0.5/24`` is fine (host bits are the point). Refused: no prefix, a
    prefix longer than the family allows, loopback, multicast, 0.0.0.0/8 and
    ``::``, 255.255.255.255, IPv6 link-local (fe80::/10: a link's, not a
    namespace's), and for IPv4 prefixes up to /30 the network and broadcast
    addresses of the subnet (``10.0.0.0/24``, ``10.0.0.255/24``).
    """
    ip, prefix = _split_prefix(value, what)
    iface = ipaddress.ip_interface((ip, prefix))
    shown = str(iface)
    if ip.is_loopback:
        raise InvalidArgument(f"invalid {what} {shown!r}: loopback addresses are built in, "
                              f"never created, deleted or pushed")
    if ip.is_multicast:
        raise InvalidArgument(f"invalid {what} {shown!r}: a multicast group is joined, not owned")
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        raise InvalidArgument(f"invalid {what} {shown!r}: not a host address")
    if ip == LIMITED_BROADCAST:
        raise InvalidArgument(f"invalid {what} {shown!r}: the limited broadcast address")
    if ip.version == 6 and ip in IPV6_LINK_LOCAL:
        raise InvalidArgument(f"invalid {what} {shown!r}: a link-local address (fe80::/10) "
                              f"belongs to a link, not to a namespace (every port has its own)")
    if ip.version == 4 and prefix <= 30:
        if ip == iface.network.network_address:
            raise InvalidArgument(f"invalid {what} {shown!r}: the network address of "
                                  f"{iface.network}, not a host address")
        if ip == iface.network.broadcast_address:
            raise InvalidArgument(f"invalid {what} {shown!r}: the broadcast address of "
                                  f"{iface.network}, not a host address")
    return iface


def parse_ip(value, what="address"):
    """A bare IP address: text, an ipaddress object, or an IPv4 host-order ``int``."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        _refuse_scoped(value, str(value), what)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0xFFFFFFFF:
            raise InvalidArgument(f"invalid {what} {value!r}: an integer address must be "
                                  f"an IPv4 address in host order (0 .. 2**32-1)")
        return ipaddress.IPv4Address(value)
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {what} {value!r}: expected an IP address")
    if "/" in value:
        raise InvalidArgument(f"invalid {what} {value!r}: expected an address without prefix")
    return _ip_from_text(value, what)


def default_network(version=None):
    """What ``"default"`` means: 0.0.0.0/0, or ::/0 for ``version`` 6 (as ``ip route``
    does, a caller passes the family of the gateway when there is one)."""
    return _DEFAULT[6 if version == 6 else 4]


def parse_network(value, what="destination", version=None):
    """A route destination: ``A/N`` with no host bits set, or ``"default"``: 0.0.0.0/0,
    or ::/0 when ``version`` is 6 (the family of the route's gateway)."""
    if value == "default":
        return default_network(version)
    ip, prefix = _split_prefix(value, what)
    try:
        network = ipaddress.ip_network((ip, prefix))
    except ValueError:
        correct = ipaddress.ip_network((ip, prefix), strict=False)
        raise InvalidArgument(f"invalid {what} {value!s}: host bits are set "
                              f"(did you mean {correct}?)") from None
    if network.prefixlen and (network.is_loopback or network.is_multicast):
        raise InvalidArgument(f"invalid {what} {network}: loopback and multicast "
                              f"destinations are not routed")
    if network.version == 6 and network.prefixlen >= 10 and network.subnet_of(IPV6_LINK_LOCAL):
        raise InvalidArgument(f"invalid {what} {network}: link-local destinations "
                              f"(fe80::/10) are not routed")
    return network


def parse_group(value):
    """A multicast group address (224.0.0.0/4 or ff00::/8), without prefix."""
    ip = parse_ip(value, what="group")
    if not ip.is_multicast:
        raise InvalidArgument(f"invalid group {value!s}: not a multicast address")
    return ip


def is_link_scope_group(group):
    """True for the groups that reach a whole scope without a join and are never
    joined: IPv4 224.0.0.0/24, IPv6 groups of scope link-local or below
    (ff00::/16 reserved, ff01::/16 interface-local, ff02::/16 link-local, with any flags)."""
    if group.version == 4:
        return group in _IPV4_LINK_GROUPS
    return (int(group) >> 112) & 0xF <= 2


def parse_mac(value):
    """A unicast, non-zero MAC as lowercase ``aa:bb:cc:dd:ee:ff``."""
    if not isinstance(value, str) or not _MAC.fullmatch(value.lower()):
        raise InvalidArgument(f"invalid MAC {value!r}: expected six hex pairs "
                              f"separated by ':' (e.g. '02:00:00:00:00:01')")
    mac = value.lower()
    first = int(mac[:2], 16)
    if first & 1:
        raise InvalidArgument(f"invalid MAC {mac!r}: a multicast MAC cannot be a port's address")
    if mac == "00:00:00:00:00:00":
        raise InvalidArgument(f"invalid MAC {mac!r}: the all-zero MAC")
    return mac


def _check_name(name, what, pattern, rule):
    """``name`` matches ``pattern`` and is not only digits (digit strings are ids); else
    InvalidArgument with ``rule``, how such a name is made."""
    if not isinstance(name, str) or not pattern.fullmatch(name) or name.isdigit():
        raise InvalidArgument(f"invalid {what} name {name!r}: use {rule} and not only digits")
    return name


def check_namespace_name(name):
    """1-63 characters of ``[A-Za-z0-9_.-]``, starting alphanumeric, not only digits."""
    return _check_name(name, "namespace", _NAMESPACE_NAME, "1-63 characters of letters, "
                       "digits, '_', '.', '-', starting with a letter or digit")


def check_port_name(name):
    """A Linux interface name (at most 15 characters), not only digits."""
    return _check_name(name, "port", _PORT_NAME, "1-15 characters of letters, digits, '_', "
                       "'.', '-', not starting with '.' or '-'")


def check_netns_name(name):
    """A kernel network namespace name (a file under /run/netns)."""
    if not isinstance(name, str) or not _NETNS_NAME.fullmatch(name):
        raise InvalidArgument(f"invalid kernel network namespace name {name!r}")
    return name


def sort_key(value):
    """Listing order of addresses, interfaces or networks: IPv4 first, then numerically."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return (value.version, int(value.network_address), value.prefixlen)
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return (value.version, int(value.ip), value.network.prefixlen)
    return (value.version, int(value), 0)
