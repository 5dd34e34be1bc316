# The per-packet fan-out of process(): a broadcast or multicast frame becomes copies in
# the batch's fan-out list -- one per listening port, each with its own Ethernet header,
# never to the sender's own ports -- decided from a listener list (listeners.pxi) or a
# multicast group (mcast.pxi).  A copy's ethertype is IPv4's; process6.pxi gives the copies
# of an IPv6 frame theirs (ipv6_copies).  No payload is copied (batch.pxi says how a copy is
# written); copies that do not fit the list are counted fanout_overflow drops.


cdef inline uint32_t add_copy(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns, int32_t op,
                              uint64_t dst_mac, uint32_t nbytes) noexcept nogil:
    """Append a copy of frame i (sent by namespace ns) out of port op, unless op is one of
    the sender's own ports.  Returns 1 for a copy the full list had no room for, else 0."""
    cdef Py_ssize_t idx = b.fanout_count
    cdef uint8_t* eth
    cdef int32_t out_ns = t.ports.ns[op]
    if out_ns == ns:
        return 0
    if idx >= b.max_fanout:
        return 1
    b.fanout_count = idx + 1
    b.fanout_port[idx] = op
    b.fanout_frame[idx] = <uint32_t>i
    eth = &b.fanout_eth[idx * ETH_HLEN]
    store_mac(eth, dst_mac)
    store_mac(eth + 6, t.ports.mac[op])
    eth[12] = ETHERTYPE_IPV4 >> 8
    eth[13] = ETHERTYPE_IPV4 & 0xFF
    count_tx(&t.ctr, op, out_ns, nbytes)
    return 0


cdef inline uint8_t fanout_verdict(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns,
                                   Py_ssize_t start, uint32_t overflow) noexcept nogil:
    """Frame i's verdict once its copies are in the fan-out list (from index start on)."""
    cdef uint32_t copies = <uint32_t>(b.fanout_count - start)
    if overflow:
        charge_n(&t.ctr, ns, REASON_FANOUT_OVERFLOW, overflow)
    if copies:
        b.fanout_first[i] = <uint32_t>start
        b.fanout_n[i] = copies
        b.reason[i] = REASON_FANOUT_OVERFLOW if overflow else REASON_NONE
        return VERDICT_FANOUT
    if overflow:
        b.reason[i] = REASON_FANOUT_OVERFLOW
    else:
        b.reason[i] = charge(&t.ctr, ns, REASON_NO_LISTENER)
    return VERDICT_DROP


cdef inline uint8_t fan_out(const DpTables* t, BatchView* b, Py_ssize_t i, int32_t ns,
                            int32_t list_id, uint64_t dst_mac, uint32_t nbytes) noexcept nogil:
    """Frame i's copies for listener list ``list_id`` (-1: none): the ports of its L3
    namespaces (an L2 in the list has none), never the sender's."""
    cdef int32_t k, op
    cdef Py_ssize_t start = b.fanout_count
    cdef uint32_t overflow = 0
    cdef const ListenerList* l
    if 0 <= list_id < t.lists.n:
        l = &t.lists.lists[list_id]
        for k in range(l.n):
            op = t.ns.port[l.members[k]]
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
