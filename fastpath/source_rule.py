"""The source rule: who may send from which address.  Written once, here.

- An **L3** sends only from its own addresses (and from the unspecified
  address, ``0.0.0.0`` / ``::``: DHCP, ARP probes, IPv6 duplicate address
  detection).
- An **L2** port sends from any address that no *other* namespace of its scope
  holds (and from the unspecified address).
- **Martians never**, whoever sends: loopback, multicast, the reserved class E
  block with the limited broadcast in it (RFC 1812 5.3.7), an IPv4-mapped IPv6
  address (``::ffff:0:0/96``), and a directed broadcast of the scope (its
  ``owner`` is ``BROADCAST``) cannot be a source on a link.
- **IPv6 link sources** (``is_link_source``): a link-local address (``fe80::/10``,
  which no namespace holds: every link has its own) and ``::`` are valid on the
  sender's own link only.  The frame path lets such a frame reach the switch
  (neighbour discovery, MLD, the switch's own link-local address) and link-scope
  multicast (``ff02::/16``, bridged to the L3s of the scope as 224.0.0.0/24 is),
  and drops it anywhere else (``link_local_source_routed``); ``::`` is a source
  of neighbour discovery and MLD only (``spoofed_source`` otherwise).

``may_send_from`` is a pure predicate over what the caller looks up in its own
tables: the model (``Switch.may_send_from``, which widens it to what a socket
may *bind*), the slow path's view of the compiled plan, and the reference
datapath (per frame).  The compiled core cannot call Python: ``decide()`` in
``fastpath/process.pxi`` implements the same rule in C, and
``tests/fastpath/test_source_rule_differential.py`` checks it against this
function.  It lives in the fast path, the bottom layer, so that every layer
above can call it.
"""
import ipaddress

__all__ = ["BROADCAST", "may_send_from", "is_martian_source", "is_link_source"]

BROADCAST = -1
"""The owner of a directed broadcast address of the scope: a fan-out list, never a sender."""


def _as_address(address):
    if isinstance(address, int):
        return ipaddress.IPv4Address(address)       # IPv4 in host order, as the tables hold it
    return address


def is_martian_source(address) -> bool:
    """Never a source on a link (RFC 1812 5.3.7): loopback, multicast, for IPv4
    240.0.0.0/4 (reserved, with 255.255.255.255), for IPv6 an IPv4-mapped address.
    ``address``: an ``ipaddress`` address, or an IPv4 address as a host-order int."""
    address = _as_address(address)
    if address.is_loopback or address.is_multicast:
        return True
    if address.version == 6:
        return address.ipv4_mapped is not None
    return int(address) >> 28 == 0xF


def is_link_source(address) -> bool:
    """An IPv6 source valid on the sender's own link only: link-local (fe80::/10) or
    the unspecified address (see the module's docstring for where such frames go)."""
    address = _as_address(address)
    return address.version == 6 and (address.is_link_local or address.is_unspecified)


def may_send_from(sender_is_l3: bool, sender: int, owner, address) -> bool:
    """May namespace ``sender`` (an L3 if ``sender_is_l3``, else an L2) send from
    ``address``, which its scope gives to ``owner``: a namespace id, ``BROADCAST``
    (a directed broadcast of the scope) or ``None`` (nobody holds it)?"""
    address = _as_address(address)
    if address.is_unspecified:
        return True
    if is_martian_source(address) or owner == BROADCAST:
        return False
    if owner is None:
        return not sender_is_l3
    return owner == sender
