"""The plan: the fast path's tables as plain, comparable Python data.

A ``Plan`` is what the compiler installs in a ``fastpath.Datapath``, in the
fast path's terms: namespace and port ids, IPv4 addresses as host-order ints,
IPv6 addresses as ``ipaddress.IPv6Address`` (the datapath's API takes both),
MACs as bytes.  IPv6 is a second instance of each address-keyed entry, not a
table of its own: ``addresses`` holds ``(scope, 0x0a000005)`` and ``(scope,
IPv6Address("fd00::5"))`` side by side, ``routes`` IPv4 and IPv6 prefixes
(an IPv6 route's gateway is an ``IPv6Address`` or None, on-link; IPv4's an int,
0 on-link), ``multicast`` both families' groups.  What the datapath's API takes
besides is in the entry's value: an address's owner comes with its subnet's
prefix length (``add_address(scope, ip, owner, plen)``: a sender's subnet is
what its broadcasts reach, two addresses of one subnet talk as on one link), a
port with its ``dhcp_server`` mark, whether the switch serves it by DHCP and,
for a datapath that takes IPv6, its MTU (``set_port(port, ns, mac, mtu,
dhcp_server=, serve_dhcp=)``: too_big, both families).  ``GONE`` stands for "no
entry" where a value is expected (the old or new side of an entry that appears
or goes away).
"""
import ipaddress
from dataclasses import dataclass, field

__all__ = ["Plan", "GONE", "PLAN_TABLES", "FAMILIES", "datapath_families", "fast_path_key",
           "address_of", "network_of", "key_family", "address_owner"]

FAMILIES = (4, 6)


class _Gone:
    def __repr__(self):
        return "GONE"


GONE = _Gone()


@dataclass
class Plan:
    namespaces: dict = field(default_factory=dict)   # ns id -> (scope id, is_l3)
    ports: dict = field(default_factory=dict)        # port id -> (ns id, mac bytes,
    #   dhcp_server, serve_dhcp[, MTU])
    addresses: dict = field(default_factory=dict)    # (scope, ip key) -> (owner ns id,
    #   prefix length of its subnet)
    broadcasts: dict = field(default_factory=dict)   # (scope, directed bcast ip) -> tuple(ns ids):
    #   the L3s of the scope with an address on a subnet, /30 or wider, of that broadcast
    routes: dict = field(default_factory=dict)       # (scope, prefix key, plen) -> (port id, gateway)
    multicast: dict = field(default_factory=dict)    # (scope, group key) -> tuple(member ns ids)
    unresolved: dict = field(default_factory=dict)   # (scope, prefix, plen) -> (L2 name, dst, why):
    #   routes of the model the datapath cannot use
    directed: dict = field(default_factory=dict)     # L2 id -> True: it lets routed directed
    #   broadcasts in (its directed_broadcast option)


PLAN_TABLES = ("namespaces", "ports", "addresses", "broadcasts", "routes", "multicast",
               "unresolved", "directed")


def datapath_families(datapath):
    """The IP versions ``datapath``'s tables take: its ``families`` attribute, or
    (4,) for a datapath that does not say (one built before IPv6): the entries of
    another family then stay in the model and no write of them is tried."""
    families = tuple(getattr(datapath, "families", (4,)))
    if not families or not set(families) <= set(FAMILIES):
        raise ValueError(f"datapath families must be some of {FAMILIES}, not {families!r}")
    return families


def address_owner(value):
    """The owner ns id of a plan ``addresses`` value (it carries the prefix length too)."""
    return value[0]


def key_family(key):
    """The IP version of a plan key: IPv4 keys are ints, IPv6 keys ``IPv6Address``."""
    return 4 if isinstance(key, int) else 6


def fast_path_key(ip):
    """How the fast path's tables key an ``ipaddress`` address: IPv4 as its host-order
    int, IPv6 as itself; None for what stays in the model (loopback, IPv6 link-local)."""
    if ip.is_loopback:
        return None
    if ip.version == 4:
        return int(ip)
    return None if ip.is_link_local else ip


def address_of(key):
    """The ``ipaddress`` address a plan key stands for (``fast_path_key`` undone)."""
    return ipaddress.IPv4Address(key) if isinstance(key, int) else key


def network_of(prefix, plen):
    """The ``ipaddress`` network of a plan route key's prefix and length."""
    return ipaddress.ip_network((address_of(prefix), plen))
