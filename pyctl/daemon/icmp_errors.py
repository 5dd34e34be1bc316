"""ICMP errors the switch sends about a datagram it cannot deliver (RFC 1812 4.3.2).

An error quotes the offending datagram up to 576 bytes in all, comes from the
switch's address facing the sender (or, for the switch as the addressed host,
from the address the datagram was sent to), and is rate-limited by a token
bucket per sending namespace (freed once full again, and when the namespace
is destroyed).  None is sent about ICMP errors, non-first fragments,
link-level or IP broadcasts and multicasts, or datagrams whose source names no
single host.  Every error not sent is counted.
"""
from __future__ import annotations

from pyctl.daemon import packets as pk
from pyctl.ops.ratelimit import BucketPerKey

__all__ = ["IcmpErrors", "ICMP_QUOTE_MAX"]

ICMP_QUOTE_MAX = 576 - 20 - 8   # RFC 1812 4.3.2.3: the whole error fits in 576 bytes


class IcmpErrors:
    """``view``: the slow path's ``SwitchView``; ``config``: its ``SlowPathConfig``
    (``icmp_rate``, ``icmp_burst``, ``ttl``)."""

    def __init__(self, view, config, counters):
        self.view = view
        self.config = config
        self.counters = counters
        self.buckets = BucketPerKey(config.icmp_rate, config.icmp_burst)

    def error(self, port_id: int, eth: pk.Ethernet, ip: pk.IPv4, itype: int, code: int,
              now: float, source: int | None = None) -> bytes | None:
        """The frame carrying ICMP ``itype``/``code`` about ``ip`` back to its sender
        (out of ``port_id``), or None when RFC 1812 4.3.2.7 forbids it or the sender's
        bucket is empty.  It comes from ``source`` (the switch as the addressed host)
        or, for a router's errors, from the switch's address facing the sender."""
        why = self._suppressed(eth, ip)
        if why is None and source is None:
            source = self.view.icmp_source(port_id)
            if source is None:
                why = "icmp_no_source_address"
        if why is None and not self.buckets.take(self.view.port_namespace(port_id), now):
            why = "icmp_rate_limited"
        if why is not None:
            self.counters[why] += 1
            return None
        message = pk.build_icmp(itype, code, bytes(4), ip.datagram[:ICMP_QUOTE_MAX])
        self.counters[f"icmp_sent_{itype}_{code}"] += 1
        return self.datagram(port_id, eth.src, source, ip.src, pk.IPPROTO_ICMP, message)

    def datagram(self, port_id: int, dst_mac: bytes, src: int, dst: int, proto: int,
                 payload: bytes) -> bytes:
        """An IPv4 datagram the switch originates, framed for ``port_id``."""
        packet = pk.build_ipv4(src, dst, proto, payload, ttl=self.config.ttl)
        return pk.build_ethernet(dst_mac, self.view.port_mac(port_id), pk.ETH_P_IP, packet)

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
