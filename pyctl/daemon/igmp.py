"""IGMP snooping: who listens to which multicast group, per L2 scope.

``parse_igmp`` turns one IGMP message (v1/v2 reports, v2 leaves, v3 reports)
into group-level events; ``MembershipTable`` keeps, for one scope, group ->
{namespace: expiry}; ``IgmpSnooper`` ties both to the daemon: it takes the
IGMP datagrams the fast path hands up and returns membership changes to
compile into the fan-out tables.  Everything is pure logic with an injected
clock (``now`` arguments, seconds).  MLD, IPv6's counterpart, yields the same
events (``pyctl.daemon.mld``): the tables and the snooper hold groups of both
families (IPv4 as ints, IPv6 as ``IPv6Address``), under one bound per scope.

Choices (RFC 4541 snooping at group granularity):

- IGMPv3 records: MODE_IS_EXCLUDE / CHANGE_TO_EXCLUDE (whatever the sources),
  and MODE_IS_INCLUDE / CHANGE_TO_INCLUDE / ALLOW_NEW_SOURCES with sources, are
  joins; CHANGE_TO_INCLUDE and MODE_IS_INCLUDE with no source are leaves;
  BLOCK_OLD_SOURCES changes nothing (sources are not tracked: a member stays a
  member of the whole group until it leaves or expires).
- Expiry: a membership lasts the Group Membership Interval (260 s, RFC 3376
  8.4) after the last report.  Hosts repeat reports only when queried, so the
  daemon must send a general query (``build_query``) every ``query_interval``
  (``IgmpSnooper.general_query_due``) out of every port of the scope.
- Leave: an L3 namespace has exactly one endpoint, so its v2 leave or v3
  TO_IN{} removes it at once (fast leave; the kernel sends the leave when the
  last socket of the group drops it).  A namespace behind which several hosts
  may sit (an L2 uplink: ``fast_leave=False``) only gets its expiry cut to the
  Last Member Query Time (2 s), and the caller is asked to send a
  group-specific query there; a host still listening answers and stays.
- Link-local groups (224.0.0.0/24) reach the whole scope anyway: reports for
  them are ignored, joins refused.
"""
from __future__ import annotations

import ipaddress
import math
import struct
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from pyctl.daemon import packets as pk
from pyctl.errors import InvalidArgument
from pyctl.model.addressing import is_link_scope_group

IGMP_QUERY = 0x11
IGMP_V1_REPORT = 0x12
IGMP_V2_REPORT = 0x16
IGMP_V2_LEAVE = 0x17
IGMP_V3_REPORT = 0x22

MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4
ALLOW_NEW_SOURCES = 5
BLOCK_OLD_SOURCES = 6

ALL_HOSTS = 0xE0000001          # 224.0.0.1
ROUTER_ALERT = b"\x94\x04\x00\x00"

_V3_HEADER = struct.Struct("!BBHHH")
_V3_RECORD = struct.Struct("!BBHI")


class IgmpEvent(NamedTuple):
    group: object     # IPv4: an int; IPv6 (MLD): an IPv6Address
    join: bool        # False: leave


class Change(NamedTuple):
    group: object
    namespace: int
    joined: bool      # False: left (leave, expiry or removal)


def group_order(group):
    """Listing order of groups of both families: IPv4 first, then numerically."""
    return (isinstance(group, ipaddress.IPv6Address), int(group))


def group_text(group) -> str:
    """A group of either family as text."""
    return str(ipaddress.ip_address(group))


def is_multicast(ip: int) -> bool:
    return ip >> 28 == 0xE


def is_link_local_group(ip: int) -> bool:
    return ip >> 8 == 0xE00000


def parse_igmp(message: bytes) -> list[IgmpEvent] | None:
    """The events one IGMP message (an IPv4 payload) carries; None if malformed.

    Queries and messages of unknown types carry no event ([]).  Reports for
    link-local groups are left out."""
    if len(message) < 8 or pk.checksum(message) != 0:
        return None
    itype = message[0]
    if itype in (IGMP_V1_REPORT, IGMP_V2_REPORT, IGMP_V2_LEAVE):
        group = int.from_bytes(message[4:8], "big")
        if not is_multicast(group):
            return None
        if is_link_local_group(group):
            return []
        return [IgmpEvent(group, itype != IGMP_V2_LEAVE)]
    if itype == IGMP_V3_REPORT:
        return _parse_v3_report(message)
    return []


def _parse_v3_report(message: bytes) -> list[IgmpEvent] | None:
    _, _, _, _, nrec = _V3_HEADER.unpack_from(message)
    off = 8
    events = []
    for _ in range(nrec):
        if off + 8 > len(message):
            return None
        rtype, aux_words, nsrc, group = _V3_RECORD.unpack_from(message, off)
        off += 8 + 4 * nsrc + 4 * aux_words
        if off > len(message) or not is_multicast(group) or not 1 <= rtype <= 6:
            return None
        if not is_link_local_group(group):
            record_event(events, rtype, group, nsrc)
    return events


def record_event(events: list, rtype: int, group, nsrc: int) -> None:
    """The group-level event of one IGMPv3 / MLDv2 record (the same rules), if it has one:
    EXCLUDE (any sources) and INCLUDE or ALLOW with sources join, INCLUDE without
    sources leaves, BLOCK changes nothing."""
    if rtype in (MODE_IS_EXCLUDE, CHANGE_TO_EXCLUDE):
        events.append(IgmpEvent(group, True))
    elif rtype in (MODE_IS_INCLUDE, CHANGE_TO_INCLUDE):
        events.append(IgmpEvent(group, nsrc > 0))
    elif rtype == ALLOW_NEW_SOURCES and nsrc > 0:
        events.append(IgmpEvent(group, True))


def build_query(group: int = 0, *, max_resp_time: float = 10.0, version: int = 3,
                robustness: int = 2, query_interval: int = 125) -> bytes:
    """An IGMP membership query (general when ``group`` is 0), as an IPv4 payload."""
    # In tenths of a second; v3 codes from 128 up are a float format: stay below.
    code = max(1, min(255 if version == 2 else 127, round(max_resp_time * 10)))
    if version == 2:
        head = struct.pack("!BBHI", IGMP_QUERY, code, 0, group)
        return head[:2] + pk.checksum(head).to_bytes(2, "big") + head[4:]
    if version != 3:
        raise InvalidArgument(f"IGMP query version must be 2 or 3, not {version!r}")
    body = struct.pack("!BBHIBBH", IGMP_QUERY, code, 0, group, robustness & 7,
                       min(query_interval, 127), 0)
    return body[:2] + pk.checksum(body).to_bytes(2, "big") + body[4:]


def build_query_frame(src_mac: bytes, src_ip: int, group: int = 0, **kw) -> bytes:
    """A query as a whole Ethernet frame: TTL 1, Router Alert, to 224.0.0.1 (general)
    or to the group (group-specific)."""
    dst = group or ALL_HOSTS
    message = build_query(group, **kw)
    # build_ipv4 writes no options: add Router Alert (IHL 6) by hand.
    total = 24 + len(message)
    head = struct.pack("!BBHHHBBHII", 0x46, 0xC0, total, 0, 0, 1, pk.IPPROTO_IGMP, 0,
                       src_ip, dst) + ROUTER_ALERT
    head = head[:10] + pk.checksum(head).to_bytes(2, "big") + head[12:]
    dst_mac = b"\x01\x00\x5e" + (dst & 0x7FFFFF).to_bytes(3, "big")
    return pk.build_ethernet(dst_mac, src_mac, pk.ETH_P_IP, head + message)


def _check_group(group) -> None:
    if isinstance(group, ipaddress.IPv6Address):
        if not group.is_multicast or is_link_scope_group(group):
            raise InvalidArgument(f"group {group} is not an IPv6 group wider than link scope")
        return
    if not isinstance(group, int) or not is_multicast(group):
        raise InvalidArgument(f"{group!r} is not an IPv4 multicast group (224.0.0.0/4)")
    if is_link_local_group(group):
        raise InvalidArgument(f"group {pk.ip_str(group)} is link-local (224.0.0.0/24): "
                              "it reaches every namespace of the scope without a join")


@dataclass(frozen=True)
class IgmpConfig:
    group_membership_interval: float = 260.0     # RFC 3376 8.4: 2 * 125 s + 10 s
    last_member_query_time: float = 2.0          # RFC 3376 8.8: 2 * 1 s
    query_interval: float = 125.0
    max_memberships: int = 65536                 # per scope
    max_groups_per_namespace: int = 256          # learned from reports, per namespace

    def __post_init__(self):
        for name in ("group_membership_interval", "last_member_query_time", "query_interval"):
            if not getattr(self, name) > 0:
                raise InvalidArgument(f"IGMP setting {name}={getattr(self, name)!r} must be > 0")
        for name in ("max_memberships", "max_groups_per_namespace"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidArgument(f"IGMP setting {name}={getattr(self, name)!r} must be >= 1")


class NamespaceFull(OverflowError):
    """A report would give a namespace more than ``max_groups_per_namespace`` groups."""


class MembershipTable:
    """group -> {namespace: expiry} for one L2 scope.  ``math.inf`` marks a
    membership set through the API: it never expires and snooped leaves do not
    remove it."""

    def __init__(self, config: IgmpConfig | None = None):
        self.config = config or IgmpConfig()
        self._groups: dict[int, dict[int, float]] = {}
        self._count = 0
        self._of_ns: dict[int, int] = {}        # namespace -> its memberships

    def __len__(self) -> int:
        return self._count

    def members(self, group: int) -> frozenset[int]:
        return frozenset(self._groups.get(group, ()))

    def groups(self) -> dict[int, frozenset[int]]:
        return {g: frozenset(m) for g, m in self._groups.items()}

    def groups_of(self, namespace: int) -> list:
        return sorted((g for g, m in self._groups.items() if namespace in m), key=group_order)

    def expiry(self, group: int, namespace: int) -> float | None:
        return self._groups.get(group, {}).get(namespace)

    # -- snooped ------------------------------------------------------------------

    def report(self, namespace: int, group: int, now: float) -> Change | None:
        """A report: (re)start the membership's timer.  The change, or None if
        the fan-out does not change.  Raises OverflowError when a new membership
        would exceed ``max_memberships``, NamespaceFull when the namespace already has
        ``max_groups_per_namespace`` (the snooper counts them as drops).  O(1)."""
        members = self._groups.get(group)
        if members is not None and namespace in members:
            if members[namespace] != math.inf:
                members[namespace] = now + self.config.group_membership_interval
            return None
        if self._of_ns.get(namespace, 0) >= self.config.max_groups_per_namespace:
            raise NamespaceFull
        if self._count >= self.config.max_memberships:
            raise OverflowError
        self._add(group, namespace, now + self.config.group_membership_interval)
        return Change(group, namespace, True)

    def _add(self, group: int, namespace: int, expiry: float) -> None:
        self._groups.setdefault(group, {})[namespace] = expiry
        self._count += 1
        self._of_ns[namespace] = self._of_ns.get(namespace, 0) + 1

    def leave(self, namespace: int, group: int, now: float, fast: bool = True) -> Change | None:
        """A snooped leave: remove at once (``fast``) or expire after the Last
        Member Query Time.  API memberships stay."""
        members = self._groups.get(group)
        expiry = None if members is None else members.get(namespace)
        if expiry is None or expiry == math.inf:
            return None
        if fast:
            return self._remove(group, namespace)
        members[namespace] = min(expiry, now + self.config.last_member_query_time)
        return None

    def expire(self, now: float) -> list[Change]:
        """Remove the memberships whose time has come; the changes, sorted."""
        gone = [(g, ns) for g, m in self._groups.items() for ns, t in m.items() if t <= now]
        return [self._remove(g, ns) for g, ns in sorted(gone, key=lambda c: (group_order(c[0]), c[1]))]

    def next_expiry(self) -> float | None:
        times = [t for m in self._groups.values() for t in m.values() if t != math.inf]
        return min(times, default=None)

    # -- set through the API -----------------------------------------------------------

    def join(self, namespace: int, group: int) -> Change | None:
        """A permanent membership (API / control socket)."""
        _check_group(group)
        members = self._groups.get(group)
        if members is not None and namespace in members:
            members[namespace] = math.inf
            return None
        if self._count >= self.config.max_memberships:
            raise InvalidArgument(f"the scope already has {self._count} group memberships "
                                  f"(max_memberships={self.config.max_memberships})")
        self._add(group, namespace, math.inf)
        return Change(group, namespace, True)

    def drop(self, namespace: int, group: int) -> Change | None:
        """Remove a membership, snooped or permanent (API / control socket)."""
        _check_group(group)
        if namespace not in self._groups.get(group, ()):
            return None
        return self._remove(group, namespace)

    def remove_namespace(self, namespace: int) -> list[Change]:
        """Every membership of a namespace that goes away."""
        return [self._remove(g, namespace) for g in self.groups_of(namespace)]

    def _remove(self, group: int, namespace: int) -> Change:
        members = self._groups[group]
        del members[namespace]
        if not members:
            del self._groups[group]
        self._count -= 1
        self._of_ns[namespace] -= 1
        if not self._of_ns[namespace]:
            del self._of_ns[namespace]
        return Change(group, namespace, False)


class QueryRequest(NamedTuple):
    """Send a group-specific query out of the namespace's ports (after a
    leave that was not fast)."""
    scope: int
    namespace: int
    group: int


class IgmpSnooper:
    """Membership tables of every scope, fed with the IGMP datagrams endpoints send."""

    def __init__(self, config: IgmpConfig | None = None):
        self.config = config or IgmpConfig()
        self.tables: dict[int, MembershipTable] = {}
        self.counters: Counter = Counter()
        self._next_query: float | None = None

    def set_config(self, config: IgmpConfig) -> None:
        """New settings for every scope's table, from now (a reload)."""
        self.config = config
        for table in self.tables.values():
            table.config = config

    def table(self, scope: int) -> MembershipTable:
        table = self.tables.get(scope)
        if table is None:
            table = self.tables[scope] = MembershipTable(self.config)
        return table

    def handle(self, scope: int, namespace: int, datagram: bytes, now: float,
               fast_leave: bool = True) -> tuple[list[Change], list[QueryRequest]]:
        """One IPv4 datagram (protocol 2) from ``namespace``: the membership
        changes and the group-specific queries to send.  Malformed -> counted."""
        ip = pk.parse_ipv4(datagram)
        if ip is None or ip.proto != pk.IPPROTO_IGMP or ip.more_fragments or ip.frag_offset:
            self.counters["drop_igmp_malformed"] += 1
            return [], []
        return self.apply(scope, namespace, parse_igmp(ip.payload), now, fast_leave, "igmp")

    def apply(self, scope: int, namespace: int, events, now: float, fast_leave: bool = True,
              protocol: str = "igmp") -> tuple[list[Change], list[QueryRequest]]:
        """The events of one message (``protocol`` "igmp" or "mld": its counters' prefix;
        ``None``: it was malformed) from ``namespace``: the changes and the queries to send."""
        if events is None:
            self.counters[f"drop_{protocol}_malformed"] += 1
            return [], []
        self.counters[f"{protocol}_in"] += 1
        table = self.table(scope)
        changes, queries = [], []
        for event in events:
            if event.join:
                self.counters[f"{protocol}_join"] += 1
                try:
                    change = table.report(namespace, event.group, now)
                except NamespaceFull:
                    self.counters["drop_igmp_namespace_full"] += 1
                    continue
                except OverflowError:
                    self.counters[f"drop_{protocol}_table_full"] += 1
                    continue
            else:
                self.counters[f"{protocol}_leave"] += 1
                change = table.leave(namespace, event.group, now, fast=fast_leave)
                if not fast_leave and namespace in table.members(event.group):
                    queries.append(QueryRequest(scope, namespace, event.group))
            if change is not None:
                changes.append(change)
        return changes, queries

    def expire(self, now: float) -> list[tuple[int, Change]]:
        """(scope, change) for every membership that timed out."""
        out = [(scope, c) for scope, table in self.tables.items() for c in table.expire(now)]
        self.counters["igmp_expired"] += len(out)
        return out

    def general_query_due(self, now: float) -> bool:
        """True once per query interval (and at the first call): time to send a
        general query out of every port."""
        if self._next_query is not None and now < self._next_query:
            return False
        self._next_query = now + self.config.query_interval
        return True

    def remove_scope(self, scope: int) -> None:
        self.tables.pop(scope, None)
