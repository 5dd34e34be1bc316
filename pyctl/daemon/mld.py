"""MLD, IGMP's IPv6 counterpart (RFC 2710 MLDv1, RFC 3810 MLDv2): the reports and
dones endpoints send, turned into the same group-level events as IGMP's
(``pyctl.daemon.igmp.IgmpEvent``), and the queries the switch sends as querier.

- MLDv1 reports (131) join, dones (132) leave; MLDv2 reports (143): records
  MODE_IS_EXCLUDE / CHANGE_TO_EXCLUDE (whatever the sources), and
  MODE_IS_INCLUDE / CHANGE_TO_INCLUDE / ALLOW_NEW_SOURCES with sources, join;
  CHANGE_TO_INCLUDE and MODE_IS_INCLUDE without sources leave; BLOCK changes
  nothing (group granularity, as IGMP's snooping).
- Groups of link scope or below (ff02::/16 and narrower) are not learned:
  all-nodes and the like reach the whole scope anyway, and a solicited-node
  group's members are the owners of its addresses, which the compiler makes
  members (``pyctl.compile.plan_builder``): their records are ignored, so a
  tenant's MLD neither widens nor ends them.
- A message is accepted only with hop limit 1 from a link-local source (or the
  unspecified one, which a host without an address yet may use for a v2
  report), RFC 3810 5.1.14 and 5.2.13; queries from endpoints carry no event.
- The switch's queries are MLDv2, to ff02::1 (general) or the group
  (group-specific), from the port's link-local address (hosts ignore a query
  from any other), hop limit 1, with a hop-by-hop Router Alert.
"""
from __future__ import annotations

import ipaddress
import struct

from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6
from pyctl.daemon.igmp import IgmpEvent, record_event
from pyctl.model.addressing import is_link_scope_group

__all__ = ["parse_mld", "build_query", "build_query_frame"]

# a hop-by-hop header: next header ICMPv6, length 0 (8 bytes), Router Alert (MLD), PadN
_HOP_BY_HOP = bytes([pk6.IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0])
_RECORD = struct.Struct("!BBH16s")


def parse_mld(ip: pk6.IPv6) -> list[IgmpEvent] | None:
    """The events of one MLD message; None if it is malformed or not from the link."""
    icmp = pk6.parse_icmp6(ip)
    if icmp is None or icmp.type not in pk6.MLD_TYPES or icmp.code != 0 or ip.hop_limit != 1:
        return None
    if not (ip.src.is_link_local or ip.src.is_unspecified and icmp.type == pk6.MLD2_REPORT):
        return None
    body = icmp.body
    if icmp.type in (pk6.MLD_REPORT, pk6.MLD_DONE):
        if len(body) < 20:
            return None
        group = ipaddress.IPv6Address(bytes(body[4:20]))
        if not group.is_multicast:
            return None
        if is_link_scope_group(group):
            return []
        return [IgmpEvent(group, icmp.type == pk6.MLD_REPORT)]
    if icmp.type == pk6.MLD2_REPORT:
        return _v2_report(body)
    return [] if len(body) >= 20 else None        # a query: nothing to learn


def _v2_report(body: bytes) -> list[IgmpEvent] | None:
    if len(body) < 4:
        return None
    nrec = struct.unpack_from("!H", body, 2)[0]
    off, events = 4, []
    for _ in range(nrec):
        if off + _RECORD.size > len(body):
            return None
        rtype, aux_words, nsrc, raw_group = _RECORD.unpack_from(body, off)
        off += _RECORD.size + 16 * nsrc + 4 * aux_words
        group = ipaddress.IPv6Address(raw_group)
        if off > len(body) or not group.is_multicast or not 1 <= rtype <= 6:
            return None
        if not is_link_scope_group(group):
            record_event(events, rtype, group, nsrc)
    return events


def build_query(src, dst, group=None, *, max_resp_time: float = 10.0, robustness: int = 2,
                query_interval: int = 125) -> bytes:
    """An MLDv2 query (general when ``group`` is None) from ``src`` to ``dst``, as ICMPv6."""
    # Maximum Response Code in milliseconds; from 32768 up it is a float format: stay below.
    code = max(1, min(32767, round(max_resp_time * 1000)))
    qqic = min(query_interval, 127)
    body = struct.pack("!HH16sBBH", code, 0, (group or pk6.UNSPECIFIED).packed,
                       robustness & 7, qqic, 0)
    return pk6.build_icmp6(src, dst, pk6.MLD_QUERY, 0, body)


def build_query_frame(src_mac: bytes, group=None, **kw) -> bytes:
    """A query as a whole Ethernet frame from the port with MAC ``src_mac``: from its
    link-local address, hop limit 1, Router Alert, to ff02::1 or the group."""
    src = pk6.link_local_of(src_mac)
    dst = group or pk6.ALL_NODES
    message = build_query(src, dst, group, **kw)
    packet = pk6.build_ipv6(src, dst, pk6.IPPROTO_HOPOPTS, _HOP_BY_HOP + message, hop_limit=1)
    return pk.build_ethernet(pk6.group_mac(dst), src_mac, pk6.ETH_P_IPV6, packet)
