"""The plain-Python reference's batch function and counters (ReferenceBatch, a part of
fastpath.reference.ReferenceDatapath): the forwarding rules of docs/architecture.md
written to be read, frame by frame, over the tables reference.py keeps -- dicts instead
of hash tables, a scan of prefix lengths instead of DIR-24-8, no route cache, checksums
recomputed from scratch -- and run on a ``fastpath.Batch`` exactly as the core does.
IPv6 frames go on to reference_ipv6.py after their Ethernet header."""
import struct

from fastpath import verdicts as V
from fastpath.reference_ipv6 import ReferenceIpv6, wire_len
from fastpath.source_rule import (BROADCAST, DHCP_SERVER_PORT, MARTIAN, SPOOFED, source_refusal,
                                  stays_on_link)

BROADCAST_MAC = b"\xff" * 6
DEFAULT_MTU = 1500            # a port's, until set_port says otherwise (a TAP's)
_REFUSAL_REASON = {MARTIAN: V.REASON_MARTIAN_SOURCE, SPOOFED: V.REASON_SPOOFED_SOURCE}


def _udp_ports(frame, hlen, total, header):
    """(source port, destination port) of a UDP packet's first fragment, each None when
    the packet is not one or too short to hold it."""
    if header[9] != 17 or int.from_bytes(header[6:8], "big") & 0x1FFF:
        return None, None
    l4 = frame[14 + hlen:14 + total]
    return (int.from_bytes(l4[0:2], "big") if len(l4) >= 2 else None,
            int.from_bytes(l4[2:4], "big") if len(l4) >= 4 else None)


def ipv4_checksum(header):
    """RFC 1071 checksum of an IPv4 header: with its checksum field zeroed, the value that
    belongs there; with the field filled in, 0 when the header is valid."""
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class ReferenceBatch(ReferenceIpv6):
    """process() and counters() of ReferenceDatapath (which holds the tables)."""

    # ---- counters ----------------------------------------------------------------------------------

    def counters(self):
        names = {c: n for c, n in V.REASON_NAMES.items() if c}
        return {
            "reasons": {n: self.reason_ctr[c] for c, n in names.items()},
            "ports": {p: dict(self.port_ctr[p]) for p in sorted(self.ports)},
            "namespaces": {ns: {**self.ns_ctr[ns],
                                "reasons": {n: self.ns_reason_ctr[ns][c] for c, n in names.items()},
                                "slow_refused": self._refused_of(ns)}
                           for ns in sorted(self.namespaces)},
            "groups": {key: dict(ctr) for key, ctr in self.group_ctr.items()},
        }

    def _charge(self, ns, reason, k=1):
        self.reason_ctr[reason] += k
        if ns is not None:
            self.ns_reason_ctr[ns][reason] += k

    def _count(self, port, ns, direction, nbytes):
        for ctr in (self.port_ctr[port], self.ns_ctr[ns]):
            ctr[f"{direction}_packets"] += 1
            ctr[f"{direction}_bytes"] += nbytes

    # ---- the batch function -------------------------------------------------------------------------

    def process(self, batch):
        if self._updating:
            raise RuntimeError("process() inside datapath.update() would deadlock")
        with self._lock:
            copies = []
            for i in range(batch.count):
                verdict, reason, out_port, frame_copies, new_bytes = self._decide(batch, i, len(copies))
                batch.verdict[i], batch.reason[i], batch.out_port[i] = verdict, reason, out_port
                batch.fanout_first[i] = len(copies) if frame_copies else 0
                batch.fanout_n[i] = len(frame_copies)
                copies.extend((i, port, eth) for port, eth in frame_copies)
                if new_bytes is not None:
                    start = int(batch.offset[i])
                    batch.buf[start:start + len(new_bytes)] = bytearray(new_bytes)
            for k, (i, port, eth) in enumerate(copies):
                batch.fanout_frame[k], batch.fanout_port[k] = i, port
                batch.fanout_eth[k] = bytearray(eth)
            batch.fanout_count = len(copies)

    def _decide(self, batch, i, copies_so_far):
        """(verdict, reason, out_port, [(port, eth header)], rewritten frame or None)."""
        port = int(batch.port[i])
        if port not in self.ports:
            self._charge(None, V.REASON_UNKNOWN_PORT)
            return V.VERDICT_DROP, V.REASON_UNKNOWN_PORT, -1, [], None
        ns, port_mac, *_ = self.ports[port]
        start, n = int(batch.offset[i]), int(batch.length[i])
        self._count(port, ns, "rx", n)

        def refuse(reason):
            self._charge(ns, reason)
            return V.reason_verdict(reason), reason, -1, [], None

        if start + n > len(batch.buf) or n < 14:
            return refuse(V.REASON_MALFORMED)
        frame = bytes(batch.buf[start:start + n])
        dst_mac, src_mac, ethertype = frame[0:6], frame[6:12], int.from_bytes(frame[12:14], "big")
        group_mac = bool(dst_mac[0] & 1)
        if not group_mac and dst_mac != port_mac:
            return refuse(V.REASON_NOT_FOR_US)
        if ethertype == 0x0806:
            return refuse(V.REASON_MALFORMED if n < 14 + 28 else V.REASON_ARP)
        if ethertype == 0x86DD:
            return self._decide6(batch, i, port, ns, frame, refuse, copies_so_far)
        if ethertype != 0x0800:
            return refuse(V.REASON_UNSUPPORTED_ETHERTYPE)
        if n < 14 + 20:
            return refuse(V.REASON_MALFORMED)
        version, ihl = frame[14] >> 4, frame[14] & 15
        total = int.from_bytes(frame[16:18], "big")
        if version != 4 or ihl < 5 or 14 + ihl * 4 > n or total < ihl * 4 or 14 + total > n:
            return refuse(V.REASON_MALFORMED)
        header = frame[14:14 + ihl * 4]
        if ipv4_checksum(header) != 0:          # RFC 1071: all words, checksum included, sum to
            return refuse(V.REASON_BAD_CHECKSUM)  # all ones (a 0x0000 checksum may come as 0xFFFF)
        ttl, proto = header[8], header[9]
        src, dst = int.from_bytes(header[12:16], "big"), int.from_bytes(header[16:20], "big")
        scope, is_l3 = self.namespaces[ns]
        sport, dport = _udp_ports(frame, ihl * 4, total, header)

        # a DHCP client on a port the switch serves by DHCP: to the slow path, source rule
        # or not (a renewal may come from an address the client lost)
        if port in self.serving_dhcp and (sport, dport) == (68, 67):
            return refuse(V.REASON_DHCP)

        # source rule (fastpath/source_rule.py)
        owner = BROADCAST if (scope, src) in self.broadcasts else self.addresses.get((scope, src))
        why = source_refusal(is_l3, ns, owner, src)
        if why is None and src == 0 and not stays_on_link(proto, dst, dport):
            why = MARTIAN
        if why is not None:
            return refuse(_REFUSAL_REASON[why])
        if not src_mac[0] & 1 and src_mac != bytes(6):
            self.ports[port][2] = src_mac

        if proto == 2:                          # IGMP: the switch snoops and queries
            return refuse(V.REASON_IGMP)
        if sport == DHCP_SERVER_PORT and is_l3 and port not in self.dhcp_servers:
            return refuse(V.REASON_ROGUE_DHCP)

        # broadcast and multicast: on the sender's subnet only
        if dst == 0xFFFFFFFF:
            members = self._dhcp_server_namespaces(scope) if src == 0 else self._subnet(scope, src)
            return self._fan_out(ns, self._l3_ports(members), BROADCAST_MAC, frame, copies_so_far, batch)
        if dst >> 28 == 0xE:
            mcast_mac = bytes([0x01, 0x00, 0x5E, dst >> 16 & 0x7F, dst >> 8 & 0xFF, dst & 0xFF])
            if dst >> 8 == 0xE00000:            # link-local: the sender's subnet
                return self._fan_out(ns, self._l3_ports(self._subnet(scope, src)), mcast_mac,
                                     frame, copies_so_far, batch)
            return self._to_group(ns, scope, dst, mcast_mac, frame, copies_so_far, batch, refuse)
        if dst >> 24 in (0, 127) or dst >> 28 == 0xF:
            return refuse(V.REASON_BAD_DESTINATION)
        if (scope, dst) in self.broadcasts:
            if self._subnet_broadcast(scope, src) != dst and scope not in self.directed:
                return refuse(V.REASON_DIRECTED_BROADCAST)     # routed: RFC 2644
            return self._fan_out(ns, self._l3_ports(self.broadcasts[(scope, dst)]), BROADCAST_MAC,
                                 frame, copies_so_far, batch)
        if group_mac:
            return refuse(V.REASON_NOT_FOR_US)

        size = wire_len(batch, start, frame[14:14 + total], (header[9], ihl * 4))
        return self._unicast(scope, dst, ttl, size, lambda: self._same_subnet(scope, src, dst),
                             lambda out, mac, routed: self._forward(out, mac, frame, routed), refuse)

    # ---- what both families share ------------------------------------------------------------

    def _to_group(self, ns, scope, group, mac, frame, copies_so_far, batch, refuse):
        """A multicast frame to the members of ``group`` in the scope (either family),
        counted per group."""
        members = self.groups.get((scope, group))
        if members is None:
            return refuse(V.REASON_NO_LISTENER)
        ctr = self.group_ctr[(scope, group)]
        ctr["rx_packets"] += 1
        ctr["rx_bytes"] += len(frame)
        result = self._fan_out(ns, self._member_ports(members), mac, frame, copies_so_far, batch)
        ctr["copies"] += len(result[3])
        return result

    def _unicast(self, scope, dst, ttl, size, switched, forward, refuse):
        """A unicast frame of either family to ``dst``: demuxed to the L3 of the scope that
        holds it, else routed.  ``ttl``: its TTL or hop limit; ``size``: the largest packet
        it puts on a link (``wire_len``); ``switched()``: sender and receiver share a subnet
        (the TTL is kept); ``forward(out, mac, routed)`` rewrites it out of port ``out``."""
        owner = self.addresses.get((scope, dst))
        if owner is not None:                   # demux: an address of the scope
            if not self.namespaces[owner][1]:
                return refuse(V.REASON_LOCAL)
            out = self._l3_port(owner)
            if out < 0:
                return refuse(V.REASON_NO_PORT)
            routed = not switched()
            if routed and ttl <= 1:
                return refuse(V.REASON_TTL_EXPIRED)
            if size > self.ports[out][3]:       # larger than the egress MTU
                return refuse(V.REASON_TOO_BIG)
            peer = self.ports[out][2]
            if peer is None:
                return refuse(V.REASON_PEER_UNKNOWN)
            return forward(out, peer, routed)

        hop = self.lookup_route(scope, dst)     # route
        if hop is None:
            return refuse(V.REASON_NO_ROUTE)
        out, gateway = hop
        if out not in self.ports:
            return refuse(V.REASON_NO_PORT)
        if ttl <= 1:
            return refuse(V.REASON_TTL_EXPIRED)
        if size > self.ports[out][3]:
            return refuse(V.REASON_TOO_BIG)
        mac = self.neighbours.get((scope, gateway or dst))
        if mac is None:
            return refuse(V.REASON_NO_NEIGHBOUR)
        return forward(out, mac, True)

    # ---- subnets: the sender's link ---------------------------------------------------------

    def _subnet_broadcast(self, scope, src):
        """The directed broadcast of the subnet of ``src``, an address of the scope on a
        subnet /30 or wider; else None (nobody's, the L2's own sender, /31, /32)."""
        plen = self.onlink.get((scope, src))
        if plen is None or plen > 30:
            return None
        return src | (0xFFFFFFFF >> plen)

    def _subnet(self, scope, src):
        """Who is on the subnet of the sender's ``src``: its directed broadcast's listeners."""
        return self.broadcasts.get((scope, self._subnet_broadcast(scope, src)), ())

    def _same_subnet(self, scope, src, dst):
        """Switched, not routed: both addresses of the scope on one subnet (same prefix)."""
        plen = self.onlink.get((scope, src))
        if plen is None or plen > 31 or plen != self.onlink.get((scope, dst)):
            return False
        return src >> (32 - plen) == dst >> (32 - plen)

    def _dhcp_server_namespaces(self, scope):
        """The scope's L3s whose port is marked as a DHCP server (a DHCP client's broadcast)."""
        return [n for n in self._all_l3(scope) if self._l3_port(n) in self.dhcp_servers]

    def _all_l3(self, scope):
        return sorted(self._children(scope))

    def _forward(self, out, dst_mac, frame, routed):
        """Out of port ``out`` to ``dst_mac``; a routed frame's TTL goes down by one."""
        out_ns, out_mac, *_ = self.ports[out]
        ihl = frame[14] & 15
        header = bytearray(frame[14:14 + ihl * 4])
        if routed:
            header[8] -= 1
            header[10:12] = b"\0\0"
            header[10:12] = ipv4_checksum(bytes(header)).to_bytes(2, "big")
        self._count(out, out_ns, "tx", len(frame))
        new = dst_mac + out_mac + frame[12:14] + bytes(header) + frame[14 + ihl * 4:]
        return V.VERDICT_FORWARD, V.REASON_NONE, out, [], new

    def _l3_ports(self, members):
        """The ports of a broadcast list: each L3 member's port (an L2 member has none)."""
        return [p for m in members if m in self.namespaces for p in [self._l3_port(m)] if p >= 0]

    def _member_ports(self, members):
        """The ports of a group's members: an L3's port, an L2's ports (its uplinks) by id."""
        ports = []
        for m in members:
            if self.namespaces[m][1]:
                ports += [p for p in [self._l3_port(m)] if p >= 0]
            else:
                ports += sorted(p for p, (n, *_) in self.ports.items() if n == m)
        return ports

    def _fan_out(self, ns, ports, dst_mac, frame, copies_so_far, batch):
        """Copies out of ``ports``, except the sender's own (the ingress port among them)."""
        ethertype = frame[12:14]
        copies, overflow = [], 0
        for out in ports:
            if self.ports[out][0] == ns:
                continue
            if copies_so_far + len(copies) >= batch.max_fanout:
                overflow += 1
                continue
            out_ns, out_mac, *_ = self.ports[out]
            copies.append((out, dst_mac + out_mac + ethertype))
            self._count(out, out_ns, "tx", len(frame))
        if overflow:
            self._charge(ns, V.REASON_FANOUT_OVERFLOW, overflow)
        if copies:
            return (V.VERDICT_FANOUT, V.REASON_FANOUT_OVERFLOW if overflow else V.REASON_NONE,
                    -1, copies, None)
        if overflow:
            return V.VERDICT_DROP, V.REASON_FANOUT_OVERFLOW, -1, [], None
        self._charge(ns, V.REASON_NO_LISTENER)
        return V.VERDICT_DROP, V.REASON_NO_LISTENER, -1, [], None
