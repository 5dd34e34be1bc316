"""The slow path: what the fast path hands up and cannot finish itself.

Logic on bytes, no I/O: the daemon calls ``SlowPath.handle()`` with each
frame the fast path punted (and ``tick()`` now and then), writes the frames the
result lists and applies the peer MACs it learned to the ports.  The neighbour
table (``pyctl.daemon.neighbours``) writes the fast path's neighbour copy itself.

What it does, per punt reason (IPv4 here; ARP in ``pyctl.daemon.arp``; IPv6 in
``pyctl.daemon.slowpath6``, neighbour discovery in ``pyctl.daemon.nd``; IGMP
and MLD go to ``pyctl.daemon.multicast``):

- ``LOCAL`` (IPv4 to an address owned by an L2, the switch itself): ICMP echo
  requests are answered; UDP and TCP get ICMP port unreachable (the switch
  runs no service; Linux endpoints turn this into ECONNREFUSED), other
  protocols ICMP protocol unreachable; other ICMP messages and fragments are
  dropped (no reassembly) and counted.
- ``TTL_EXCEEDED``: ICMP time exceeded (11/0) back to the sender.
- ``NO_ROUTE``: ICMP destination unreachable, net (3/0).
- ``TOO_BIG`` (larger than the egress port's MTU): with DF set, ICMP
  fragmentation needed (3/4) with the next hop's MTU (path MTU discovery,
  RFC 1191); without, cut into fragments that go on as routed frames.
- ``NO_NEIGHBOUR`` / ``PEER_UNKNOWN``: the next hop's (or the L3 endpoint's)
  MAC is unknown: ARP requests (IPv6: neighbour solicitations) go out of the
  egress port (every ``arp_retry_interval`` s, at most ``arp_max_requests``),
  the frames wait (``pyctl.daemon.resolution``) and are forwarded when the
  answer comes, or dropped with ICMP host unreachable (3/1; ICMPv6 address
  unreachable) when the neighbour times out (RFC 1812 4.3.3.1).

Frames handed up are plain Ethernet frames as received (no virtio-net header,
TTL not yet decremented).  ICMP errors: ``pyctl.daemon.icmp_errors``.  Every
frame that produces nothing increments one of ``SlowPath.counters``
(``pyctl.daemon.slow_counters``); one it drops is counted for the namespace that sent
it too (``SlowPath.drop``).
"""
from __future__ import annotations

import enum
import ipaddress
import time
from dataclasses import dataclass
from typing import Callable

from fastpath import verdicts
from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6
from pyctl.daemon.arp import Arp
from pyctl.daemon.icmp_errors import IcmpErrors
from pyctl.daemon.nd import NeighbourDiscovery
from pyctl.daemon.neighbours import Neighbour, NeighbourTable
from pyctl.daemon.output import NeighbourLearned, Output, PeerMac
from pyctl.ops.ratelimit import TokenBucket
from pyctl.daemon.resolution import Resolution, Resolutions
from pyctl.daemon.router_adverts import RouterAdverts
from pyctl.daemon.slow_counters import SlowCounters
from pyctl.daemon.slowpath6 import Ipv6Punts
from pyctl.daemon.view import Route, SwitchView
from pyctl.errors import InvalidArgument

__all__ = ["Punt", "Route", "SwitchView", "NeighbourLearned", "PeerMac", "Output",
           "SlowPathConfig", "SlowPath", "TokenBucket"]


class Punt(enum.IntEnum):
    """Why the fast path handed a frame up (its reason codes, fastpath/reasons.py)."""
    ARP = verdicts.REASON_ARP
    LOCAL = verdicts.REASON_LOCAL                # to an address of the switch itself
    NO_ROUTE = verdicts.REASON_NO_ROUTE
    TTL_EXCEEDED = verdicts.REASON_TTL_EXPIRED   # a routed frame whose TTL would reach 0
    NO_NEIGHBOUR = verdicts.REASON_NO_NEIGHBOUR  # the next hop's MAC is unknown
    PEER_UNKNOWN = verdicts.REASON_PEER_UNKNOWN  # the MAC of the endpoint behind an L3 port
    ND = verdicts.REASON_ND                      # IPv6 neighbour discovery
    TOO_BIG = verdicts.REASON_TOO_BIG            # larger than the egress port's MTU


@dataclass(frozen=True)
class SlowPathConfig:
    icmp_rate: float = 100.0            # ICMP errors per second per sending namespace
    icmp_burst: int = 50
    pending_frames_per_neighbour: int = 101     # Linux's neighbour queue (unres_qlen)
    max_pending_bytes: int = 4 << 20            # every waiting frame together
    max_pending_neighbours: int = 1024         # neighbours being resolved at once
    max_neighbours: int = 65536                 # learned neighbours, in all
    max_neighbours_per_scope: int = 4096        # learned neighbours of one L2 scope
    reachable_time: float = 30.0                # then stale and probed (Linux: 30 s)
    arp_retry_interval: float = 1.0
    arp_max_requests: int = 3
    arp_rate: float = 100.0             # ARP requests and neighbour solicitations the switch
    arp_burst: int = 50                 # sends per second, in all
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
            ("max_neighbours_per_scope", self.max_neighbours_per_scope >= 1),
            ("reachable_time", self.reachable_time > 0),
            ("arp_retry_interval", self.arp_retry_interval > 0),
            ("arp_max_requests", self.arp_max_requests >= 1),
            ("ttl", 1 <= self.ttl <= 255),
        ]
        for name, ok in checks:
            if not ok:
                raise InvalidArgument(f"slow path setting {name}={getattr(self, name)!r} "
                                      "is out of range")


class SlowPath:
    """``view``: what the slow path may know of the switch; ``datapath``: the fast
    path whose neighbour table is the compiled copy of ``neighbours`` (None: no
    copy, for tests of the packet logic); ``dhcp_ports``: () -> {port id: DhcpPort}
    of the ports served by DHCP (their router advertisements: ``RouterAdverts``)."""

    def __init__(self, view: SwitchView, config: SlowPathConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, datapath=None, dhcp_ports=None):
        self.view = view
        self.config = config or SlowPathConfig()
        self.clock = clock
        self.counters = SlowCounters(view.port_namespace)
        self.neighbours = NeighbourTable(self.config, self.counters, datapath)
        self.resolutions = Resolutions(self.config, self.counters)
        self.icmp = IcmpErrors(view, self.config, self.counters)
        self.arp = Arp(self)
        self.adverts = RouterAdverts(view, self.icmp, self.counters, dhcp_ports=dhcp_ports)
        self.nd = NeighbourDiscovery(self, self.adverts)
        self.ipv6 = Ipv6Punts(self)
        self._solicit_bucket: TokenBucket | None = None

    def set_config(self, config: SlowPathConfig) -> None:
        """New rates and bounds (a reload: pyctl.daemon.live_limits): every part reads them
        from now; the ICMP error and solicitation buckets keep their tokens up to the new
        bursts and earn them at the new rates."""
        now = self.clock()
        self.config = self.neighbours.config = self.resolutions.config = config
        self.icmp.config = config
        self.icmp.buckets.retune(config.icmp_rate, config.icmp_burst, now)
        if self._solicit_bucket is not None:
            self._solicit_bucket.retune(config.arp_rate, config.arp_burst, now)

    # -- entry points -------------------------------------------------------

    def handle(self, port_id: int, reason: int, frame: bytes) -> Output:
        """Process one punted frame that entered at ``port_id``."""
        self.neighbours.settle()
        out = Output([], [])
        eth = pk.parse_ethernet(frame)
        if eth is None:
            return self._drop(out, port_id, "drop_malformed")
        if self.view.port_scope(port_id) is None or self.view.port_mac(port_id) is None:
            return self._drop(out, port_id, "drop_unknown_port")
        if eth.ethertype == pk.ETH_P_ARP:
            self.arp.handle(port_id, eth, out)
            return out
        if eth.ethertype == pk6.ETH_P_IPV6:
            self.ipv6.handle(port_id, reason, eth, out)
            return out
        if eth.ethertype != pk.ETH_P_IP:
            return self._drop(out, port_id, "drop_unsupported_ethertype")
        ip = pk.parse_ipv4(eth.payload)
        if ip is None:
            return self._drop(out, port_id, "drop_malformed")
        if not self.view.source_allowed(port_id, ip.src):
            return self._drop(out, port_id, "drop_spoofed_source")
        if not self.answer(reason, port_id, eth, ip, out, self._local, self._icmp_error,
                           self._too_big, (pk.ICMP_TIME_EXCEEDED, 0),
                           (pk.ICMP_DEST_UNREACH, pk.ICMP_NET_UNREACH)):
            self._drop(out, port_id, "drop_bad_reason")
        return out

    def answer(self, reason, port_id, eth, ip, out, local, error, too_big, time_exceeded,
               no_route) -> bool:
        """Answer a frame of either family whose source passed, by ``reason``, with the
        family's ``local``, ``too_big``, ``error`` and ICMP (type, code) pairs; False: not
        a reason the slow path answers."""
        if reason == Punt.LOCAL:
            local(port_id, eth, ip, out)
        elif reason == Punt.TTL_EXCEEDED:
            error(port_id, eth, ip, *time_exceeded, out)
        elif reason == Punt.NO_ROUTE:
            error(port_id, eth, ip, *no_route, out)
        elif reason == Punt.TOO_BIG:
            too_big(port_id, eth, ip, out)
        elif reason == Punt.NO_NEIGHBOUR or reason == Punt.PEER_UNKNOWN:
            if not self.to_next_hop(port_id, eth, ip.dst, ip.datagram, out):
                error(port_id, eth, ip, *no_route, out)
        else:
            return False
        return True

    def settle(self) -> None:
        """Write into the fast path the neighbours whose waiting frames the last outputs
        released (``learn``); the daemon calls it after sending those outputs' frames.
        ``handle()`` and ``tick()`` call it first too, so nothing stays unwritten."""
        self.neighbours.settle()

    def tick(self) -> Output:
        """Send the ARP requests and neighbour solicitations that are due (resolutions and
        probes of stale neighbours) and the router advertisements; give up on neighbours
        that did not answer: a resolution's frames are dropped with ICMP host (ICMPv6
        address) unreachable, a stale entry is removed."""
        self.neighbours.settle()
        out = Output([], [])
        now = self.clock()
        for key, res in self.resolutions.due(now):
            if res.requests >= self.config.arp_max_requests:
                self.resolutions.take(key)
                self.counters["neighbour_timeout"] += 1
                for ingress, frame in res.frames:
                    self.drop(ingress, "drop_neighbour_timeout")
                    self._unreachable(ingress, frame, out)
            else:
                self._send_solicitation(key[1], res, now, out)
        self.neighbours.tick(now, lambda entry: self._probe(entry, now, out))
        self.adverts.tick(now, out)
        return out

    def neighbour(self, scope: int, ip) -> tuple[bytes, int] | None:
        """The (MAC, port id) learned for ``ip`` (an IPv4 int or an IPv6Address) in ``scope``."""
        entry = self.neighbours.get(scope, ip)
        return None if entry is None else (entry.mac, entry.port_id)

    def forget_port(self, port_id: int) -> None:
        """Drop what was learned through a port that went away, and what waits for it."""
        self.neighbours.forget_port(port_id)
        self.resolutions.forget_port(port_id)

    def forget_namespace(self, namespace: int) -> None:
        """A namespace was destroyed: its ICMP bucket and its drop counts go; an L2 takes
        its scope's neighbours and the frames waiting in it along."""
        self.icmp.forget(namespace)
        self.counters.forget(namespace)
        self.neighbours.forget_scope(namespace)
        self.resolutions.forget_scope(namespace)

    @property
    def pending_neighbours(self) -> int:
        return len(self.resolutions)

    @property
    def pending_bytes(self) -> int:
        return self.resolutions.bytes

    def gauges(self) -> dict:
        """How much the slow path holds now (``ctl stats``)."""
        return {"neighbours": len(self.neighbours), "neighbours_stale": self.neighbours.stale,
                "resolving": len(self.resolutions), "waiting_bytes": self.resolutions.bytes,
                "icmp_buckets": len(self.icmp.buckets)}

    # -- neighbours (ARP and ND alike) ----------------------------------------------

    def learn_claim(self, scope: int, ip, mac: bytes, port_id: int, out: Output,
                    refusals: tuple[str, str]) -> bool:
        """A neighbour's own claim (ARP sender, ND target) that ``ip`` is at ``mac``: learned
        unless ``port_id`` may not send from ``ip`` or ``ip`` is one of the switch's own
        addresses of ``scope`` (never learned); those are counted under ``refusals``
        (spoofed, switch address) and give False."""
        spoofed, switch_address = refusals
        if not self.view.source_allowed(port_id, ip):
            self.drop(port_id, spoofed)
            return False
        if self.view.owner(scope, ip) == scope:
            self.drop(port_id, switch_address)
            return False
        self.learn(scope, ip, mac, port_id, out)
        return True

    def learn(self, scope: int, ip, mac: bytes, port_id: int, out: Output) -> None:
        """``ip`` in ``scope`` is at ``mac`` behind ``port_id``: into the neighbour table
        (and the fast path's copy); the frames waiting for it go on.  When frames wait,
        the fast path's copy is written by ``settle()``, which the daemon calls once it
        has sent ``out.frames``: until then the fast path still hands the neighbour's
        frames up, so none of them overtakes the ones that waited."""
        key = (scope, ip)
        res = self.resolutions.get(key)
        releasing = res is not None and res.port_id == port_id
        if not self.neighbours.learn(scope, ip, mac, port_id, self.clock(),
                                     install=not releasing):
            return
        out.learned.append(NeighbourLearned(scope, ip, mac, port_id))
        if not releasing:
            return      # (none waits, or heard on another port than the route's: keep waiting)
        self.resolutions.take(key)
        self.counters["neighbour_resolved"] += 1
        for ingress, frame in res.frames:
            self._forward(ingress, frame, res.port_id, mac, out)

    @staticmethod
    def peer_mac(port_id: int, mac: bytes) -> PeerMac:
        return PeerMac(port_id, mac)

    def neighbour_mac(self, scope: int, ip) -> bytes | None:
        entry = self.neighbours.get(scope, ip)
        return None if entry is None else entry.mac

    def _take_solicit_token(self, now: float) -> bool:
        if self._solicit_bucket is None:
            self._solicit_bucket = TokenBucket(self.config.arp_rate, self.config.arp_burst, now)
        return self._solicit_bucket.take(now)

    def _send_solicitation(self, target, res: Resolution, now: float, out: Output) -> None:
        """An ARP request (IPv6: a neighbour solicitation) for ``target`` out of the
        resolution's port."""
        if self.view.port_mac(res.port_id) is None:
            res.requests = self.config.arp_max_requests    # times out at the next tick
            return
        res.requests += 1
        res.next_request = now + self.config.arp_retry_interval
        if not self._take_solicit_token(now):
            self.counters["arp_request_rate_limited"] += 1    # counts as a try: it times out
            return
        if isinstance(target, ipaddress.IPv6Address):
            self.nd.solicit(res.port_id, target, None, out)
            self.counters["nd_solicit_sent"] += 1
        else:
            self.arp.request(res.port_id, target, None, out)
            self.counters["arp_request_sent"] += 1

    def _probe(self, entry: Neighbour, now: float, out: Output) -> bool:
        """A unicast ARP request (IPv6: solicitation) to a stale neighbour; True when it
        counts as a try (sent, or its port is gone), False when the budget had no token."""
        if self.view.port_mac(entry.port_id) is None:
            return True
        if not self._take_solicit_token(now):
            self.counters["arp_probe_rate_limited"] += 1
            return False
        if isinstance(entry.ip, ipaddress.IPv6Address):
            self.nd.solicit(entry.port_id, entry.ip, entry.mac, out)
            self.counters["nd_probe_sent"] += 1
        else:
            self.arp.request(entry.port_id, entry.ip, entry.mac, out)
            self.counters["arp_probe_sent"] += 1
        return True

    # -- routed frames (both families) -------------------------------------------------

    def to_next_hop(self, port_id: int, eth: pk.Ethernet, dst, datagram: bytes,
                    out: Output) -> bool:
        """Send ``datagram`` (entered at ``port_id``) towards ``dst`` once its next hop's MAC
        is known: now, or after resolving it.  False when there is no route."""
        scope = self.view.port_scope(port_id)
        route = self.view.route(scope, dst)
        if route is None:
            return False
        frame = pk.build_ethernet(eth.dst, eth.src, eth.ethertype, datagram)
        key = (scope, route.next_hop)
        known = self.neighbours.get(*key)
        if known is not None and known.port_id == route.port_id:
            # Punted before the entry was learned, or the datapath lost it: forward now.
            self.neighbours.ensure_installed(known)
            self._forward(port_id, frame, route.port_id, known.mac, out)
            return True
        res = self.resolutions.get(key)
        if res is None:
            res = self.resolutions.start(key, route.port_id, port_id)
            if res is None:
                return True
            self._send_solicitation(route.next_hop, res, self.clock(), out)
        self.resolutions.queue(res, port_id, frame)
        return True

    def _forward(self, ingress: int, frame: bytes, egress: int, dst_mac: bytes,
                 out: Output) -> None:
        eth = pk.parse_ethernet(frame)
        if eth.ethertype == pk6.ETH_P_IPV6:
            ip = pk6.parse_ipv6(eth.payload)
            if ip.hop_limit <= 1:
                self.ipv6.error(ingress, eth, ip, pk6.ICMP6_TIME_EXCEEDED, 0, out)
                return
            datagram = pk6.decrement_hop_limit(ip.datagram)
        else:
            ip = pk.parse_ipv4(eth.payload)
            if ip.ttl <= 1:
                self._icmp_error(ingress, eth, ip, pk.ICMP_TIME_EXCEEDED, 0, out)
                return
            datagram = pk.decrement_ttl(ip.datagram)
        src_mac = self.view.port_mac(egress)
        if src_mac is None:
            self._drop(out, ingress, "drop_port_gone")
            return
        out.frames.append((egress, pk.build_ethernet(dst_mac, src_mac, eth.ethertype, datagram)))
        self.counters["frame_forwarded"] += 1

    def _unreachable(self, ingress: int, frame: bytes, out: Output) -> None:
        """ICMP host unreachable (ICMPv6 address unreachable) about a frame whose next
        hop never answered."""
        eth = pk.parse_ethernet(frame)
        if eth.ethertype == pk6.ETH_P_IPV6:
            self.ipv6.error(ingress, eth, pk6.parse_ipv6(eth.payload), pk6.ICMP6_DEST_UNREACH,
                            pk6.UNREACH_ADDRESS, out)
        else:
            self._icmp_error(ingress, eth, pk.parse_ipv4(eth.payload), pk.ICMP_DEST_UNREACH,
                             pk.ICMP_HOST_UNREACH, out)

    def _too_big(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, out: Output) -> None:
        route = self.view.route(self.view.port_scope(port_id), ip.dst)
        mtu = None if route is None else self.view.port_mtu(route.port_id)
        if mtu is None:
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_NET_UNREACH, out)
        elif ip.total_length <= mtu:                      # the MTU grew since: it fits now
            self.to_next_hop(port_id, eth, ip.dst, ip.datagram, out)
        elif ip.flags_frag & pk.IP_DF:
            self.drop(port_id, "too_big_df")           # dropped, answered below
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_FRAG_NEEDED, out,
                             rest=min(mtu, 0xFFFF).to_bytes(4, "big"))
        else:
            fragments = pk.fragment_ipv4(ip, mtu)
            if fragments is None:
                self._drop(out, port_id, "drop_too_big_unfragmentable")
                return
            self.counters["too_big_fragmented"] += 1
            for fragment in fragments:
                self.to_next_hop(port_id, eth, ip.dst, fragment, out)

    # -- the switch's own addresses ------------------------------------------

    def _local(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, out: Output) -> None:
        scope = self.view.port_scope(port_id)
        if self.view.owner(scope, ip.dst) != scope:
            self._drop(out, port_id, "drop_not_local")
            return
        if ip.more_fragments or ip.frag_offset:
            self._drop(out, port_id, "drop_local_fragment")
            return
        if ip.proto == pk.IPPROTO_ICMP:
            icmp = pk.parse_icmp(ip.payload)
            if icmp is None:
                self._drop(out, port_id, "drop_malformed_icmp")
            elif icmp.type != pk.ICMP_ECHO_REQUEST or icmp.code != 0:
                self._drop(out, port_id, "drop_local_icmp")
            elif not pk.is_unicast_host(ip.src):
                self._drop(out, port_id, "drop_echo_bad_source")     # 0.0.0.0: no one to answer
            else:
                reply = pk.build_icmp(pk.ICMP_ECHO_REPLY, 0, icmp.rest, icmp.data)
                out.frames.append((port_id, self.icmp.datagram(port_id, eth.src, ip.dst, ip.src,
                                                               pk.IPPROTO_ICMP, reply)))
                self.counters["echo_reply_sent"] += 1
        elif ip.proto in (pk.IPPROTO_UDP, pk.IPPROTO_TCP):
            # The addressed host itself answers: from the address it was sent to.
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_PORT_UNREACH, out,
                             source=ip.dst)
        else:
            self._icmp_error(port_id, eth, ip, pk.ICMP_DEST_UNREACH, pk.ICMP_PROT_UNREACH, out,
                             source=ip.dst)

    def _icmp_error(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, itype: int,
                    code: int, out: Output, source: int | None = None,
                    rest: bytes = bytes(4)) -> None:
        frame = self.icmp.error(port_id, eth, ip, itype, code, self.clock(), source, rest)
        if frame is not None:
            out.frames.append((port_id, frame))

    def drop(self, port_id: int, counter: str) -> None:
        """A frame that came in at ``port_id`` is dropped (``counter``): counted switch-wide
        and for the namespace that sent it."""
        self.counters.drop(port_id, counter)

    def _drop(self, out: Output, port_id: int, counter: str) -> Output:
        self.drop(port_id, counter)
        return out
