"""The slow path's IPv6 frames: what the fast path hands up with ethertype 0x86DD.

The same reasons as IPv4 (``pyctl.daemon.slowpath``), answered with ICMPv6
(RFC 4443), and neighbour discovery (``pyctl.daemon.nd``):

- ``ND``: neighbour discovery, ``NeighbourDiscovery.handle``.
- ``LOCAL`` (to an address of the L2 scope itself, or to the port's link-local
  address): echo requests are answered from the address they were sent to;
  UDP and TCP get port unreachable (1/4), another upper layer parameter
  problem, unrecognised next header (4/1, pointing at the field that names
  it); other ICMPv6 and fragments are dropped and counted.
- ``TTL_EXCEEDED`` (hop limit): time exceeded (3/0).
- ``NO_ROUTE``: destination unreachable, no route (1/0).
- ``TOO_BIG``: packet too big (2/0) with the egress port's MTU: routers never
  fragment IPv6; the sender's path MTU discovery does the rest.
- ``NO_NEIGHBOUR`` / ``PEER_UNKNOWN``: the next hop is resolved by neighbour
  solicitation, the frames wait and go on (``SlowPath.to_next_hop``).

A frame whose source the port may not use is dropped and counted
(``drop_spoofed_source``); a link-local source is the sender's own on its
link, so it may only reach the switch's link-local address there.
"""
from __future__ import annotations

from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6
from fastpath import verdicts

__all__ = ["Ipv6Punts"]

_UDP_TCP = (pk6.IPPROTO_UDP, pk6.IPPROTO_TCP)


class Ipv6Punts:
    """``sp``: the ``SlowPath`` whose view, counters, ICMP errors and resolution it uses."""

    def __init__(self, sp):
        self.sp = sp
        self.view = sp.view
        self.counters = sp.counters

    def handle(self, port_id: int, reason: int, eth: pk.Ethernet, out) -> None:
        ip = pk6.parse_ipv6(eth.payload)
        if ip is None:
            self.sp.drop(port_id, "drop_malformed")
            return
        if reason == verdicts.REASON_ND:
            self.sp.nd.handle(port_id, eth, ip, out)
            return
        port_ll = pk6.link_local_of(self.view.port_mac(port_id))
        if ip.src.is_link_local:
            if reason != verdicts.REASON_LOCAL or ip.dst != port_ll:
                self.sp.drop(port_id, "drop_link_local_source")     # it never leaves its link
                return
        elif not self.view.source_allowed(port_id, ip.src):
            self.sp.drop(port_id, "drop_spoofed_source")
            return
        if not self.sp.answer(reason, port_id, eth, ip, out, self._local, self.error,
                              self._too_big, (pk6.ICMP6_TIME_EXCEEDED, 0),
                              (pk6.ICMP6_DEST_UNREACH, pk6.UNREACH_NO_ROUTE)):
            self.sp.drop(port_id, "drop_bad_reason")

    def error(self, port_id, eth, ip, itype, code, out, source=None, param=0) -> None:
        """ICMPv6 ``itype``/``code`` about ``ip`` back out of ``port_id`` (if it may go)."""
        frame = self.sp.icmp.error6(port_id, eth, ip, itype, code, self.sp.clock(), source, param)
        if frame is not None:
            out.frames.append((port_id, frame))

    def _too_big(self, port_id, eth, ip, out) -> None:
        route = self.view.route(self.view.port_scope(port_id), ip.dst)
        mtu = None if route is None else self.view.port_mtu(route.port_id)
        if mtu is None:
            self.error(port_id, eth, ip, pk6.ICMP6_DEST_UNREACH, pk6.UNREACH_NO_ROUTE, out)
        elif len(ip.datagram) <= mtu:                    # the MTU grew since: it fits now
            self.sp.to_next_hop(port_id, eth, ip.dst, ip.datagram, out)
        else:
            self.sp.drop(port_id, "too_big_ipv6")       # dropped, answered below
            self.error(port_id, eth, ip, pk6.ICMP6_PACKET_TOO_BIG, 0, out, param=mtu)

    def _local(self, port_id, eth, ip, out) -> None:
        scope = self.view.port_scope(port_id)
        port_ll = pk6.link_local_of(self.view.port_mac(port_id))
        if ip.dst != port_ll and self.view.owner(scope, ip.dst) != scope:
            self.sp.drop(port_id, "drop_not_local")
            return
        if ip.frag_offset or ip.more_fragments:
            self.sp.drop(port_id, "drop_local_fragment")
            return
        if ip.upper == pk6.IPPROTO_ICMPV6:
            icmp = pk6.parse_icmp6(ip)
            if icmp is None:
                self.sp.drop(port_id, "drop_malformed_icmp")
            elif icmp.type != pk6.ICMP6_ECHO_REQUEST or icmp.code != 0:
                self.sp.drop(port_id, "drop_local_icmp")
            elif not pk6.is_unicast_host(ip.src):
                self.sp.drop(port_id, "drop_echo_bad_source")
            else:
                reply = pk6.build_icmp6(ip.dst, ip.src, pk6.ICMP6_ECHO_REPLY, 0, icmp.body)
                out.frames.append((port_id, self.sp.icmp.datagram6(port_id, eth.src, ip.dst,
                                                                   ip.src, reply)))
                self.counters["echo6_reply_sent"] += 1
        elif ip.upper in _UDP_TCP:
            self.error(port_id, eth, ip, pk6.ICMP6_DEST_UNREACH, pk6.UNREACH_PORT, out,
                       source=ip.dst)
        elif ip.upper == pk6.IPPROTO_NONE:
            self.sp.drop(port_id, "drop_local_no_next_header")
        else:
            self.error(port_id, eth, ip, pk6.ICMP6_PARAM_PROB, pk6.PARAM_NEXT_HEADER, out,
                       source=ip.dst, param=ip.upper_field)
