"""The slow path: what the fast path hands up and cannot finish itself.

Pure logic on bytes, no I/O: the daemon calls ``SlowPath.handle()`` with each
frame the fast path punted (and ``tick()`` now and then), writes the frames the
result lists and applies the learned facts to the fast path's tables.

What it does, per punt reason:

- ``ARP``: a request from an endpoint for any IPv4 address of its scope (other
  namespaces' addresses, the switch's own, and, proxy style, any destination
  routed out of another port) is answered with the ingress port's MAC.  A
  request for the requester's own address (gratuitous ARP, duplicate address
  detection) gets no answer.  Every ARP whose sender address passes the
  source rule teaches the sender's MAC (``NeighbourLearned``, ``PeerMac``);
  replies release frames waiting for that neighbour.
- ``LOCAL`` (IPv4 to an address owned by an L2, the switch itself): ICMP echo
  requests are answered; UDP and TCP get ICMP port unreachable (the switch
  runs no service; Linux endpoints turn this into ECONNREFUSED), other
  protocols ICMP protocol unreachable; other ICMP messages and fragments are
  dropped (no reassembly) and counted.
- ``TTL_EXCEEDED``: ICMP time exceeded (11/0) back to the sender.
- ``NO_ROUTE``: ICMP destination unreachable, net (3/0).
- ``NO_NEIGHBOUR`` / ``PEER_UNKNOWN``: the next hop's (or the L3 endpoint's)
  MAC is unknown: ARP requests go out of the egress port (every
  ``arp_retry_interval`` s, at most ``arp_max_requests``), up to
  ``pending_frames_per_neighbour`` frames wait (the oldest is dropped beyond;
  all waiting frames together hold at most ``max_pending_bytes``),
  and are forwarded when the reply comes, or dropped with ICMP host
  unreachable (3/1) when the neighbour times out (RFC 1812 4.3.3.1).

Frames handed up are plain Ethernet frames as received (no virtio-net header,
TTL not yet decremented).  ICMP errors follow RFC 1812 4.3.2: they quote the
offending datagram up to 576 bytes in all, come from the switch's address of
the ingress port, are rate-limited by a token bucket per sending namespace,
and are never sent about ICMP errors, non-first fragments, link-level or IP
broadcasts and multicasts, or datagrams whose source names no single host.
Every frame that produces nothing increments one of ``SlowPath.counters``.
"""
from __future__ import annotations

import enum
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol

from fastpath import verdicts
from pyctl.daemon import packets as pk
from pyctl.errors import InvalidArgument


class Punt(enum.IntEnum):
    """Why the fast path handed a frame up (its reason codes, fastpath/verdicts.py)."""
    ARP = verdicts.REASON_ARP
    LOCAL = verdicts.REASON_LOCAL                # IPv4 to an address of the switch itself
    NO_ROUTE = verdicts.REASON_NO_ROUTE
    TTL_EXCEEDED = verdicts.REASON_TTL_EXPIRED   # a routed frame whose TTL would reach 0
    NO_NEIGHBOUR = verdicts.REASON_NO_NEIGHBOUR  # the next hop's MAC is unknown
    PEER_UNKNOWN = verdicts.REASON_PEER_UNKNOWN  # the MAC of the endpoint behind an L3 port


class Route(NamedTuple):
    """Where the fast path sends a destination: out of ``port_id`` to ``next_hop``
    (the destination itself when it is on the port's link)."""
    port_id: int
    next_hop: int


class SwitchView(Protocol):
    """The read-only facts about the switch that the slow path needs.

    Every method answers None for what does not exist (an unknown port, an
    address nobody owns): the slow path then counts a drop."""

    def port_namespace(self, port_id: int) -> int | None:
        """The namespace the port is attached to."""

    def port_scope(self, port_id: int) -> int | None:
        """The scope (L2) of that namespace: itself for an L2, the parent for an L3."""

    def port_mac(self, port_id: int) -> bytes | None:
        """The switch-side MAC of the port: what endpoints see as their gateway."""

    def owner(self, scope: int, ip: int) -> int | None:
        """The namespace owning ``ip`` in ``scope``; the scope itself means the
        address is one of the switch's own."""

    def route(self, scope: int, ip: int) -> Route | None:
        """The fast path's forwarding decision for ``ip`` in ``scope``: owned by
        an L3 -> that namespace's port; else the longest-prefix route."""

    def source_allowed(self, port_id: int, ip: int) -> bool:
        """The source rule: may a frame entering at ``port_id`` come from ``ip``?"""

    def icmp_source(self, port_id: int) -> int | None:
        """The switch's own address that ICMP errors and ARP requests sent out
        of this port come from (None: ICMP errors are not sent, ARP requests go
        out as probes from 0.0.0.0)."""


class NeighbourLearned(NamedTuple):
    scope: int
    ip: int
    mac: bytes
    port_id: int


class PeerMac(NamedTuple):
    """The MAC of the endpoint on the other side of a port (L3 ports: the
    destination MAC of every frame the switch delivers there)."""
    port_id: int
    mac: bytes


class Output(NamedTuple):
    frames: list          # [(port_id, frame bytes)] to write, in order
    learned: list         # [NeighbourLearned | PeerMac]


@dataclass(frozen=True)
class SlowPathConfig:
    icmp_rate: float = 100.0            # ICMP errors per second per sending namespace
    icmp_burst: int = 50
    pending_frames_per_neighbour: int = 101     # Linux's neighbour queue (unres_qlen)
    max_pending_bytes: int = 4 << 20            # every waiting frame together
    max_pending_neighbours: int = 1024
    max_neighbours: int = 65536
    arp_retry_interval: float = 1.0
    arp_max_requests: int = 3
    arp_rate: float = 100.0             # ARP requests the switch sends per second, in all
    arp_burst: int = 50
    ttl: int = 64                       # of the datagrams the switch originates

    def __post_init__(self):
        checks = [
            ("icmp_rate", self.icmp_rate > 0),
            ("icmp_burst", self.icmp_burst >= 1),
            ("arp_rate", self.arp_rate > 0),
            ("arp_burst", self.arp_burst >= 1),
            ("pending_frames_per_neighbour", self.pending_frames_per_neighbour >= 1),
            ("max_pending_bytes", self.max_pending_bytes >= 1),
            ("max_pending_neighbours", self.max_pending_neighbours >= 1),
            ("max_neighbours", self.max_neighbours >= 1),
            ("arp_retry_interval", self.arp_retry_interval > 0),
            ("arp_max_requests", self.arp_max_requests >= 1),
            ("ttl", 1 <= self.ttl <= 255),
        ]
        for name, ok in checks:
            if not ok:
                raise InvalidArgument(f"slow path setting {name}={getattr(self, name)!r} "
                                      "is out of range")


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, float(burst), now

    def take(self, now: float) -> bool:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Pending:
    __slots__ = ("port_id", "frames", "maxlen", "requests", "next_request")

    def __init__(self, port_id: int, maxlen: int):
        self.port_id = port_id
        self.frames: deque = deque()                # (ingress port, frame), at most maxlen
        self.maxlen = maxlen
        self.requests = 0
        self.next_request = 0.0


ICMP_QUOTE_MAX = 576 - 20 - 8   # RFC 1812 4.3.2.3: the whole error fits in 576 bytes


class SlowPath:
    def __init__(self, view: SwitchView, config: SlowPathConfig | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.view = view
        self.config = config or SlowPathConfig()
        self.clock = clock
        self.counters: Counter = Counter()
        self._buckets: dict[int, TokenBucket] = {}
        self._neighbours: OrderedDict[tuple[int, int], tuple[bytes, int]] = OrderedDict()
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._pending_bytes = 0
        self._arp_bucket: TokenBucket | None = None

    # -- entry points -------------------------------------------------------

    def handle(self, port_id: int, reason: int, frame: bytes) -> Output:
        """Process one punted frame that entered at ``port_id``."""
        out = Output([], [])
        eth = pk.parse_ethernet(frame)
        if eth is None:
            return self._drop(out, "drop_malformed")
        if self.view.port_scope(port_id) is None or self.view.port_mac(port_id) is None:
            return self._drop(out, "drop_unknown_port")
        if eth.ethertype == pk.ETH_P_ARP:
            return self._arp(port_id, eth, out)
        if eth.ethertype != pk.ETH_P_IP:
            return self._drop(out, "drop_unsupported_ethertype")
        ip = pk.parse_ipv4(eth.payload)
        if ip is None:
            return self._drop(out, "drop_malformed")
        if not self.view.source_allowed(port_id, ip.src):
            return self._drop(out, "drop_spoofed_source")
        if reason == Punt.LOCAL:
            self._local(port_id, eth, ip, out)
        elif reason == Punt.TTL_EXCEEDED:
            self._icmp_error(port_id, eth, ip, pk.ICMP_TIME_EXCEEDED, 0, out)
        elif reason == Punt.NO_ROUTE:
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_NET_UNREACH, out)
        elif reason == Punt.NO_NEIGHBOUR or reason == Punt.PEER_UNKNOWN:
            self._no_neighbour(port_id, eth, ip, out)
        else:
            self._drop(out, "drop_bad_reason")
        return out

    def tick(self) -> Output:
        """Send the ARP retries that are due; give up on neighbours that did not
        answer (their frames are dropped with ICMP host unreachable)."""
        out = Output([], [])
        now = self.clock()
        for key, pend in list(self._pending.items()):
            if now < pend.next_request:
                continue
            if pend.requests >= self.config.arp_max_requests:
                self._take_pending(key)
                self.counters["neighbour_timeout"] += 1
                for ingress, frame in pend.frames:
                    self.counters["drop_neighbour_timeout"] += 1
                    eth = pk.parse_ethernet(frame)
                    self._icmp_error(ingress, eth, pk.parse_ipv4(eth.payload),
                                     pk.ICMP_DEST_UNREACH, pk.ICMP_HOST_UNREACH, out)
            else:
                self._send_arp_request(key[1], pend, now, out)
        return out

    def neighbour(self, scope: int, ip: int) -> tuple[bytes, int] | None:
        """The (MAC, port id) learned for ``ip`` in ``scope``, if any."""
        return self._neighbours.get((scope, ip))

    def forget_neighbour(self, scope: int, ip: int) -> None:
        self._neighbours.pop((scope, ip), None)

    def forget_port(self, port_id: int) -> None:
        """Drop what was learned through a port that went away."""
        for key in [k for k, (_, p) in self._neighbours.items() if p == port_id]:
            del self._neighbours[key]
        for key in [k for k, pend in self._pending.items() if pend.port_id == port_id]:
            self.counters["drop_port_gone"] += len(self._take_pending(key).frames)

    def forget_namespace(self, namespace: int) -> None:
        self._buckets.pop(namespace, None)

    @property
    def pending_neighbours(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def _take_pending(self, key) -> _Pending:
        pend = self._pending.pop(key)
        self._pending_bytes -= sum(len(frame) for _, frame in pend.frames)
        return pend

    # -- ARP ----------------------------------------------------------------

    def _arp(self, port_id: int, eth: pk.Ethernet, out: Output) -> Output:
        arp = pk.parse_arp(eth.payload)
        if arp is None or pk.is_multicast_mac(arp.sha):
            return self._drop(out, "drop_malformed_arp")
        if arp.sha != eth.src:
            # Learning from such a frame would let one host speak for another.
            return self._drop(out, "drop_arp_sha_mismatch")
        view = self.view
        scope = view.port_scope(port_id)
        port_mac = view.port_mac(port_id)
        if arp.spa != 0:
            if not view.source_allowed(port_id, arp.spa):
                return self._drop(out, "drop_arp_spoofed")
            if view.owner(scope, arp.spa) == scope:
                # Someone claims one of the switch's own addresses: never learn it.
                return self._drop(out, "drop_arp_switch_address")
            self._learn(scope, arp.spa, arp.sha, port_id, out)
        namespace = view.port_namespace(port_id)
        if namespace != scope:
            out.learned.append(PeerMac(port_id, arp.sha))   # an L3 port: one endpoint
        if arp.op == pk.ARP_REPLY:
            self.counters["arp_reply_in"] += 1
            return out
        if arp.tpa == arp.spa:
            self.counters["arp_gratuitous"] += 1
            return out
        owner = view.owner(scope, arp.tpa)
        if owner is not None:
            if owner == namespace and namespace != scope:
                # An L3 asking about its own address: duplicate address detection.
                self.counters["arp_own_address"] += 1
                return out
        else:
            route = view.route(scope, arp.tpa)
            if route is None or route.port_id == port_id:
                # Not ours to answer: unroutable, or on the requester's own link.
                self.counters["arp_ignored"] += 1
                return out
        reply = pk.build_arp(pk.ARP_REPLY, port_mac, arp.tpa, arp.sha, arp.spa)
        out.frames.append((port_id, pk.build_ethernet(arp.sha, port_mac, pk.ETH_P_ARP, reply)))
        self.counters["arp_reply_sent"] += 1
        return out

    def _learn(self, scope: int, ip: int, mac: bytes, port_id: int, out: Output) -> None:
        key = (scope, ip)
        self._neighbours[key] = (mac, port_id)
        self._neighbours.move_to_end(key)
        if len(self._neighbours) > self.config.max_neighbours:
            self._neighbours.popitem(last=False)
            self.counters["neighbour_evicted"] += 1
        out.learned.append(NeighbourLearned(scope, ip, mac, port_id))
        pend = self._pending.get(key)
        if pend is None or pend.port_id != port_id:
            return      # (heard on another port than the route's: keep waiting)
        self._take_pending(key)
        self.counters["neighbour_resolved"] += 1
        for ingress, frame in pend.frames:
            self._forward(ingress, frame, pend.port_id, mac, out)

    def _send_arp_request(self, target: int, pend: _Pending, now: float, out: Output) -> None:
        port_mac = self.view.port_mac(pend.port_id)
        if port_mac is None:
            pend.requests = self.config.arp_max_requests   # times out at the next tick
            return
        if self._arp_bucket is None:
            self._arp_bucket = TokenBucket(self.config.arp_rate, self.config.arp_burst, now)
        pend.requests += 1
        pend.next_request = now + self.config.arp_retry_interval
        if not self._arp_bucket.take(now):
            self.counters["arp_request_rate_limited"] += 1    # counts as a try: it times out
            return
        spa = self.view.icmp_source(pend.port_id) or 0
        request = pk.build_arp(pk.ARP_REQUEST, port_mac, spa, pk.ZERO_MAC, target)
        out.frames.append((pend.port_id, pk.build_ethernet(pk.BROADCAST_MAC, port_mac,
                                                           pk.ETH_P_ARP, request)))
        self.counters["arp_request_sent"] += 1

    # -- routed frames --------------------------------------------------------

    def _no_neighbour(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, out: Output) -> None:
        scope = self.view.port_scope(port_id)
        route = self.view.route(scope, ip.dst)
        if route is None:
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_NET_UNREACH, out)
            return
        frame = pk.build_ethernet(eth.dst, eth.src, eth.ethertype, ip.datagram)
        key = (scope, route.next_hop)
        known = self._neighbours.get(key)
        if known is not None and known[1] == route.port_id:
            # Learned here but not yet in the fast path's table: forward now.
            self._forward(port_id, frame, route.port_id, known[0], out)
            return
        pend = self._pending.get(key)
        if pend is None:
            if len(self._pending) >= self.config.max_pending_neighbours:
                self._drop(out, "drop_pending_full")
                return
            pend = self._pending[key] = _Pending(route.port_id,
                                                 self.config.pending_frames_per_neighbour)
            self._send_arp_request(route.next_hop, pend, self.clock(), out)
        if len(pend.frames) == pend.maxlen:
            self._pending_bytes -= len(pend.frames.popleft()[1])
            self.counters["drop_pending_overflow"] += 1
        if self._pending_bytes + len(frame) > self.config.max_pending_bytes:
            self._drop(out, "drop_pending_bytes")
            return
        pend.frames.append((port_id, frame))
        self._pending_bytes += len(frame)
        self.counters["frame_queued"] += 1

    def _forward(self, ingress: int, frame: bytes, egress: int, dst_mac: bytes,
                 out: Output) -> None:
        eth = pk.parse_ethernet(frame)
        ip = pk.parse_ipv4(eth.payload)
        if ip.ttl <= 1:
            self._icmp_error(ingress, eth, ip, pk.ICMP_TIME_EXCEEDED, 0, out)
            return
        src_mac = self.view.port_mac(egress)
        if src_mac is None:
            self._drop(out, "drop_port_gone")
            return
        out.frames.append((egress, pk.build_ethernet(dst_mac, src_mac, pk.ETH_P_IP,
                                                     pk.decrement_ttl(ip.datagram))))
        self.counters["frame_forwarded"] += 1

    # -- the switch's own addresses ------------------------------------------

    def _local(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, out: Output) -> None:
        scope = self.view.port_scope(port_id)
        if self.view.owner(scope, ip.dst) != scope:
            self._drop(out, "drop_not_local")
            return
        if ip.more_fragments or ip.frag_offset:
            self._drop(out, "drop_local_fragment")
            return
        if ip.proto == pk.IPPROTO_ICMP:
            icmp = pk.parse_icmp(ip.payload)
            if icmp is None:
                self._drop(out, "drop_malformed_icmp")
            elif icmp.type != pk.ICMP_ECHO_REQUEST or icmp.code != 0:
                self._drop(out, "drop_local_icmp")
            else:
                reply = pk.build_icmp(pk.ICMP_ECHO_REPLY, 0, icmp.rest, icmp.data)
                self._send_ip(port_id, eth.src, ip.dst, ip.src, pk.IPPROTO_ICMP, reply, out)
                self.counters["echo_reply_sent"] += 1
        elif ip.proto in (pk.IPPROTO_UDP, pk.IPPROTO_TCP):
            # The addressed host itself answers: from the address it was sent to.
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_PORT_UNREACH, out,
                             source=ip.dst)
        else:
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_PROT_UNREACH, out,
                             source=ip.dst)

    def _send_ip(self, port_id: int, dst_mac: bytes, src: int, dst: int, proto: int,
                 payload: bytes, out: Output) -> None:
        datagram = pk.build_ipv4(src, dst, proto, payload, ttl=self.config.ttl)
        out.frames.append((port_id, pk.build_ethernet(dst_mac, self.view.port_mac(port_id),
                                                      pk.ETH_P_IP, datagram)))

    # -- ICMP errors ------------------------------------------------------------

    def _icmp_error(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, itype: int,
                    code: int, out: Output, source: int | None = None) -> None:
        """Send ICMP ``itype``/``code`` about ``ip`` back to its sender, unless
        RFC 1812 4.3.2.7 forbids it or the sender's bucket is empty.  It comes from
        ``source`` (the switch as the addressed host) or, for a router's errors,
        from the switch's address facing the sender."""
        if pk.is_multicast_mac(eth.dst):
            return self._drop(out, "icmp_suppressed_l2_multicast")
        if (ip.dst >> 28) == 0xE or ip.dst == 0xFFFFFFFF:
            return self._drop(out, "icmp_suppressed_ip_multicast")
        if not pk.is_unicast_host(ip.src):
            return self._drop(out, "icmp_suppressed_bad_source")
        if ip.frag_offset:
            return self._drop(out, "icmp_suppressed_fragment")
        if ip.proto == pk.IPPROTO_ICMP and (len(ip.payload) < 1
                                            or ip.payload[0] not in pk.ICMP_QUERY_TYPES):
            return self._drop(out, "icmp_suppressed_about_error")
        if source is None:
            source = self.view.icmp_source(port_id)
        if source is None:
            return self._drop(out, "icmp_no_source_address")
        namespace = self.view.port_namespace(port_id)
        now = self.clock()
        bucket = self._buckets.get(namespace)
        if bucket is None:
            bucket = self._buckets[namespace] = TokenBucket(
                self.config.icmp_rate, self.config.icmp_burst, now)
        if not bucket.take(now):
            return self._drop(out, "icmp_rate_limited")
        message = pk.build_icmp(itype, code, bytes(4), ip.datagram[:ICMP_QUOTE_MAX])
        self._send_ip(port_id, eth.src, source, ip.src, pk.IPPROTO_ICMP, message, out)
        self.counters[f"icmp_sent_{itype}_{code}"] += 1

    def _drop(self, out: Output, counter: str) -> Output:
        self.counters[counter] += 1
        return out
