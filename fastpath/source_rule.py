"""The source rule: who may send from which address.  Written once, here.

- An **L3** sends only from its own addresses (and from the unspecified
  address, ``0.0.0.0`` / ``::``: DHCP, ARP probes).
- An **L2** port sends from any address that no *other* namespace of its scope
  holds (and from the unspecified address).
- **Martians never**, whoever sends: loopback, multicast, the reserved class E
  block with the limited broadcast in it (RFC 1812 5.3.7), and a directed
  broadcast of the scope (its ``owner`` is ``BROADCAST``) cannot be a source
  on a link.

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

__all__ = ["BROADCAST", "may_send_from", "is_martian_source"]

BROADCAST = -1
"""The owner of a directed broadcast address of the scope: a fan-out list, never a sender."""


def _as_address(address):
    if isinstance(address, int):
        return ipaddress.IPv4Address(address)       # IPv4 in host order, as the tables hold it
    return address


def is_martian_source(address) -> bool:
    """Never a source on a link (RFC 1812 5.3.7): loopback, multicast, and for IPv4
    240.0.0.0/4 (reserved, with 255.255.255.255).  ``address``: an ``ipaddress``
    address, or an IPv4 address as a host-order int."""
    address = _as_address(address)
    if address.is_loopback or address.is_multicast:
        return True
    return address.version == 4 and int(address) >> 28 == 0xF


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
