"""A free IPv4 subnet for a test topology: one in 10.0.0.0/8 that no route of the host's
network namespace covers or is covered by (a VPN's or a container network's 10.x never
shares addresses with the tenants, also in what people read in a failure).

``free_subnet()`` picks a random /24 in 10.0.0.0/8 that overlaps no route of
/proc/net/route (the default route aside); ``parse_subnet(text)`` checks one given by
hand (the pytest option ``--tapswitch-subnet``).
"""
from __future__ import annotations

import ipaddress
import random
import socket
import struct

from pyctl.errors import InvalidArgument

__all__ = ["free_subnet", "parse_subnet", "host_routes", "POOL"]

POOL = ipaddress.IPv4Network("10.0.0.0/8")
MIN_HOSTS = 6           # the gateway, the tenants a test makes and a few spares


def host_routes(path: str = "/proc/net/route") -> list[ipaddress.IPv4Network]:
    """The IPv4 routes of this network namespace, the default route left out."""
    out = []
    try:
        with open(path) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 8:
                    continue
                dst, mask = (socket.inet_ntoa(struct.pack("<I", int(v, 16))) for v in (fields[1], fields[7]))
                net = ipaddress.IPv4Network(f"{dst}/{mask}", strict=False)
                if net.prefixlen:
                    out.append(net)
    except OSError:
        pass
    return out


def free_subnet(taken=None, *, rng: random.Random | None = None,
                prefixlen: int = 24) -> ipaddress.IPv4Network:
    """A random ``/prefixlen`` of 10.0.0.0/8 overlapping none of ``taken`` (default: the
    host's routes)."""
    taken = host_routes() if taken is None else list(taken)
    rng = rng or random.Random()
    count = 1 << (prefixlen - POOL.prefixlen)
    for _ in range(256):
        candidate = ipaddress.IPv4Network((int(POOL.network_address) + rng.randrange(count)
                                           * (1 << (32 - prefixlen)), prefixlen))
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise InvalidArgument(f"no free /{prefixlen} in {POOL}: the host's routes cover it "
                          f"(give one with --tapswitch-subnet)")


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """A subnet given by hand: IPv4, room for the test's hosts."""
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise InvalidArgument(f"--tapswitch-subnet {text!r}: {exc}") from None
    if net.num_addresses - 2 < MIN_HOSTS:
        raise InvalidArgument(f"--tapswitch-subnet {text!r}: too small (at most a /29)")
    return net
