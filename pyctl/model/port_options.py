"""Validation of a port's options (what the daemon applies when it opens the port).

Known keys and their values:

===================  ==========================================================
``kind``             how the switch serves the port (docs/io.md): ``tap`` (the
                     default: a TAP it creates), ``veth`` (a veth pair, the
                     switch's end on AF_PACKET rings), ``xdp`` (a veth pair, the
                     switch's end on AF_XDP), ``attach`` (an interface that
                     exists already in the switch's namespace, named like the
                     port, on AF_PACKET rings, neither moved nor configured),
                     ``auto`` (the best kind this machine allows)
``vnet_hdr``         bool: open the TAP with IFF_VNET_HDR (kind tap)
``offloads``         list of ``csum``, ``tso4``, ``tso6``, ``tso_ecn``, ``uso4``,
                     ``uso6`` (TUNSETOFFLOAD); stored sorted, without repeats
                     (kind tap)
``txqueuelen``       int 0 .. 2**31-1: the TAP's transmit queue length (kind tap)
``mtu``              int 68 .. 65535 (not for attach: the interface's own counts)
``netns``            name of a kernel network namespace to put the endpoint's
                     side (the TAP, the veth's other end) into (not for attach)
``address``          interface address (``10.0.0.5/24``) to give it there, or a
                     list of them mixing IPv4 and IPv6 (``["10.0.0.5/24",
                     "fd00::5/64"]``, at most 16, no IP twice) (not for attach)
``gateway``          default gateway for the endpoint's side, or a list of at
                     most one per family; each needs an ``address`` of its
                     family and must lie inside its subnet
``router``           bool: a router stands behind the port: the IPv6 router
                     advertisements and redirects it sends reach the scope's
                     other ports (without it they are dropped: a tenant is no
                     router)
``dhcp_server``      bool: the endpoint is a DHCP server the L2 trusts: its
                     server messages (UDP from port 67; DHCPv6: from 547)
                     reach the others and DHCP clients' broadcasts (DHCPv6:
                     to ff02::1:2) reach it (an L3's port; without
                     it a tenant's server messages are ``rogue_dhcp`` drops;
                     an L2's own ports are trusted anyway)
``dhcp_lease_time``  int 2 .. 2**31-1 seconds: the lease the switch's DHCP
                     server gives on this port (default 3600)
``ring_frames``      int, a power of two 64 .. 16384: the frames the switch's
                     receive ring holds (kinds veth and attach: AF_PACKET slots,
                     rounded up to whole blocks; xdp: UMEM chunks per
                     direction; default 1024).  A deeper ring rides out longer
                     stalls of the packet thread (``ring_rx_drops``) at the
                     cost of kernel memory: at most 128 MiB of receive ring per
                     port, checked when the port opens and its slot size (its
                     MTU's) is known (``pyctl.daemon.ring_frames``)
===================  ==========================================================

The switch serves a port by DHCPv4 (pyctl/daemon/dhcp.py) when nothing else configures
its endpoint: a port of kind ``attach``, or one without ``address`` (``dhcp_served``).

A single ``address`` or ``gateway`` is stored as the string it is, a list as
a list; ``port_interfaces`` and ``port_gateways`` read either.  A port with an
IPv6 address needs an ``mtu`` of at least 1280 (below it the kernel turns
IPv6 off on the link).  Who may set ``netns``, ``address`` and ``gateway`` is
``pyctl.model.kernel_reach``'s rule (a delegated client: kernel namespaces of its
own subtree only).  Anything else is refused, so a typo never passes silently.
"""
import ipaddress

from pyctl.model.addressing import check_netns_name, parse_interface, parse_ip
from pyctl.errors import InvalidArgument
from pyctl.model.option_check import checked_options, flag

__all__ = ["OFFLOADS", "KINDS", "RING_FRAMES", "MAX_PORT_ADDRESSES", "IPV6_MIN_MTU", "DEFAULT_MTU",
           "DEFAULT_LEASE_TIME", "check_port_options", "check_port_option", "port_interfaces",
           "port_gateways", "check_kind_combination", "dhcp_served"]

OFFLOADS = ("csum", "tso4", "tso6", "tso_ecn", "uso4", "uso6")
KINDS = ("tap", "veth", "xdp", "attach", "auto")
TAP_ONLY = ("vnet_hdr", "offloads", "txqueuelen")
RING_ONLY = ("ring_frames",)          # the ring kinds' (not tap's, nor auto's: it may be tap)
RING_FRAMES = (64, 16384)
NOT_FOR_ATTACH = ("mtu", "netns", "address", "gateway")
MAX_PORT_ADDRESSES = 16
IPV6_MIN_MTU = 1280       # RFC 8200 5: every IPv6 link carries 1280-byte packets
DEFAULT_MTU = 1500        # a TAP's, when the port sets none
DEFAULT_LEASE_TIME = 3600


def _int_range(low, high):
    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidArgument(f"port option {key!r} must be an integer in "
                                  f"{low} .. {high}, not {value!r}")
        return value
    return check


def _offloads(key, value):
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"port option {key!r} must be a list of {', '.join(OFFLOADS)}")
    unknown = [item for item in value if item not in OFFLOADS]
    if unknown:
        raise InvalidArgument(f"port option {key!r}: unknown offload {unknown[0]!r} "
                              f"(known: {', '.join(OFFLOADS)})")
    return sorted(set(value))


def _ring_frames(key, value):
    low, high = RING_FRAMES
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high \
            or value & (value - 1):
        raise InvalidArgument(f"port option {key!r} must be a power of two in {low} .. {high}, "
                              f"not {value!r}")
    return value


def _kind(key, value):
    if value not in KINDS:
        raise InvalidArgument(f"port option {key!r} must be one of {', '.join(KINDS)}, not {value!r}")
    return value


def _netns(key, value):
    return check_netns_name(value)


def _one_or_list(key, value, parse, example):
    """``parse`` (``parse_interface``, ``parse_ip``) applied to a string, or to each string
    of a non-empty list: (the option's value, its items as text; the parsed items)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise InvalidArgument(f"port option {key!r} is an empty list: leave it out")
    if len(items) > MAX_PORT_ADDRESSES:
        raise InvalidArgument(f"port option {key!r} has {len(items)} items; "
                              f"at most {MAX_PORT_ADDRESSES}")
    bad = next((item for item in items if not isinstance(item, str)), None)
    if bad is not None:
        raise InvalidArgument(f"port option {key!r} must be a string or a list of them "
                              f"(e.g. {example}), not {bad!r}")
    parsed = [parse(item, what=f"port option {key!r}") for item in items]
    texts = [str(item) for item in parsed]
    return (texts if isinstance(value, (list, tuple)) else texts[0]), parsed


def _address(key, value):
    out, ifaces = _one_or_list(key, value, parse_interface, '["10.0.0.5/24", "fd00::5/64"]')
    ips = [iface.ip for iface in ifaces]
    twice = next((ip for i, ip in enumerate(ips) if ip in ips[:i]), None)
    if twice is not None:
        raise InvalidArgument(f"port option {key!r} names {twice} twice")
    return out


def _gateway(key, value):
    out, gateways = _one_or_list(key, value, parse_ip, '["10.0.0.1", "fd00::1"]')
    versions = [ip.version for ip in gateways]
    if len(set(versions)) != len(versions):
        raise InvalidArgument(f"port option {key!r} has two IPv{versions[0]} gateways: "
                              f"a port has at most one default route per family")
    return out


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def port_interfaces(options):
    """The interfaces of a port's ``address`` option (one string or a list), in order."""
    return [ipaddress.ip_interface(text) for text in _as_list(options.get("address"))]


def port_gateways(options):
    """The addresses of a port's ``gateway`` option (one string or a list), in order."""
    return [ipaddress.ip_address(text) for text in _as_list(options.get("gateway"))]


_CHECKS = {
    "kind": _kind,
    "vnet_hdr": flag("port"),
    "offloads": _offloads,
    "txqueuelen": _int_range(0, 2**31 - 1),
    "mtu": _int_range(68, 65535),
    "netns": _netns,
    "address": _address,
    "gateway": _gateway,
    "router": flag("port"),
    "dhcp_server": flag("port"),
    "dhcp_lease_time": _int_range(2, 2**31 - 1),
    "ring_frames": _ring_frames,
}


def check_port_option(key, value):
    """One option's value, checked and normalised alone (``check_port_options`` also
    checks the options against each other)."""
    check = _CHECKS.get(key)
    if check is None:
        raise InvalidArgument(f"unknown port option {key!r} (known: {', '.join(_CHECKS)})")
    return check(key, value)


def check_port_options(options):
    """A validated, normalised copy of ``options`` (``None`` means no options)."""
    out = checked_options("port", options, _CHECKS)
    check_kind_combination(out)
    if "gateway" in out:
        _check_gateways(out)
    if out.get("mtu", IPV6_MIN_MTU) < IPV6_MIN_MTU:
        six = next((i for i in port_interfaces(out) if i.version == 6), None)
        if six is not None:
            raise InvalidArgument(f"port option 'mtu' {out['mtu']} is below {IPV6_MIN_MTU}, "
                                  f"the IPv6 minimum: the port's address {six} needs more")
    return out


def _check_gateways(options):
    if "address" not in options:
        raise InvalidArgument("port option 'gateway' needs option 'address'")
    interfaces = port_interfaces(options)
    for gateway in port_gateways(options):
        same = [i for i in interfaces if i.version == gateway.version]
        if not same:
            raise InvalidArgument(f"port option 'gateway' {gateway} needs an IPv"
                                  f"{gateway.version} address in option 'address'")
        if not any(gateway in i.network and gateway != i.ip for i in same):
            inside = " or ".join(str(i.network) for i in same)
            raise InvalidArgument(f"port option 'gateway' {gateway} must be another "
                                  f"address inside {inside}")


def check_kind_combination(options):
    """Refuse options the port's kind does not take (checked ``options``)."""
    kind = options.get("kind", "tap")
    for key in TAP_ONLY if kind != "tap" else ():
        if key in options:
            raise InvalidArgument(f"port option {key!r} is a TAP's (kind tap), not for kind {kind} "
                                  f"(a veth or attach port always carries virtio-net headers)")
    for key in RING_ONLY if kind in ("tap", "auto") else ():
        if key in options:
            raise InvalidArgument(f"port option {key!r} is for the ring kinds (veth, xdp, attach), "
                                  f"not for kind {kind} (a TAP's queue is its txqueuelen)")
    for key in NOT_FOR_ATTACH if kind == "attach" else ():
        if key in options:
            raise InvalidArgument(f"port option {key!r} is not for kind attach: the switch "
                                  f"neither moves nor configures an interface it attaches to")


def dhcp_served(options, is_l3):
    """Whether the switch answers DHCP on a port with these (checked) ``options`` of a
    namespace (an L3, ``is_l3``): nothing else configures its endpoint -- an attached
    interface, or no ``address`` option.  An L2's ports (uplinks) never, nor a port
    whose endpoint is itself a DHCP server (``dhcp_server``)."""
    return (bool(is_l3) and not options.get("dhcp_server", False)
            and (options.get("kind") == "attach" or "address" not in options))
