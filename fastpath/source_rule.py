"""The source rule: who may send from which address.  Written once, here.

- An **L3** sends only from its own addresses.
- An **L2** port sends only from addresses that no *other* namespace of its
  scope holds, and not from the L2's own either (both families): those are
  the switch's (the tenants' gateway), which only the switch itself sends from.
- The unspecified address (``0.0.0.0`` / ``::``) may be used, but only for
  what stays on the link: for IPv4 (``stays_on_link``) IGMP and a DHCP
  client's broadcast to the servers (UDP to 255.255.255.255 port 67; ARP
  probes are ARP, not IPv4); for IPv6 neighbour discovery and MLD (below).  A
  router never forwards anything else from it.
- **Martians never**, whoever sends (RFC 1812 5.3.7, sources no router
  forwards): loopback, multicast, for IPv4 the rest of ``0.0.0.0/8`` and the
  reserved class E block with the limited broadcast in it, for IPv6 an
  IPv4-mapped address (``::ffff:0:0/96``); and a directed broadcast of the
  scope (its ``owner`` is ``BROADCAST``) cannot be a source on a link.
- **IPv6 link sources** (``is_link_source``): a link-local address (``fe80::/10``,
  which no namespace holds: every link has its own) and ``::`` are valid on the
  sender's own link only.  The frame path lets such a frame reach the switch
  (neighbour discovery, MLD, the switch's own link-local address) and link-scope
  multicast (``ff02::/16``, bridged to the L3s of the scope as 224.0.0.0/24 is),
  and drops it anywhere else (``link_local_source_routed``); ``::`` is a source
  of neighbour discovery and MLD only (``spoofed_source`` otherwise).

``source_refusal`` says which of the two fast-path reasons a refused source
gets (``martian_source``: no router forwards it; ``spoofed_source``: someone
else's, or nobody's for an L3); ``may_send_from`` is "no refusal".  They are
pure predicates over what the caller looks up in its own tables: the model
(``Switch.may_send_from``, which widens it to what a socket may *bind*), the
slow path's view of the compiled plan, and the reference datapath (per frame).
The compiled core cannot call Python: ``decide()`` in ``fastpath/process.pxi``
implements the same rule in C, and ``tests/fastpath/test_source_rule_differential.py``
checks it against these functions.  It lives in the fast path, the bottom
layer, so that every layer above can call it.
"""
import ipaddress

__all__ = ["BROADCAST", "MARTIAN", "SPOOFED", "may_send_from", "source_refusal",
           "is_martian_source", "is_link_source", "stays_on_link", "DHCP_SERVER_PORT",
           "DHCP_CLIENT_PORT"]

BROADCAST = -1
"""The owner of a directed broadcast address of the scope: a fan-out list, never a sender."""

MARTIAN = "martian_source"
SPOOFED = "spoofed_source"

DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
_IPPROTO_IGMP, _IPPROTO_UDP = 2, 17
_LIMITED_BROADCAST = 0xFFFFFFFF


def _as_address(address):
    if isinstance(address, int):
        return ipaddress.IPv4Address(address)       # IPv4 in host order, as the tables hold it
    return address


def is_martian_source(address) -> bool:
    """Never a source on a link (RFC 1812 5.3.7): loopback, multicast; for IPv4
    0.0.0.0/8 but 0.0.0.0 itself (``stays_on_link`` says when that one may be used)
    and 240.0.0.0/4 (reserved, with 255.255.255.255); for IPv6 an IPv4-mapped address.
    ``address``: an ``ipaddress`` address, or an IPv4 address as a host-order int."""
    address = _as_address(address)
    if address.is_loopback or address.is_multicast:
        return True
    if address.version == 6:
        return address.ipv4_mapped is not None
    first = int(address) >> 24
    return first >= 0xF0 or (first == 0 and int(address) != 0)


def is_link_source(address) -> bool:
    """An IPv6 source valid on the sender's own link only: link-local (fe80::/10) or
    the unspecified address (see the module's docstring for where such frames go)."""
    address = _as_address(address)
    return address.version == 6 and (address.is_link_local or address.is_unspecified)


def source_refusal(sender_is_l3: bool, sender: int, owner, address):
    """Why namespace ``sender`` (an L3 if ``sender_is_l3``, else an L2) may not send
    from ``address``, which its scope gives to ``owner`` (a namespace id, ``BROADCAST``
    for a directed broadcast of the scope, ``None`` for nobody): ``MARTIAN``,
    ``SPOOFED``, or ``None`` when it may."""
    address = _as_address(address)
    if address.is_unspecified:
        return None
    if is_martian_source(address):
        return MARTIAN
    if owner is None:
        return SPOOFED if sender_is_l3 else None
    if owner == sender and sender_is_l3:
        return None
    return SPOOFED          # another namespace's, a directed broadcast, or the L2's own


def may_send_from(sender_is_l3: bool, sender: int, owner, address) -> bool:
    """May ``sender`` send from ``address`` (see ``source_refusal``)?  The unspecified
    address passes here; a frame from it must also stay on the link (``stays_on_link``)."""
    return source_refusal(sender_is_l3, sender, owner, address) is None


def stays_on_link(protocol: int, destination: int, destination_port=None) -> bool:
    """May an IPv4 packet from 0.0.0.0 with ``protocol`` to ``destination`` (a host-order
    int; ``destination_port`` the UDP one, if it has one) be taken in?  Only what never
    leaves the link: IGMP, and a DHCP client's broadcast to the servers."""
    if protocol == _IPPROTO_IGMP:
        return True
    return (protocol == _IPPROTO_UDP and destination == _LIMITED_BROADCAST
            and destination_port == DHCP_SERVER_PORT)
