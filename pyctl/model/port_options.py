"""Validation of a port's options (what the daemon applies when it opens the TAP).

Known keys and their values:

==============  ==========================================================
``vnet_hdr``    bool: open the TAP with IFF_VNET_HDR
``offloads``    list of ``csum``, ``tso4``, ``tso6``, ``tso_ecn``, ``uso4``,
                ``uso6`` (TUNSETOFFLOAD); stored sorted, without repeats
``txqueuelen``  int 0 .. 2**31-1: the TAP's transmit queue length
``mtu``         int 68 .. 65535
``netns``       name of a kernel network namespace to move the TAP into
``address``     interface address (``10.0.0.5/24``) to give the TAP there
``gateway``     default gateway for the TAP's side; needs ``address`` and
                must lie inside its subnet
``dhcp_server`` bool: the endpoint is a DHCP server the L2 trusts: its
                server messages (UDP from port 67) reach the others and
                DHCP clients' broadcasts reach it (an L3's port; without
                it a tenant's server messages are ``rogue_dhcp`` drops;
                an L2's own ports are trusted anyway)
==============  ==========================================================

Who may set ``netns``, ``address`` and ``gateway`` is ``pyctl.model.kernel_reach``'s
rule (a delegated client: kernel namespaces of its own subtree only).

Anything else is refused, so a typo never passes silently.
"""
from pyctl.model.addressing import check_netns_name, parse_interface, parse_ip
from pyctl.errors import InvalidArgument
from pyctl.model.option_check import checked_options, flag

__all__ = ["OFFLOADS", "check_port_options"]

OFFLOADS = ("csum", "tso4", "tso6", "tso_ecn", "uso4", "uso6")


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


def _netns(key, value):
    return check_netns_name(value)


def _address(key, value):
    return str(parse_interface(value, what=f"port option {key!r}"))


def _gateway(key, value):
    return str(parse_ip(value, what=f"port option {key!r}"))


_CHECKS = {
    "vnet_hdr": flag("port"),
    "offloads": _offloads,
    "txqueuelen": _int_range(0, 2**31 - 1),
    "mtu": _int_range(68, 65535),
    "netns": _netns,
    "address": _address,
    "gateway": _gateway,
    "dhcp_server": flag("port"),
}


def check_port_options(options):
    """A validated, normalised copy of ``options`` (``None`` means no options)."""
    out = checked_options("port", options, _CHECKS)
    if "gateway" in out:
        if "address" not in out:
            raise InvalidArgument("port option 'gateway' needs option 'address'")
        iface = parse_interface(out["address"])
        gateway = parse_ip(out["gateway"])
        if gateway not in iface.network or gateway == iface.ip:
            raise InvalidArgument(f"port option 'gateway' {gateway} must be another "
                                  f"address inside {iface.network}")
    return out
