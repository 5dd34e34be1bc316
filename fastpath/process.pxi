# The batch function: per frame, parse -> source rule -> demux / route -> rewrite.
#
# Everything here is `noexcept nogil`, works on the C snapshot of the tables taken
# under the batch lock (DpTables) and on the batch's arrays (BatchView), allocates
# nothing and turns every bad frame into a counted reason.  The loop runs in chunks:
# pass 1 prefetches, for each frame of the chunk, the demux slots of its source and
# destination, its route-cache slot and its tbl24 entry (VPP style), so the cache
# misses of a large table overlap instead of stalling one frame at a time; pass 2
# decides each frame with everything already on its way to L1.
#
# MACs are handled as 48-bit ints loaded little-endian from the wire bytes (x86), so
# a MAC compare is one integer compare and the group bit is bit 0.  The tables' lookups
# are theirs (hashtable.pxi, route_cache.pxi, dir24.pxi, counters.pxi); broadcast and
# multicast copies are fanout.pxi's.  An IPv6 frame leaves decide() after its Ethernet
# header for decide6() (process6.pxi), and pass 1 for prefetch_frame6().
# A unicast frame larger than its egress port's MTU (a super-frame: its largest segment)
# goes to the slow path (too_big4: ICMP fragmentation needed with DF, else fragments),
# before the next hop's MAC is asked for: what the slow path resolves always fits.
from fastpath.includes.compiler cimport TS_PREFETCH, TS_PREFETCH_W, unlikely

cdef extern from *:
    """
    #define TS_MAC_MASK ((uint64_t)0xFFFFFFFFFFFFULL)
    """
    const uint64_t MAC_MASK "TS_MAC_MASK"       # the 48 bits of a MAC; also the broadcast MAC

cdef enum:
    ETHERTYPE_IPV4 = 0x0800
    ETHERTYPE_ARP = 0x0806
    IPPROTO_IGMP = 2
    IPPROTO_UDP = 17
    UDP_SOURCE_PORT = 0             # offsets in the UDP header
    UDP_DEST_PORT = 2
    DHCP_SERVER_PORT = 67
    DHCP_CLIENT_PORT = 68
    ARP_LEN = 28
    IPV4_MIN_HLEN = 20
    PREFETCH_CHUNK = 32

cdef struct DpTables
ctypedef uint8_t (*frame_fn)(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t port, int32_t ns,
                             uint8_t* p, uint32_t n, uint64_t dmac) noexcept nogil

cdef struct DpTables:
    # the tables as the batch loop sees them, taken by Datapath under the batch lock
    int32_t max_ns, max_ports
    frame_fn ipv6
    NsView ns
    PortView ports
    HashView demux
    HashView neigh
    const FibView* fib          # per scope
    const NextHop4* nh
    RouteCacheView rc
    HashView demux6             # the IPv6 instances of the address-keyed tables (process6.pxi)
    HashView neigh6
    const Lpm6View* fib6        # per scope
    const NextHop6* nh6
    RouteCacheView rc6
    ListenerView lists
    McastGroup* mgroups
    CounterView ctr

cdef struct BatchView:
    uint8_t* buf
    uint64_t pool_size
    Py_ssize_t count
    const uint32_t* offset
    const uint32_t* length
    const int32_t* port
    uint8_t* verdict
    uint8_t* reason
    int32_t* out_port
    uint32_t* fanout_first
    uint32_t* fanout_n
    int32_t* fanout_port
    uint32_t* fanout_frame
    uint8_t* fanout_eth
    Py_ssize_t max_fanout
    Py_ssize_t fanout_count


cdef inline uint64_t load_mac(const uint8_t* p) noexcept nogil:
    # 8 readable bytes at p: callers only use it at offsets 0 and 6 of a >= 14-byte frame
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v & MAC_MASK


cdef inline void store_mac(uint8_t* p, uint64_t mac) noexcept nogil:
    memcpy(p, &mac, 6)


cdef inline uint32_t load_be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline void decrement_ttl(uint8_t* ip) noexcept nogil:
    """TTL - 1 with the header checksum updated incrementally: HC' = ~(~HC + ~m + m')
    (RFC 1624, eqn. 3), m being the 16-bit word holding TTL and protocol."""
    cdef uint32_t m = (<uint32_t>ip[8] << 8) | ip[9]
    cdef uint32_t m2 = m - 0x100
    cdef uint32_t hc = (<uint32_t>ip[10] << 8) | ip[11]
    cdef uint32_t s = (~hc & 0xFFFF) + (~m & 0xFFFF) + m2
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    hc = ~s & 0xFFFF
    ip[8] -= 1
    ip[10] = <uint8_t>(hc >> 8)
    ip[11] = <uint8_t>hc


cdef inline int32_t udp_port(const uint8_t* ip, uint32_t hlen, uint32_t tot,
                             uint32_t at) noexcept nogil:
    """The UDP port at ``at`` (UDP_SOURCE_PORT, UDP_DEST_PORT) of a UDP packet's first
    fragment, -1 when the packet is not one or too short to hold it."""
    if ip[9] != IPPROTO_UDP or ((ip[6] & 0x1F) | ip[7]) != 0 or tot < hlen + at + 2:
        return -1
    return (<int32_t>ip[hlen + at] << 8) | ip[hlen + at + 1]


cdef inline uint32_t subnet_broadcast(uint32_t src, uint64_t sv) noexcept nogil:
    """The directed broadcast of the subnet of the sender's address ``src`` (``sv``: its
    demux value, 0 for an address nobody holds); 0 when it has none (/31, /32, unknown)."""
    cdef uint32_t plen = demux_plen(sv)
    if plen == 0 or plen > 30:
        return 0
    return src | (0xFFFFFFFFu >> plen)


cdef inline int32_t subnet_list(const DpTables* t, int32_t scope, uint32_t src,
                                uint64_t sv) noexcept nogil:
    """The listener list of the sender's subnet (its directed broadcast's), else -1."""
    cdef uint32_t bcast = subnet_broadcast(src, sv)
    cdef uint64_t v
    if bcast != 0 and hash4_find(&t.demux, scope, bcast, &v) and (v & DEMUX_MCAST) == DEMUX_GROUP:
        return <int32_t>(v & 0xFFFFFFFFu)
    return -1


cdef inline bint same_subnet(uint32_t src, uint64_t sv, uint32_t dst, uint64_t dv) noexcept nogil:
    """Switched, not routed: sender and receiver addresses (demux values ``sv``, ``dv``)
    on one subnet, the same prefix."""
    cdef uint32_t plen = demux_plen(sv)
    if plen == 0 or plen > 31 or plen != demux_plen(dv):
        return False
    return (src ^ dst) >> (32 - plen) == 0


cdef inline bint too_big4(const PortView* pv, int32_t op, const uint8_t* ip,
                          const BatchView* b, Py_ssize_t i) noexcept nogil:
    """Is frame i's IPv4 packet ``ip`` (checked by decide()) larger than port ``op``'s
    MTU?  A plain frame: its length; a super-frame: its largest segment.  A frame that
    fits pays one load and compare, inlined (its lengths are read again rather than
    kept live across the lookups); the rest (over_mtu4) only a longer frame."""
    return ((<uint32_t>ip[2] << 8) | ip[3]) > pv.mtu[op] and over_mtu4(pv, op, ip, b.offset[i])


cdef bint over_mtu4(const PortView* pv, int32_t op, const uint8_t* ip, uint32_t off) noexcept nogil:
    """too_big4() for a packet longer than the MTU: a plain one is too big; a super-frame
    if its largest segment is (the headers up to the TCP / UDP payload + gso_size;
    vnet_check made sure they are there)."""
    cdef const uint8_t* p = ip - ETH_HLEN
    cdef uint32_t hlen = (ip[0] & 0x0F) * 4, tot = (<uint32_t>ip[2] << 8) | ip[3], hdr_end
    if not is_super_frame(p, off):
        return True
    hdr_end = hlen
    if ip[9] == IPPROTO_TCP_ and hlen + 13 <= tot:
        hdr_end = hlen + (ip[hlen + 12] >> 4) * 4
    elif ip[9] == IPPROTO_UDP_:
        hdr_end = hlen + 8
    return over_mtu(pv, op, segment_len(p, tot, hdr_end))


cdef inline uint8_t forward(const DpTables* t, BatchView* b, Py_ssize_t i, uint8_t* p,
                            int32_t op, uint64_t dst_mac, uint32_t nbytes, bint routed) noexcept nogil:
    """Out of port ``op`` to ``dst_mac``; a routed frame's TTL goes down by one."""
    store_mac(p, dst_mac)
    store_mac(p + 6, t.ports.mac[op])
    if routed:
        decrement_ttl(p + ETH_HLEN)
    b.out_port[i] = op
    count_tx(&t.ctr, op, t.ports.ns[op], nbytes)
    return VERDICT_FORWARD


cdef inline uint8_t drop(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns, uint8_t reason) noexcept nogil:
    b.reason[i] = charge(&t.ctr, ns, reason)
    return VERDICT_DROP


cdef inline uint8_t slow(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns, uint8_t reason) noexcept nogil:
    b.reason[i] = charge(&t.ctr, ns, reason)
    return VERDICT_SLOWPATH


cdef inline uint8_t decide(const DpTables* t, BatchView* b, Py_ssize_t i) noexcept nogil:
    """Frame i's verdict; fills reason / out_port / fan-out and charges the counters."""
    cdef int32_t port = b.port[i], ns, scope, owner, op
    cdef uint32_t off = b.offset[i], n = b.length[i], hlen, tot, src, dst, gw, e
    cdef uint8_t* p
    cdef const uint8_t* ip
    cdef uint64_t dmac, smac, v, sv = 0, mac
    cdef bint routed = True
    cdef uint16_t ethertype
    cdef RcEntry4* rc
    cdef const NextHop4* hop
    cdef uint32_t gen

    b.reason[i] = REASON_NONE
    b.out_port[i] = -1
    b.fanout_n[i] = 0
    b.fanout_first[i] = 0
    if unlikely(<uint32_t>port >= <uint32_t>t.max_ports or t.ports.ns[port] < 0):
        return drop(t, b, i, -1, REASON_UNKNOWN_PORT)
    ns = t.ports.ns[port]
    count_rx(&t.ctr, port, ns, n)
    if unlikely(<uint64_t>off + n > b.pool_size or n < ETH_HLEN):
        return drop(t, b, i, ns, REASON_MALFORMED)
    p = b.buf + off

    # 1. Ethernet: unicast only to this port's MAC; IPv4 or ARP
    dmac = load_mac(p)
    if unlikely(not (dmac & 1) and dmac != t.ports.mac[port]):
        return drop(t, b, i, ns, REASON_NOT_FOR_US)
    ethertype = (<uint16_t>p[12] << 8) | p[13]
    if unlikely(ethertype == ETHERTYPE_ARP):
        if n < ETH_HLEN + ARP_LEN:
            return drop(t, b, i, ns, REASON_MALFORMED)
        return slow(t, b, i, ns, REASON_ARP)
    if unlikely(ethertype != ETHERTYPE_IPV4):
        if ethertype == ETHERTYPE_IPV6:
            return t.ipv6(t, b, i, port, ns, p, n, dmac)
        return drop(t, b, i, ns, REASON_UNSUPPORTED_ETHERTYPE)
    if unlikely(n < ETH_HLEN + IPV4_MIN_HLEN):
        return drop(t, b, i, ns, REASON_MALFORMED)
    ip = p + ETH_HLEN
    hlen = (ip[0] & 0x0F) * 4
    tot = (<uint32_t>ip[2] << 8) | ip[3]
    if unlikely((ip[0] >> 4) != 4 or hlen < IPV4_MIN_HLEN or ETH_HLEN + hlen > n
                or tot < hlen or ETH_HLEN + tot > n):
        return drop(t, b, i, ns, REASON_MALFORMED)
    if unlikely(csum_bytes(ip, hlen) != 0xFFFF):    # RFC 1071: all words, checksum included
        return drop(t, b, i, ns, REASON_BAD_CHECKSUM)
    src = load_be32(ip + 12)
    dst = load_be32(ip + 16)
    scope = t.ns.scope[ns]

    # a DHCP client on a port the switch serves by DHCP: the slow path answers; before the
    # source rule, since a renewal comes from an address the client may no longer hold
    if unlikely(t.ports.serve_dhcp[port]) and udp_port(ip, hlen, tot, UDP_DEST_PORT) == DHCP_SERVER_PORT \
            and udp_port(ip, hlen, tot, UDP_SOURCE_PORT) == DHCP_CLIENT_PORT:
        return slow(t, b, i, ns, REASON_DHCP)

    # 2. source rule (fastpath/source_rule.py): an L3 sends from its own addresses; an L2
    #    port from addresses no namespace of the scope holds; 0.0.0.0 only for what stays
    #    on the link; martians never.  sv: the sender's address's demux value (its subnet)
    if src != 0:
        if unlikely((src >> 24) == 127 or (src >> 28) >= 0xE or (src >> 24) == 0):
            return drop(t, b, i, ns, REASON_MARTIAN_SOURCE)
        if hash4_find(&t.demux, scope, src, &sv):
            if unlikely(<int32_t>sv != ns or not t.ns.l3[ns]):
                return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
        elif unlikely(t.ns.l3[ns]):
            return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
    elif ip[9] != IPPROTO_IGMP and (dst != 0xFFFFFFFFu
                                    or udp_port(ip, hlen, tot, UDP_DEST_PORT) != DHCP_SERVER_PORT):
        return drop(t, b, i, ns, REASON_MARTIAN_SOURCE)
    smac = load_mac(p + 6)
    if not (smac & 1) and smac != 0:
        t.ports.peer[port] = smac          # learn the endpoint behind the port

    # IGMP is the switch's business (snooping, querier), never fanned out
    if unlikely(ip[9] == IPPROTO_IGMP):
        return slow(t, b, i, ns, REASON_IGMP)
    # DHCP server messages: only from the L2's own ports and the servers it trusts
    if unlikely(udp_port(ip, hlen, tot, UDP_SOURCE_PORT) == DHCP_SERVER_PORT
                and t.ns.l3[ns] and not t.ports.dhcp_server[port]):
        return drop(t, b, i, ns, REASON_ROGUE_DHCP)

    # 6. broadcast and multicast: bridged to the listeners on the sender's subnet, no TTL
    #    change; a DHCP client's broadcast (from 0.0.0.0) to the scope's DHCP servers
    if dst == 0xFFFFFFFFu:
        return fan_out(t, b, i, ns,
                       t.lists.dhcp + scope if src == 0 else subnet_list(t, scope, src, sv),
                       MAC_MASK, n)
    if (dst >> 28) == 0xE:
        mac = 0x5E0001ULL | (<uint64_t>((dst >> 16) & 0x7F) << 24) \
            | (<uint64_t>((dst >> 8) & 0xFF) << 32) | (<uint64_t>(dst & 0xFF) << 40)
        if (dst >> 8) == 0xE00000u:         # 224.0.0.0/24, link-local: the sender's subnet
            return fan_out(t, b, i, ns, subnet_list(t, scope, src, sv), mac, n)
        if hash4_find(&t.demux, scope, dst, &v) and (v & DEMUX_MCAST) == DEMUX_MCAST:
            return fan_out_group(t, b, i, ns, &t.mgroups[v & 0xFFFFFFFFu], mac, n)
        return drop(t, b, i, ns, REASON_NO_LISTENER)
    if unlikely((dst >> 24) == 0 or (dst >> 24) == 127 or (dst >> 28) == 0xF):
        return drop(t, b, i, ns, REASON_BAD_DESTINATION)

    # 3. demux: an address of the scope
    if hash4_find(&t.demux, scope, dst, &v):
        if v & DEMUX_GROUP:                 # a directed broadcast: routed ones by option only
            if unlikely(subnet_broadcast(src, sv) != dst and not t.ns.directed[scope]):
                return drop(t, b, i, ns, REASON_DIRECTED_BROADCAST)
            return fan_out(t, b, i, ns, <int32_t>(v & 0xFFFFFFFFu), MAC_MASK, n)
        if dmac & 1:
            return drop(t, b, i, ns, REASON_NOT_FOR_US)
        owner = <int32_t>v
        if not t.ns.l3[owner]:
            return slow(t, b, i, ns, REASON_LOCAL)
        op = t.ns.port[owner]
        if unlikely(op < 0):
            return drop(t, b, i, ns, REASON_NO_PORT)
        routed = not same_subnet(src, sv, dst, v)   # within a subnet: switched, TTL kept
        if unlikely(routed and ip[8] <= 1):
            return slow(t, b, i, ns, REASON_TTL_EXPIRED)
        if unlikely(too_big4(&t.ports, op, ip, b, i)):
            return slow(t, b, i, ns, REASON_TOO_BIG)
        mac = t.ports.peer[op]
        if unlikely(mac == 0):
            return slow(t, b, i, ns, REASON_PEER_UNKNOWN)
    elif dmac & 1:
        return drop(t, b, i, ns, REASON_NOT_FOR_US)
    else:
        # 4. route: the sender's own cache, else the scope's FIB and neighbour table
        gen = t.ns.gen[scope]
        rc = rc4_slot(&t.rc, ns, dst)
        if rc.gen == gen and rc.dst == dst:
            if unlikely(ip[8] <= 1):
                return slow(t, b, i, ns, REASON_TTL_EXPIRED)
            op = <int32_t>(rc.hop >> 48)
            if unlikely(too_big4(&t.ports, op, ip, b, i)):
                return slow(t, b, i, ns, REASON_TOO_BIG)
            mac = rc.hop & MAC_MASK
        else:
            e = fib_entry_lookup(&t.fib[scope], dst)
            if unlikely(e == 0):
                return slow(t, b, i, ns, REASON_NO_ROUTE)
            hop = &t.nh[(e & FIB_NH_MASK) - 1]
            op = hop.port
            if unlikely(t.ports.ns[op] < 0):
                return drop(t, b, i, ns, REASON_NO_PORT)
            if unlikely(ip[8] <= 1):
                return slow(t, b, i, ns, REASON_TTL_EXPIRED)
            if unlikely(too_big4(&t.ports, op, ip, b, i)):
                return slow(t, b, i, ns, REASON_TOO_BIG)
            gw = hop.gw
            if unlikely(not hash4_find(&t.neigh, scope, gw if gw else dst, &mac)):
                return slow(t, b, i, ns, REASON_NO_NEIGHBOUR)
            rc.dst = dst
            rc.gen = gen
            rc.hop = mac | (<uint64_t>op << 48)
    # 5. out of port op to mac (one place: the C compiler inlines it once)
    return forward(t, b, i, p, op, mac, n, routed)


cdef inline void prefetch_frame(const DpTables* t, const BatchView* b, Py_ssize_t i) noexcept nogil:
    """Pass 1: start the memory reads decide() will need for frame i."""
    cdef int32_t port = b.port[i], ns, scope
    cdef uint32_t off = b.offset[i], src, dst
    cdef const uint8_t* ip
    cdef const FibView* f
    if <uint32_t>port >= <uint32_t>t.max_ports or b.length[i] < ETH_HLEN + IPV4_MIN_HLEN \
            or <uint64_t>off + b.length[i] > b.pool_size:
        return
    ns = t.ports.ns[port]
    if ns < 0:
        return
    scope = t.ns.scope[ns]
    ip = b.buf + off + ETH_HLEN
    if unlikely(b.buf[off + 12] == (ETHERTYPE_IPV6 >> 8)):
        prefetch_frame6(t, b, i, ns, scope, ip)
        return
    src = load_be32(ip + 12)
    dst = load_be32(ip + 16)
    TS_PREFETCH(hash4_home(&t.demux, scope, src))
    TS_PREFETCH(hash4_home(&t.demux, scope, dst))
    TS_PREFETCH_W(rc4_slot(&t.rc, ns, dst))
    f = &t.fib[scope]
    if f.tbl24 != NULL:
        TS_PREFETCH(&f.tbl24[dst >> 8])


cdef void process_batch(const DpTables* t, BatchView* b) noexcept nogil:
    cdef Py_ssize_t start = 0, end, i
    b.fanout_count = 0
    while start < b.count:
        end = start + PREFETCH_CHUNK
        if end > b.count:
            end = b.count
        if end - start > 1:
            for i in range(start, end):
                prefetch_frame(t, b, i)
        for i in range(start, end):
            b.verdict[i] = decide(t, b, i)
        start = end
