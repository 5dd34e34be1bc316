"""The plain-Python reference's IPv6 frame path (ReferenceIpv6, a part of
fastpath.reference.ReferenceDatapath through ReferenceBatch): the rules of
fastpath/process6.pxi written to be read, over the same tables reference.py keeps for
IPv4 (keys are ``IPv6Address`` values), the extension-header walk of fastpath/ipv6.py
and the source rule of fastpath/source_rule.py."""
import ipaddress

from fastpath import ipv6, verdicts as V
from fastpath.source_rule import is_link_source, is_martian_source, may_send_from

V6 = ipaddress.IPv6Address
TCP, UDP = 6, 17
ALL_DHCP_SERVERS = V6("ff02::1:2")     # All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1)


def udp_ports(packet, upper):
    """(source, destination) ports of an IPv6 packet whose upper layer is UDP (not a later
    fragment); None for a port the packet is too short to hold."""
    proto, off = upper
    if proto != UDP:
        return None, None
    return tuple(int.from_bytes(packet[at:at + 2], "big") if at + 2 <= len(packet) else None
                 for at in (off, off + 2))


def same_prefix(a, b, plen):
    """Do IPv6 addresses a and b share their first ``plen`` bits?"""
    return (int(a) ^ int(b)) >> (128 - plen) == 0


def wire_len(batch, start, packet, upper):
    """The largest IP packet this one (either family; ``upper``: its upper layer's
    protocol and offset) puts on a link: itself, or for a GSO super-frame (the
    virtio-net header before the frame says gso_size) the headers up to the TCP / UDP
    payload + gso_size (fastpath/process6.pxi wire_len6, process.pxi too_big4)."""
    if start < 12 or batch.buf[start - 11] == 0:
        return len(packet)
    proto, off = upper
    hdr_end = off
    if proto == TCP and off + 13 <= len(packet):
        hdr_end = off + (packet[off + 12] >> 4) * 4
    elif proto == UDP:
        hdr_end = off + 8
    gso_size = int(batch.buf[start - 8]) | int(batch.buf[start - 7]) << 8
    return min(len(packet), hdr_end + gso_size)


class ReferenceIpv6:
    """_decide6() of ReferenceBatch (the tables are ReferenceDatapath's)."""

    def _decide6(self, batch, i, port, ns, frame, refuse, copies_so_far):
        """What ReferenceBatch._decide() returns, for an IPv6 frame whose Ethernet header
        passed (``refuse(reason)`` charges and returns a refusal)."""
        n = len(frame)
        if n < 14 + 40 or frame[14] >> 4 != 6:
            return refuse(V.REASON_MALFORMED)
        end = 40 + int.from_bytes(frame[18:20], "big")
        if 14 + end > n:
            return refuse(V.REASON_MALFORMED)
        packet = frame[14:14 + end]
        hop_limit, src, dst = packet[7], V6(packet[8:24]), V6(packet[24:40])
        scope, is_l3 = self.namespaces[ns]

        # the source rule
        if is_martian_source(src):
            return refuse(V.REASON_SPOOFED_SOURCE)
        link_src = is_link_source(src)
        src_owned = False
        if not link_src:
            owner = self.addresses.get((scope, src))
            if not may_send_from(is_l3, ns, owner, src):
                return refuse(V.REASON_SPOOFED_SOURCE)
            src_owned = owner == ns
        src_mac = frame[6:12]
        if not src_mac[0] & 1 and src_mac != bytes(6):
            self.ports[port][2] = src_mac

        # the upper layer: neighbour discovery and MLD are the switch's
        upper = ipv6.walk(packet)
        if upper is None:
            return refuse(V.REASON_BAD_EXTENSION_HEADER)
        proto, off = upper
        if proto == ipv6.ICMPV6:
            if off + 4 > end:
                return refuse(V.REASON_MALFORMED)
            if packet[off] in ipv6.ND_TYPES:
                return refuse(V.REASON_ND)
            if packet[off] in ipv6.MLD_TYPES:
                return refuse(V.REASON_MLD)
        if src.is_unspecified:
            return refuse(V.REASON_SPOOFED_SOURCE)
        if port in self.serving_dhcp and udp_ports(packet, upper) == (546, 547):
            return refuse(V.REASON_DHCP)        # the switch's DHCPv6 server answers
        if udp_ports(packet, upper)[0] == 547 and is_l3 and port not in self.dhcp_servers:
            return refuse(V.REASON_ROGUE_DHCP)  # a server (or relay) the L2 does not trust

        # multicast: bridged inside the scope (a solicited-node group: to its members, the
        # owners of the addresses it is made from)
        if dst.is_multicast:
            scope_field = ipv6.multicast_scope(dst)
            mac = ipv6.group_mac(dst)
            if scope_field < ipv6.LINK_SCOPE:
                return refuse(V.REASON_BAD_DESTINATION)
            link_scope = scope_field == ipv6.LINK_SCOPE
            if link_scope and dst == ALL_DHCP_SERVERS:      # the scope's trusted DHCP servers
                return self._fan_out(ns, self._l3_ports(self._dhcp_server_namespaces(scope)), mac,
                                     frame, copies_so_far, batch)
            if link_scope and not ipv6.is_solicited_node(dst):
                return self._fan_out(ns, self._l3_ports(self._all_l3(scope)), mac, frame,
                                     copies_so_far, batch)
            if link_src and not link_scope:
                return refuse(V.REASON_LINK_LOCAL_SOURCE_ROUTED)
            return self._to_group(ns, scope, dst, mac, frame, copies_so_far, batch, refuse)

        # unicast
        if dst.is_unspecified or dst.is_loopback or dst.ipv4_mapped is not None:
            return refuse(V.REASON_BAD_DESTINATION)
        if frame[0] & 1:
            return refuse(V.REASON_NOT_FOR_US)
        if dst.is_link_local:                   # on a TAP link: the switch
            return refuse(V.REASON_LOCAL)
        if link_src:
            return refuse(V.REASON_LINK_LOCAL_SOURCE_ROUTED)
        start = int(batch.offset[i])

        def switched():                         # both on one on-link prefix of the scope
            plen = self.onlink[(scope, dst)]
            return src_owned and self.onlink[(scope, src)] == plen and same_prefix(src, dst, plen)
        return self._unicast(scope, dst, hop_limit, wire_len(batch, start, packet, upper), switched,
                             lambda out, mac, routed: self._forward6(out, mac, frame, routed),
                             refuse)

    def _forward6(self, out, dst_mac, frame, routed):
        out_ns, out_mac, *_ = self.ports[out]
        self._count(out, out_ns, "tx", len(frame))
        hop_limit = frame[21] - 1 if routed else frame[21]
        new = dst_mac + out_mac + frame[12:21] + bytes([hop_limit]) + frame[22:]
        return V.VERDICT_FORWARD, V.REASON_NONE, out, [], new
