"""The plan: the fast path's tables as plain, comparable Python data.

A ``Plan`` is what the compiler installs in a ``fastpath.Datapath``, in the
fast path's terms: namespace and port ids, IPv4 addresses as host-order ints,
MACs as bytes.  ``GONE`` stands for "no entry" where a value is expected (the
old or new side of an entry that appears or goes away).
"""
from dataclasses import dataclass, field

__all__ = ["Plan", "GONE", "PLAN_TABLES", "fast_path_ipv4"]


class _Gone:
    def __repr__(self):
        return "GONE"


GONE = _Gone()


@dataclass
class Plan:
    namespaces: dict = field(default_factory=dict)   # ns id -> (scope id, is_l3)
    ports: dict = field(default_factory=dict)        # port id -> (ns id, mac bytes, dhcp)
    addresses: dict = field(default_factory=dict)    # (scope, ip) -> owner ns id
    broadcasts: dict = field(default_factory=dict)   # (scope, directed bcast ip) -> tuple(ns ids):
    #   the L3s of the scope with an address on a subnet, /30 or wider, of that broadcast
    routes: dict = field(default_factory=dict)       # (scope, prefix, plen) -> (port id, gateway ip)
    multicast: dict = field(default_factory=dict)    # (scope, group ip) -> tuple(member ns ids)
    unresolved: dict = field(default_factory=dict)   # (scope, prefix, plen) -> (L2 name, dst, why):
    #   routes of the model the datapath cannot use


PLAN_TABLES = ("namespaces", "ports", "addresses", "broadcasts", "routes", "multicast",
               "unresolved")


def fast_path_ipv4(ip):
    """The host-order int of an ``ipaddress`` address the fast path holds (IPv4, not
    loopback), else None: IPv6 and loopback stay in the model."""
    if ip.version != 4 or ip.is_loopback:
        return None
    return int(ip)
