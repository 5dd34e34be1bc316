# The IPv6 frame path: what decide() (process.pxi) hands an IPv6 frame to once its
# Ethernet header passed, and pass 1's prefetch for it.  The same tables as IPv4, their
# IPv6 instances (DpTables' demux6, neigh6, fib6, nh6, rc6), the same counters, fan-out
# and reasons; `noexcept nogil`, allocation-free, every bad frame a counted reason.
#
# Per frame (docs/architecture.md, "Forwarding rules"; fastpath/reference_ipv6.py is the
# same in Python):
#  1. the fixed header: version 6, the payload length within the frame;
#  2. the source rule: martians (multicast, ::1, v4-mapped) never; an address of the scope
#     only its owner's if that is an L3 (an L3 only its own; an L2's port, an uplink, none
#     the scope holds, not even the L2's own: the gateway's is the switch's alone, as in
#     IPv4); a link-local (fe80::/10) or unspecified source skips the ownership check but
#     must stay on the link (below);
#  3. the extension-header chain to the upper layer (ipv6.pxi: bounded, else
#     bad_extension_header); ICMPv6 neighbour discovery -> nd, MLD -> mld (the switch's
#     business, whatever the destination); the unspecified source is for those only;
#     on a port the switch serves by DHCP, a DHCPv6 client message (UDP 546 -> 547,
#     whatever the destination) -> dhcp: the switch answers, no tenant hears it; a DHCPv6
#     server or relay message (UDP from 547) from an L3 port not marked dhcp_server ->
#     rogue_dhcp;
#  4. multicast: link scope (ff02::/16, ...) to every L3 of the scope, like 224.0.0.0/24,
#     but ff02::1:2 (DHCPv6's servers and relays) to the scope's trusted DHCP servers
#     only, and a solicited-node group (ff02::1:ff00:0/104) and wider scopes through the
#     scope's group table (no members: no_listener; the compiler makes each L3 a member of
#     its addresses' solicited-node groups); scope 0/1 never (bad_destination).  MAC 33:33 +
#     the group's low 32 bits; no hop-limit change;
#  5. unicast: ::, ::1, v4-mapped never (bad_destination); link-local destinations are
#     the switch (on a TAP link there is nobody else: local); a link-local source goes
#     no further (link_local_source_routed);
#  6. demux on (scope, 128-bit destination), as IPv4: an L2's address is the switch's
#     (local); an L3's goes out of its port.  Between two addresses of one subnet (the
#     owners' on-link prefixes, demux.pxi) the frame is switched: its hop limit stays;
#     otherwise it is routed: hop limit <= 1 -> ttl_expired, else decremented by one (a
#     plain byte write: IPv6 has no header checksum);
#  7. otherwise route: the sender's route cache, else the scope's FIB (lpm6.pxi) and
#     neighbour table, as IPv4;
#  8. a frame larger than the egress port's MTU (a super-frame: one of its segments) goes
#     to the slow path (too_big: ICMPv6 packet too big); routers never fragment IPv6.
from fastpath.includes.compiler cimport TS_PREFETCH, TS_PREFETCH_W, unlikely

cdef enum:
    ICMPV6_MLD_QUERY = 130
    ICMPV6_MLD_REPORT = 131
    ICMPV6_MLD_DONE = 132
    ICMPV6_MLD2_REPORT = 143
    ICMPV6_ND_FIRST = 133           # router solicitation ...
    ICMPV6_ND_LAST = 137            # ... redirect
    MCAST_SCOPE_LINK = 2
    IPPROTO_TCP6 = 6
    IPPROTO_UDP6 = 17
    DHCP6_CLIENT_PORT = 546
    DHCP6_SERVER_PORT = 547


cdef inline uint8_t forward6(const DpTables* t, BatchView* b, Py_ssize_t i, uint8_t* p,
                             int32_t op, uint64_t dst_mac, uint32_t nbytes, bint routed) noexcept nogil:
    store_mac(p, dst_mac)
    store_mac(p + 6, t.ports.mac[op])
    if routed:
        p[ETH_HLEN + 7] -= 1
    b.out_port[i] = op
    count_tx(&t.ctr, op, t.ports.ns[op], nbytes)
    return VERDICT_FORWARD


cdef inline int32_t udp6_port(const uint8_t* ip, const Ip6Upper* u, uint32_t end,
                              uint32_t at) noexcept nogil:
    """The UDP port at ``at`` (UDP_SOURCE_PORT, UDP_DEST_PORT) of an IPv6 packet whose upper
    layer is UDP (not a later fragment), or -1."""
    if u.proto != IPPROTO_UDP6 or u.off + at + 2 > end:
        return -1
    return (<int32_t>ip[u.off + at] << 8) | ip[u.off + at + 1]


cdef inline uint8_t ipv6_copies(BatchView* b, Py_ssize_t start, uint8_t verdict) noexcept nogil:
    """The fan-out copies made from ``start`` on get IPv6's ethertype (fanout.pxi writes
    IPv4's: a parameter there cost the IPv4 path instructions); returns ``verdict``."""
    cdef Py_ssize_t k
    for k in range(start, b.fanout_count):
        b.fanout_eth[k * ETH_HLEN + 12] = ETHERTYPE_IPV6 >> 8
        b.fanout_eth[k * ETH_HLEN + 13] = ETHERTYPE_IPV6 & 0xFF
    return verdict


cdef inline uint32_t wire_len6(const uint8_t* p, uint32_t off, const uint8_t* ip, uint32_t end,
                               const Ip6Upper* u) noexcept nogil:
    """The largest IPv6 packet frame ``p`` puts on a link: itself (``end`` bytes), or
    one segment of a super-frame -- the headers up to the TCP / UDP payload (the TCP
    header's data offset; the chain's end for anything else or a header cut short) +
    gso_size."""
    cdef uint32_t hdr_end = u.off
    if not is_super_frame(p, off):
        return end
    if u.proto == IPPROTO_TCP6 and u.off + 13 <= end:
        hdr_end = u.off + (ip[u.off + 12] >> 4) * 4
    elif u.proto == IPPROTO_UDP6:
        hdr_end = u.off + 8
    return segment_len(p, end, hdr_end)


cdef uint8_t decide6(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t port, int32_t ns,
                     uint8_t* p, uint32_t n, uint64_t dmac) noexcept nogil:
    """Frame i, an IPv6 frame of ``n`` bytes at ``p`` that namespace ``ns`` sent on
    ``port`` (its Ethernet header checked): its verdict (see the top)."""
    cdef uint8_t* ip = p + ETH_HLEN
    cdef uint32_t end, scope_bits, gen, e
    cdef uint64_t shi, slo, dhi, dlo, vs = 0, vd, v, mac, smac
    cdef int32_t scope, owner, op
    cdef uint8_t icmp_type
    cdef bint link_src, src_owned = False, routed
    cdef Py_ssize_t first
    cdef Ip6Upper u
    cdef RcEntry6* rc
    cdef const NextHop6* hop

    # 1. the fixed header
    if unlikely(n < ETH_HLEN + IPV6_HLEN or (ip[0] >> 4) != 6):
        return drop(t, b, i, ns, REASON_MALFORMED)
    end = IPV6_HLEN + ((<uint32_t>ip[4] << 8) | ip[5])
    if unlikely(ETH_HLEN + end > n):
        return drop(t, b, i, ns, REASON_MALFORMED)
    shi = load_be64(ip + 8)
    slo = load_be64(ip + 16)
    dhi = load_be64(ip + 24)
    dlo = load_be64(ip + 32)
    scope = t.ns.scope[ns]

    # 2. the source rule (fastpath/source_rule.py)
    if unlikely(ip6_martian_source(shi, slo)):
        return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
    link_src = ip6_is_link_local(shi) or (shi == 0 and slo == 0)
    if not link_src:
        if hash6_find(&t.demux6, scope, shi, slo, &vs):
            # (an L2 is its own scope: ns == scope is an uplink using the L2's own address)
            if unlikely((vs & DEMUX_GROUP) or <int32_t>vs != ns or ns == scope):
                return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
            src_owned = True
        elif unlikely(t.ns.l3[ns]):
            return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
    smac = load_mac(p + 6)
    if not (smac & 1) and smac != 0:
        t.ports.peer[port] = smac          # learn the endpoint behind the port

    # 3. the upper layer: neighbour discovery and MLD are the switch's
    if unlikely(not ipv6_walk(ip, end, &u)):
        return drop(t, b, i, ns, REASON_BAD_EXTENSION_HEADER)
    if u.proto == NH_ICMPV6:
        if unlikely(u.off + 4 > end):
            return drop(t, b, i, ns, REASON_MALFORMED)
        icmp_type = ip[u.off]
        if ICMPV6_ND_FIRST <= icmp_type <= ICMPV6_ND_LAST:
            return slow(t, b, i, ns, REASON_ND)
        if icmp_type == ICMPV6_MLD_QUERY or icmp_type == ICMPV6_MLD_REPORT \
                or icmp_type == ICMPV6_MLD_DONE or icmp_type == ICMPV6_MLD2_REPORT:
            return slow(t, b, i, ns, REASON_MLD)
    if unlikely(shi == 0 and slo == 0):
        return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
    if unlikely(t.ports.serve_dhcp[port]) and udp6_port(ip, &u, end, UDP_DEST_PORT) == DHCP6_SERVER_PORT \
            and udp6_port(ip, &u, end, UDP_SOURCE_PORT) == DHCP6_CLIENT_PORT:
        return slow(t, b, i, ns, REASON_DHCP)
    # DHCPv6 server (and relay) messages: only from the L2's own ports and the servers it trusts
    if unlikely(udp6_port(ip, &u, end, UDP_SOURCE_PORT) == DHCP6_SERVER_PORT
                and t.ns.l3[ns] and not t.ports.dhcp_server[port]):
        return drop(t, b, i, ns, REASON_ROGUE_DHCP)

    # 4. multicast: bridged inside the scope, hop limit as it came
    if ip6_is_multicast(dhi):
        scope_bits = (dhi >> 48) & 0xF
        mac = ip6_group_mac(dlo)
        if unlikely(scope_bits < MCAST_SCOPE_LINK):
            return drop(t, b, i, ns, REASON_BAD_DESTINATION)
        first = b.fanout_count
        if scope_bits == MCAST_SCOPE_LINK and dhi == 0xFF02000000000000ULL and dlo == 0x10002:
            return ipv6_copies(b, first, fan_out(t, b, i, ns, t.lists.dhcp + scope, mac, n))
        if scope_bits == MCAST_SCOPE_LINK and not ip6_is_solicited_node(dhi, dlo):
            return ipv6_copies(b, first, fan_out(t, b, i, ns, scope, mac, n))
        if unlikely(link_src and scope_bits != MCAST_SCOPE_LINK):
            return drop(t, b, i, ns, REASON_LINK_LOCAL_SOURCE_ROUTED)
        if hash6_find(&t.demux6, scope, dhi, dlo, &v) and (v & DEMUX_MCAST) == DEMUX_MCAST:
            return ipv6_copies(b, first, fan_out_group(t, b, i, ns, &t.mgroups[v & 0xFFFFFFFFu], mac, n))
        return drop(t, b, i, ns, REASON_NO_LISTENER)

    # 5. unicast
    if unlikely(ip6_bad_destination(dhi, dlo)):
        return drop(t, b, i, ns, REASON_BAD_DESTINATION)
    if unlikely(dmac & 1):
        return drop(t, b, i, ns, REASON_NOT_FOR_US)
    if unlikely(ip6_is_link_local(dhi)):
        return slow(t, b, i, ns, REASON_LOCAL)
    if unlikely(link_src):
        return drop(t, b, i, ns, REASON_LINK_LOCAL_SOURCE_ROUTED)

    if hash6_find(&t.demux6, scope, dhi, dlo, &vd):
        # 6. demux: an address of the scope
        owner = <int32_t>vd
        if not t.ns.l3[owner]:
            return slow(t, b, i, ns, REASON_LOCAL)
        op = t.ns.port[owner]
        if unlikely(op < 0):
            return drop(t, b, i, ns, REASON_NO_PORT)
        routed = not (src_owned and demux_plen(vs) == demux_plen(vd)
                      and ip6_same_prefix(shi, slo, dhi, dlo, demux_plen(vd)))
        if unlikely(routed and ip[7] <= 1):
            return slow(t, b, i, ns, REASON_TTL_EXPIRED)
        if unlikely(over_mtu(&t.ports, op, wire_len6(p, b.offset[i], ip, end, &u))):
            return slow(t, b, i, ns, REASON_TOO_BIG)
        mac = t.ports.peer[op]
        if unlikely(mac == 0):
            return slow(t, b, i, ns, REASON_PEER_UNKNOWN)
        return forward6(t, b, i, p, op, mac, n, routed)

    # 7. route: the sender's own cache, else the scope's FIB and neighbour table
    gen = t.ns.gen[scope]
    rc = rc6_slot(&t.rc6, ns, dhi, dlo)
    if rc.gen == gen and rc.dst_lo == dlo and rc.dst_hi == dhi:
        op = <int32_t>(rc.hop >> 48)
        mac = rc.hop & MAC_MASK
        if unlikely(ip[7] <= 1):
            return slow(t, b, i, ns, REASON_TTL_EXPIRED)
        if unlikely(over_mtu(&t.ports, op, wire_len6(p, b.offset[i], ip, end, &u))):
            return slow(t, b, i, ns, REASON_TOO_BIG)
        return forward6(t, b, i, p, op, mac, n, True)
    e = lpm6_lookup(&t.fib6[scope], dhi, dlo)
    if unlikely(e == 0):
        return slow(t, b, i, ns, REASON_NO_ROUTE)
    hop = &t.nh6[e - 1]
    op = hop.port
    if unlikely(t.ports.ns[op] < 0):
        return drop(t, b, i, ns, REASON_NO_PORT)
    if unlikely(ip[7] <= 1):
        return slow(t, b, i, ns, REASON_TTL_EXPIRED)
    if unlikely(over_mtu(&t.ports, op, wire_len6(p, b.offset[i], ip, end, &u))):
        return slow(t, b, i, ns, REASON_TOO_BIG)
    if hop.gw_hi or hop.gw_lo:
        if unlikely(not hash6_find(&t.neigh6, scope, hop.gw_hi, hop.gw_lo, &mac)):
            return slow(t, b, i, ns, REASON_NO_NEIGHBOUR)
    elif unlikely(not hash6_find(&t.neigh6, scope, dhi, dlo, &mac)):
        return slow(t, b, i, ns, REASON_NO_NEIGHBOUR)
    rc.dst_hi = dhi
    rc.dst_lo = dlo
    rc.gen = gen
    rc.hop = mac | (<uint64_t>op << 48)
    return forward6(t, b, i, p, op, mac, n, True)


cdef inline void prefetch_frame6(const DpTables* t, const BatchView* b, Py_ssize_t i, int32_t ns,
                                 int32_t scope, const uint8_t* ip) noexcept nogil:
    """Pass 1 for an IPv6 frame (prefetch_frame() checked the port and the offset): the
    demux slots of its source and destination, its route-cache slot, its FIB block."""
    cdef uint64_t dhi, dlo
    if b.length[i] < ETH_HLEN + IPV6_HLEN:
        return
    dhi = load_be64(ip + 24)
    dlo = load_be64(ip + 32)
    TS_PREFETCH(hash6_home(&t.demux6, scope, load_be64(ip + 8), load_be64(ip + 16)))
    TS_PREFETCH(hash6_home(&t.demux6, scope, dhi, dlo))
    TS_PREFETCH_W(rc6_slot(&t.rc6, ns, dhi, dlo))
    lpm6_prefetch(&t.fib6[scope], dhi)
