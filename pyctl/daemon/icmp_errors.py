"""ICMP and ICMPv6 errors the switch sends about a datagram it cannot deliver
(RFC 1812 4.3.2, RFC 4443).

An ICMP error quotes the offending datagram up to 576 bytes in all, an ICMPv6
error up to 1280 (the IPv6 minimum MTU); it comes from the switch's address
facing the sender (IPv6: else the port's link-local address), or, for the
switch as the addressed host, from the address the datagram was sent to.  Both
families draw on one token bucket per sending namespace (freed once full
again, and when the namespace is destroyed).  None is sent about ICMP errors
(ICMPv6 errors and redirects), non-first fragments, link-level or IP
broadcasts and multicasts (IPv6: except packet too big), or datagrams whose
source names no single host.  Every error not sent is counted, for the sender's
namespace too (``SlowCounters.drop``).
"""
from __future__ import annotations

import struct

from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6
from pyctl.ops.ratelimit import BucketPerKey

__all__ = ["IcmpErrors", "ICMP_QUOTE_MAX", "ICMP6_QUOTE_MAX"]

ICMP_QUOTE_MAX = 576 - 20 - 8   # RFC 1812 4.3.2.3: the whole error fits in 576 bytes
ICMP6_QUOTE_MAX = 1280 - 40 - 8  # RFC 4443 2.4(c): the whole error fits in the minimum MTU


class IcmpErrors:
    """``view``: the slow path's ``SwitchView``; ``config``: its ``SlowPathConfig``
    (``icmp_rate``, ``icmp_burst``, ``ttl``)."""

    def __init__(self, view, config, counters):
        self.view = view
        self.config = config
        self.counters = counters
        self.buckets = BucketPerKey(config.icmp_rate, config.icmp_burst)

    def error(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, itype: int, code: int,
              now: float, source: int | None = None, rest: bytes = bytes(4)) -> bytes | None:
        """The frame carrying ICMP ``itype``/``code`` about ``ip`` back to its sender
        (out of ``port_id``), or None when RFC 1812 4.3.2.7 forbids it or the sender's
        bucket is empty.  It comes from ``source`` (the switch as the addressed host)
        or, for a router's errors, from the switch's address facing the sender.  ``rest``:
        the 4 bytes after the checksum (fragmentation needed: the next hop's MTU)."""
        why = self._suppressed(eth, ip)
        if why is None and source is None:
            source = self.view.icmp_source(port_id)
            if source is None:
                why = "icmp_no_source_address"
        if why is None and not self.buckets.take(self.view.port_namespace(port_id), now):
            why = "icmp_rate_limited"
        if why is not None:
            self.counters.drop(port_id, why)
            return None
        message = pk.build_icmp(itype, code, rest, ip.datagram[:ICMP_QUOTE_MAX])
        self.counters[f"icmp_sent_{itype}_{code}"] += 1
        return self.datagram(port_id, eth.src, source, ip.src, pk.IPPROTO_ICMP, message)

    def datagram(self, port_id: int, dst_mac: bytes, src: int, dst: int, proto: int,
                 payload: bytes) -> bytes:
        """An IPv4 datagram the switch originates, framed for ``port_id``."""
        packet = pk.build_ipv4(src, dst, proto, payload, ttl=self.config.ttl)
        return pk.build_ethernet(dst_mac, self.view.port_mac(port_id), pk.ETH_P_IP, packet)

    def error6(self, port_id: int, eth: pk.Ethernet, ip: pk6.IPv6, itype: int, code: int,
               now: float, source=None, param: int = 0) -> bytes | None:
        """The frame carrying ICMPv6 ``itype``/``code`` about ``ip`` back to its sender,
        or None when RFC 4443 2.4(e) forbids it or the sender's bucket is empty.
        ``param``: the 32-bit field after the checksum (packet too big: the MTU;
        parameter problem: the pointer).  From ``source``, else the switch's address
        facing the sender, else the port's link-local address."""
        why = self._suppressed6(eth, ip, itype)
        if why is None and not self.buckets.take(self.view.port_namespace(port_id), now):
            why = "icmp_rate_limited"
        if why is not None:
            self.counters.drop(port_id, why)
            return None
        if source is None:
            source = self.view.icmp_source(port_id, 6) or pk6.link_local_of(self.view.port_mac(port_id))
        body = struct.pack("!I", param) + ip.datagram[:ICMP6_QUOTE_MAX]
        self.counters[f"icmp6_sent_{itype}_{code}"] += 1
        message = pk6.build_icmp6(source, ip.src, itype, code, body)
        return self.datagram6(port_id, eth.src, source, ip.src, message)

    def datagram6(self, port_id: int, dst_mac: bytes, src, dst, message: bytes,
                  hop_limit: int | None = None) -> bytes:
        """An ICMPv6 datagram the switch originates, framed for ``port_id``."""
        packet = pk6.build_ipv6(src, dst, pk6.IPPROTO_ICMPV6, message,
                                hop_limit=self.config.ttl if hop_limit is None else hop_limit)
        return pk.build_ethernet(dst_mac, self.view.port_mac(port_id), pk6.ETH_P_IPV6, packet)

    def forget(self, namespace: int) -> None:
        """A namespace was destroyed: its bucket goes."""
        self.buckets.forget(namespace)

    @staticmethod
    def _suppressed(eth: pk.Ethernet, ip: pk.IPv4) -> str | None:
        if pk.is_multicast_mac(eth.dst):
            return "icmp_suppressed_l2_multicast"
        if (ip.dst >> 28) == 0xE or ip.dst == 0xFFFFFFFF:
            return "icmp_suppressed_ip_multicast"
        if not pk.is_unicast_host(ip.src):
            return "icmp_suppressed_bad_source"
        if ip.frag_offset:
            return "icmp_suppressed_fragment"
        if ip.proto == pk.IPPROTO_ICMP and (len(ip.payload) < 1
                                            or ip.payload[0] not in pk.ICMP_QUERY_TYPES):
            return "icmp_suppressed_about_error"
        return None

    @staticmethod
    def _suppressed6(eth: pk.Ethernet, ip: pk6.IPv6, itype: int) -> str | None:
        # RFC 4443 2.4(e): packet too big goes to multicast senders too (path MTU discovery).
        if itype != pk6.ICMP6_PACKET_TOO_BIG:
            if pk.is_multicast_mac(eth.dst):
                return "icmp_suppressed_l2_multicast"
            if ip.dst.is_multicast:
                return "icmp_suppressed_ip_multicast"
        if not pk6.is_unicast_host(ip.src):
            return "icmp_suppressed_bad_source"
        if ip.frag_offset:
            return "icmp_suppressed_fragment"
        if ip.upper == pk6.IPPROTO_ICMPV6:
            data = ip.upper_data
            if len(data) < 1 or data[0] < 128 or data[0] == pk6.ND_REDIRECT:
                return "icmp_suppressed_about_error"
        return None
