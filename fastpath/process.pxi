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
# a MAC compare is one integer compare and the group bit is bit 0.

cdef enum:
    PORT_RX_PACKETS = 0
    PORT_RX_BYTES = 1
    PORT_TX_PACKETS = 2
    PORT_TX_BYTES = 3
    NCOUNTERS = 4

cdef uint64_t DEMUX_GROUP = 1ULL << 32     # demux value: directed broadcast -> fan-out group
cdef uint64_t DEMUX_MCAST = DEMUX_GROUP | (1ULL << 33)   # demux value: multicast group -> McastGroup
cdef uint64_t MAC_MASK = 0xFFFFFFFFFFFFULL


cdef struct RouteCacheEntry:
    # one slot of a namespace's direct-mapped route cache (16 bytes, 4 per cache line)
    uint32_t dst
    uint32_t gen        # the scope generation it was filled under; 0 = empty
    uint64_t hop        # next-hop MAC (48 bits, wire order) | egress port << 48


cdef struct McastGroup:
    # one multicast group of one scope (issue 6), indexed by the id its demux entry holds:
    # the egress ports of its members resolved when the members or their ports change,
    # so a frame costs one demux probe plus one copy per port
    int32_t* ports      # malloc'd, cap entries; n used (member order, then port id)
    int32_t n, cap
    uint64_t rx_packets # frames sent to the group in its scope
    uint64_t rx_bytes
    uint64_t copies     # copies put in fan-out lists (overflowed ones not included)


cdef extern from *:
    """
    #define TS_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
    #define TS_PREFETCH_W(p) __builtin_prefetch((const void*)(p), 1, 3)
    """
    void TS_PREFETCH(const void* p) noexcept nogil
    void TS_PREFETCH_W(const void* p) noexcept nogil

cdef enum:
    ETHERTYPE_IPV4 = 0x0800
    ETHERTYPE_ARP = 0x0806
    IPPROTO_IGMP = 2
    ARP_LEN = 28
    IPV4_MIN_HLEN = 20
    PREFETCH_CHUNK = 32

cdef struct DpTables:
    int32_t max_ns, max_ports
    uint32_t rc_mask, rc_size
    const int32_t* ns_scope
    const uint8_t* ns_l3
    const int32_t* ns_port
    const uint32_t* scope_gen
    const int32_t* port_ns
    const uint64_t* port_mac
    uint64_t* port_peer
    const MapSlot* demux
    uint64_t demux_mask
    const MapSlot* neigh
    uint64_t neigh_mask
    const FibView* fib
    const int32_t* nh_port
    const uint32_t* nh_gw
    RouteCacheEntry* rcache
    const int32_t* grp_first
    const int32_t* grp_len
    const int32_t* grp_members
    int32_t n_groups
    McastGroup* mgroups
    uint64_t* port_ctr
    uint64_t* ns_ctr
    uint64_t* reason_ctr
    uint64_t* ns_reason_ctr

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
    return v & 0xFFFFFFFFFFFFULL


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


cdef inline uint32_t rc_index(uint32_t dst, uint32_t mask) noexcept nogil:
    return ((dst * 0x9E3779B1u) >> 16) & mask


cdef inline uint8_t charge(const DpTables* t, int32_t ns, uint8_t reason) noexcept nogil:
    t.reason_ctr[reason] += 1
    if ns >= 0:
        t.ns_reason_ctr[<size_t>ns * REASON_COUNT + reason] += 1
    return reason


cdef inline void count_tx(const DpTables* t, int32_t port, uint32_t nbytes) noexcept nogil:
    cdef uint64_t* pc = &t.port_ctr[<size_t>port * NCOUNTERS]
    cdef uint64_t* nc = &t.ns_ctr[<size_t>t.port_ns[port] * NCOUNTERS]
    pc[PORT_TX_PACKETS] += 1
    pc[PORT_TX_BYTES] += nbytes
    nc[PORT_TX_PACKETS] += 1
    nc[PORT_TX_BYTES] += nbytes


cdef inline uint32_t add_copy(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns, int32_t op,
                              uint64_t dst_mac, uint32_t nbytes) noexcept nogil:
    """Append a copy of frame i (sent by namespace ns) out of port op, unless op is one of
    the sender's own ports.  Returns 1 for a copy the full list had no room for, else 0."""
    cdef Py_ssize_t idx = b.fanout_count
    cdef uint8_t* eth
    if t.port_ns[op] == ns:
        return 0
    if idx >= b.max_fanout:
        return 1
    b.fanout_count = idx + 1
    b.fanout_port[idx] = op
    b.fanout_frame[idx] = <uint32_t>i
    eth = &b.fanout_eth[idx * ETH_HLEN]
    store_mac(eth, dst_mac)
    store_mac(eth + 6, t.port_mac[op])
    eth[12] = ETHERTYPE_IPV4 >> 8
    eth[13] = ETHERTYPE_IPV4 & 0xFF
    count_tx(t, op, nbytes)
    return 0


cdef inline uint8_t fanout_verdict(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns,
                                   Py_ssize_t start, uint32_t overflow) noexcept nogil:
    """Frame i's verdict once its copies are in the fan-out list (from index start on)."""
    cdef uint32_t copies = <uint32_t>(b.fanout_count - start)
    if overflow:
        t.reason_ctr[REASON_FANOUT_OVERFLOW] += overflow
        t.ns_reason_ctr[<size_t>ns * REASON_COUNT + REASON_FANOUT_OVERFLOW] += overflow
    if copies:
        b.fanout_first[i] = <uint32_t>start
        b.fanout_n[i] = copies
        b.reason[i] = REASON_FANOUT_OVERFLOW if overflow else REASON_NONE
        return VERDICT_FANOUT
    if overflow:
        b.reason[i] = REASON_FANOUT_OVERFLOW
    else:
        b.reason[i] = charge(t, ns, REASON_NO_LISTENER)
    return VERDICT_DROP


cdef inline uint8_t fan_out(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns,
                            int32_t gid, uint64_t dst_mac, uint32_t nbytes) noexcept nogil:
    """Frame i's copies for listener list gid: the ports of its L3 namespaces (an L2 in
    the list has none), never the sender's."""
    cdef int32_t first = 0, n = 0, k, op
    cdef Py_ssize_t start = b.fanout_count
    cdef uint32_t overflow = 0
    if gid < t.n_groups:
        first, n = t.grp_first[gid], t.grp_len[gid]
    for k in range(first, first + n):
        op = t.ns_port[t.grp_members[k]]
        if op >= 0:
            overflow += add_copy(t, b, i, ns, op, dst_mac, nbytes)
    return fanout_verdict(t, b, i, ns, start, overflow)


cdef inline uint8_t fan_out_group(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns,
                                  McastGroup* g, uint64_t dst_mac, uint32_t nbytes) noexcept nogil:
    """Frame i's copies for a multicast group: every member port not of the sender."""
    cdef int32_t k
    cdef Py_ssize_t start = b.fanout_count
    cdef uint32_t overflow = 0
    g.rx_packets += 1
    g.rx_bytes += nbytes
    for k in range(g.n):
        overflow += add_copy(t, b, i, ns, g.ports[k], dst_mac, nbytes)
    g.copies += <uint64_t>(b.fanout_count - start)
    return fanout_verdict(t, b, i, ns, start, overflow)


cdef inline uint8_t forward(const DpTables* t, BatchView* b, Py_ssize_t i, uint8_t* p,
                            int32_t op, uint64_t dst_mac, uint32_t nbytes) noexcept nogil:
    store_mac(p, dst_mac)
    store_mac(p + 6, t.port_mac[op])
    decrement_ttl(p + ETH_HLEN)
    b.out_port[i] = op
    count_tx(t, op, nbytes)
    return VERDICT_FORWARD


cdef inline uint8_t drop(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns, uint8_t reason) noexcept nogil:
    b.reason[i] = charge(t, ns, reason)
    return VERDICT_DROP


cdef inline uint8_t slow(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns, uint8_t reason) noexcept nogil:
    b.reason[i] = charge(t, ns, reason)
    return VERDICT_SLOWPATH


cdef inline uint8_t decide(const DpTables* t, BatchView* b, Py_ssize_t i) noexcept nogil:
    """Frame i's verdict; fills reason / out_port / fan-out and charges the counters."""
    cdef int32_t port = b.port[i], ns, scope, owner, op
    cdef uint32_t off = b.offset[i], n = b.length[i], hlen, tot, src, dst, gw, nh, e
    cdef uint8_t* p
    cdef const uint8_t* ip
    cdef uint64_t dmac, smac, v, mac
    cdef uint16_t ethertype
    cdef RouteCacheEntry* rc
    cdef uint32_t gen

    b.reason[i] = REASON_NONE
    b.out_port[i] = -1
    b.fanout_n[i] = 0
    b.fanout_first[i] = 0
    if port < 0 or port >= t.max_ports or t.port_ns[port] < 0:
        return drop(t, b, i, -1, REASON_UNKNOWN_PORT)
    ns = t.port_ns[port]
    t.port_ctr[<size_t>port * NCOUNTERS + PORT_RX_PACKETS] += 1
    t.port_ctr[<size_t>port * NCOUNTERS + PORT_RX_BYTES] += n
    t.ns_ctr[<size_t>ns * NCOUNTERS + PORT_RX_PACKETS] += 1
    t.ns_ctr[<size_t>ns * NCOUNTERS + PORT_RX_BYTES] += n
    if <uint64_t>off + n > b.pool_size or n < ETH_HLEN:
        return drop(t, b, i, ns, REASON_MALFORMED)
    p = b.buf + off

    # 1. Ethernet: unicast only to this port's MAC; IPv4 or ARP
    dmac = load_mac(p)
    if not (dmac & 1) and dmac != t.port_mac[port]:
        return drop(t, b, i, ns, REASON_NOT_FOR_US)
    ethertype = (<uint16_t>p[12] << 8) | p[13]
    if ethertype == ETHERTYPE_ARP:
        if n < ETH_HLEN + ARP_LEN:
            return drop(t, b, i, ns, REASON_MALFORMED)
        return slow(t, b, i, ns, REASON_ARP)
    if ethertype != ETHERTYPE_IPV4:
        return drop(t, b, i, ns, REASON_UNSUPPORTED_ETHERTYPE)
    if n < ETH_HLEN + IPV4_MIN_HLEN:
        return drop(t, b, i, ns, REASON_MALFORMED)
    ip = p + ETH_HLEN
    hlen = (ip[0] & 0x0F) * 4
    tot = (<uint32_t>ip[2] << 8) | ip[3]
    if (ip[0] >> 4) != 4 or hlen < IPV4_MIN_HLEN or ETH_HLEN + hlen > n \
            or tot < hlen or ETH_HLEN + tot > n:
        return drop(t, b, i, ns, REASON_MALFORMED)
    if csum_bytes(ip, hlen) != 0xFFFF:      # RFC 1071: all words, checksum included
        return drop(t, b, i, ns, REASON_BAD_CHECKSUM)
    src = load_be32(ip + 12)
    dst = load_be32(ip + 16)
    scope = t.ns_scope[ns]

    # 2. source rule: an L3 sends from its own addresses (or 0.0.0.0); an L2 port from
    #    any address no other namespace of the scope owns; martians never
    if src != 0:
        if (src >> 24) == 127 or (src >> 28) >= 0xE:
            return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
        if map_find(t.demux, t.demux_mask, (<uint64_t>scope << 32) | src, &v):
            if v != <uint64_t>ns:
                return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
        elif t.ns_l3[ns]:
            return drop(t, b, i, ns, REASON_SPOOFED_SOURCE)
    smac = load_mac(p + 6)
    if not (smac & 1) and smac != 0:
        t.port_peer[port] = smac          # learn the endpoint behind the port

    # IGMP is the switch's business (snooping, querier), never fanned out
    if ip[9] == IPPROTO_IGMP:
        return slow(t, b, i, ns, REASON_IGMP)

    # 6. broadcast and multicast: bridged to the scope's listeners, no TTL change
    if dst == 0xFFFFFFFFu:
        return fan_out(t, b, i, ns, scope, 0xFFFFFFFFFFFFULL, n)
    if (dst >> 28) == 0xE:
        mac = 0x5E0001ULL | (<uint64_t>((dst >> 16) & 0x7F) << 24) \
            | (<uint64_t>((dst >> 8) & 0xFF) << 32) | (<uint64_t>(dst & 0xFF) << 40)
        if (dst >> 8) == 0xE00000u:         # 224.0.0.0/24, link-local: every L3 of the scope
            return fan_out(t, b, i, ns, scope, mac, n)
        if map_find(t.demux, t.demux_mask, (<uint64_t>scope << 32) | dst, &v) \
                and (v & DEMUX_MCAST) == DEMUX_MCAST:
            return fan_out_group(t, b, i, ns, &t.mgroups[v & 0xFFFFFFFFu], mac, n)
        return drop(t, b, i, ns, REASON_NO_LISTENER)
    if (dst >> 24) == 0 or (dst >> 24) == 127 or (dst >> 28) == 0xF:
        return drop(t, b, i, ns, REASON_BAD_DESTINATION)

    # 3. demux: an address of the scope
    if map_find(t.demux, t.demux_mask, (<uint64_t>scope << 32) | dst, &v):
        if v & DEMUX_GROUP:
            return fan_out(t, b, i, ns, <int32_t>(v & 0xFFFFFFFFu), 0xFFFFFFFFFFFFULL, n)
        if dmac & 1:
            return drop(t, b, i, ns, REASON_NOT_FOR_US)
        owner = <int32_t>v
        if not t.ns_l3[owner]:
            return slow(t, b, i, ns, REASON_LOCAL)
        op = t.ns_port[owner]
        if op < 0:
            return drop(t, b, i, ns, REASON_NO_PORT)
        if ip[8] <= 1:
            return slow(t, b, i, ns, REASON_TTL_EXPIRED)
        mac = t.port_peer[op]
        if mac == 0:
            return slow(t, b, i, ns, REASON_PEER_UNKNOWN)
        return forward(t, b, i, p, op, mac, n)
    if dmac & 1:
        return drop(t, b, i, ns, REASON_NOT_FOR_US)

    # 4. route: the sender's own cache, else the scope's FIB and neighbour table
    gen = t.scope_gen[scope]
    rc = &t.rcache[<size_t>ns * t.rc_size + rc_index(dst, t.rc_mask)]
    if rc.gen == gen and rc.dst == dst:
        if ip[8] <= 1:
            return slow(t, b, i, ns, REASON_TTL_EXPIRED)
        return forward(t, b, i, p, <int32_t>(rc.hop >> 48), rc.hop & 0xFFFFFFFFFFFFULL, n)
    e = fib_entry_lookup(&t.fib[scope], dst)
    if e == 0:
        return slow(t, b, i, ns, REASON_NO_ROUTE)
    nh = (e & FIB_NH_MASK) - 1
    op = t.nh_port[nh]
    if t.port_ns[op] < 0:
        return drop(t, b, i, ns, REASON_NO_PORT)
    if ip[8] <= 1:
        return slow(t, b, i, ns, REASON_TTL_EXPIRED)
    gw = t.nh_gw[nh]
    if not map_find(t.neigh, t.neigh_mask, (<uint64_t>scope << 32) | (gw if gw else dst), &mac):
        return slow(t, b, i, ns, REASON_NO_NEIGHBOUR)
    rc.dst = dst
    rc.gen = gen
    rc.hop = mac | (<uint64_t>op << 48)
    return forward(t, b, i, p, op, mac, n)


cdef inline void prefetch_frame(const DpTables* t, const BatchView* b, Py_ssize_t i) noexcept nogil:
    """Pass 1: start the memory reads decide() will need for frame i."""
    cdef int32_t port = b.port[i], ns, scope
    cdef uint32_t off = b.offset[i], src, dst
    cdef const uint8_t* ip
    cdef const FibView* f
    if port < 0 or port >= t.max_ports or b.length[i] < ETH_HLEN + IPV4_MIN_HLEN \
            or <uint64_t>off + b.length[i] > b.pool_size:
        return
    ns = t.port_ns[port]
    if ns < 0:
        return
    scope = t.ns_scope[ns]
    ip = b.buf + off + ETH_HLEN
    src = load_be32(ip + 12)
    dst = load_be32(ip + 16)
    TS_PREFETCH(&t.demux[mix64((<uint64_t>scope << 32) | src) & t.demux_mask])
    TS_PREFETCH(&t.demux[mix64((<uint64_t>scope << 32) | dst) & t.demux_mask])
    TS_PREFETCH_W(&t.rcache[<size_t>ns * t.rc_size + rc_index(dst, t.rc_mask)])
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
