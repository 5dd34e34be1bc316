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
``address``          interface address (``10.0.0.5/24``) to give it there
                     (not for attach)
``gateway``          default gateway for the endpoint's side; needs
                     ``address`` and must lie inside its subnet
``dhcp_lease_time``  int 2 .. 2**31-1 seconds: the lease the switch's DHCP
                     server gives on this port (default 3600)
===================  ==========================================================

The switch serves a port by DHCP (pyctl/daemon/dhcp.py) when nothing else configures
its endpoint: a port of kind ``attach``, or one without ``address`` (``dhcp_served``).

Anything else is refused, so a typo never passes silently.
"""
from pyctl.model.addressing import check_netns_name, parse_interface, parse_ip
from pyctl.errors import InvalidArgument

__all__ = ["OFFLOADS", "KINDS", "check_port_options", "dhcp_served", "DEFAULT_LEASE_TIME"]

OFFLOADS = ("csum", "tso4", "tso6", "tso_ecn", "uso4", "uso6")
KINDS = ("tap", "veth", "xdp", "attach", "auto")
TAP_ONLY = ("vnet_hdr", "offloads", "txqueuelen")
NOT_FOR_ATTACH = ("mtu", "netns", "address", "gateway")
DEFAULT_LEASE_TIME = 3600


def _bool(key, value):
    if not isinstance(value, bool):
        raise InvalidArgument(f"port option {key!r} must be true or false, not {value!r}")
    return value


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


def _kind(key, value):
    if value not in KINDS:
        raise InvalidArgument(f"port option {key!r} must be one of {', '.join(KINDS)}, not {value!r}")
    return value


def _netns(key, value):
    return check_netns_name(value)


def _address(key, value):
    return str(parse_interface(value, what=f"port option {key!r}"))


def _gateway(key, value):
    return str(parse_ip(value, what=f"port option {key!r}"))


_CHECKS = {
    "kind": _kind,
    "vnet_hdr": _bool,
    "offloads": _offloads,
    "txqueuelen": _int_range(0, 2**31 - 1),
    "mtu": _int_range(68, 65535),
    "netns": _netns,
    "address": _address,
    "gateway": _gateway,
    "dhcp_lease_time": _int_range(2, 2**31 - 1),
}


def check_port_options(options):
    """A validated, normalised copy of ``options`` (``None`` means no options)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidArgument(f"port options must be a mapping, not {type(options).__name__}")
    out = {}
    for key, value in options.items():
        check = _CHECKS.get(key)
        if check is None:
            raise InvalidArgument(f"unknown port option {key!r} (known: {', '.join(_CHECKS)})")
        out[key] = check(key, value)
    check_kind_combination(out)
    if "gateway" in out:
        if "address" not in out:
            raise InvalidArgument("port option 'gateway' needs option 'address'")
        iface = parse_interface(out["address"])
        gateway = parse_ip(out["gateway"])
        if gateway not in iface.network or gateway == iface.ip:
            raise InvalidArgument(f"port option 'gateway' {gateway} must be another "
                                  f"address inside {iface.network}")
    return out


def check_kind_combination(options):
    """Refuse options the port's kind does not take (checked ``options``)."""
    kind = options.get("kind", "tap")
    for key in TAP_ONLY if kind != "tap" else ():
        if key in options:
            raise InvalidArgument(f"port option {key!r} is a TAP's (kind tap), not for kind {kind} "
                                  f"(a veth or attach port always carries virtio-net headers)")
    for key in NOT_FOR_ATTACH if kind == "attach" else ():
        if key in options:
            raise InvalidArgument(f"port option {key!r} is not for kind attach: the switch "
                                  f"neither moves nor configures an interface it attaches to")


def dhcp_served(options, is_l3):
    """Whether the switch answers DHCP on a port with these (checked) ``options`` of a
    namespace (an L3, ``is_l3``): nothing else configures its endpoint -- an attached
    interface, or no ``address`` option.  An L2's ports (uplinks) never."""
    return bool(is_l3) and (options.get("kind") == "attach" or "address" not in options)
