# Egress: a decided frame fitted to where it goes, then handed to that port's tx.
#   Out to a vnet port: virtio-net header + frame as read (the receiving kernel segments
#   and checksums it).  Out to a port without the header: a partial checksum completed in
#   place, a GSO super-frame cut into segments in software (vnet.pxi).  A fan-out copy is
#   its own 14-byte Ethernet header + the frame's body (the frame's bytes are shared).
#   To the slow queue: as on a wire (checksum completed, segments), slow_queue.pxi.
# Each function takes the frame ``f`` (``n`` bytes, its virtio-net header right before it)
# and counts what it does in ``st``.  Nothing written is larger than its port's MTU: a
# unicast frame's size (a super-frame's segments) process() checked (too_big); a fan-out
# copy the loop checks (frame_wire_len, tx_over_mtu).  A frame dropped on the way (a
# super-frame that cannot be cut; a failed write, tap.pxi / uring.pxi) is copied to a
# capture of the port's drops (capture.pxi) where it is counted.


cdef inline uint32_t frame_wire_len(const uint8_t* f, uint32_t n) noexcept nogil:
    """The largest IP packet frame ``f`` (``n`` bytes, its virtio-net header before it)
    puts on a link: its IP length; a super-frame's largest segment (its headers to the
    end of the TCP / UDP header + gso_size), what segmentation here or in the receiving
    kernel writes.  The loop holds fan-out copies to their ports' MTUs with it
    (process() holds unicast frames to theirs: too_big)."""
    cdef const uint8_t* h = f - VNET_HDR_LEN
    cdef uint8_t gso = h[1] & ~VNET_GSO_ECN
    cdef uint32_t seg
    cdef GsoInfo g
    if gso != VNET_GSO_NONE and gso_parse(f, n, gso, &g) == VNET_OK:
        seg = g.hl + le16(h + 4)
        return (seg if seg < g.end else g.end) - ETH_HLEN
    if n >= ETH_HLEN + 20 and be16(f + 12) == ETHERTYPE_IPV4:
        return be16(f + 16)
    if n >= ETH_HLEN + IPV6_HLEN and be16(f + 12) == ETHERTYPE_IPV6:
        return IPV6_HLEN + be16(f + 18)
    return n - ETH_HLEN


cdef enum:
    FIT_WRITE = 0           # segment_or_complete: the caller writes the frame
    FIT_DONE = 1            # its segments went to the sink
    FIT_REFUSED = -1        # a super-frame that cannot be cut: dropped (counted)


cdef int segment_or_complete(const uint8_t* eth, uint8_t* f, uint32_t n, uint8_t* scratch,
                             seg_sink sink, void* ctx, LoopStats* st) noexcept nogil:
    """Fit a frame for a destination without the virtio-net header: a GSO super-frame goes
    to ``sink`` as its segments (FIT_DONE; FIT_REFUSED when it cannot be cut); a partial
    checksum is completed in place (FIT_WRITE: the caller writes the frame).  Counted."""
    cdef uint8_t* h = f - VNET_HDR_LEN
    cdef Py_ssize_t segs
    if h[1] != VNET_GSO_NONE:
        segs = gso_segment(eth, f, n, h, scratch, sink, ctx)
        if segs < 0:
            st.sw_gso_refused += 1
            return FIT_REFUSED
        st.sw_gso_frames += 1
        st.sw_segments += <uint64_t>segs
        return FIT_DONE
    if h[0] & VNET_F_NEEDS_CSUM:
        vnet_complete_csum(f, n, h)
        st.sw_csum += 1
    return FIT_WRITE


cdef void settle_csum(uint8_t* f, uint32_t n, LoopStats* st) noexcept nogil:
    """Complete a partial checksum before a frame's fan-out copies go out: a copy to a
    plain port would complete it in place while a vnet copy queued earlier (io_uring)
    still points at the frame.  Completed, the frame is valid for every port."""
    cdef uint8_t* h = f - VNET_HDR_LEN
    if h[0] & VNET_F_NEEDS_CSUM and h[1] == VNET_GSO_NONE:
        vnet_complete_csum(f, n, h)
        st.sw_csum += 1


cdef inline void port_write(LoopPort* p, iovec* iov, int cnt) noexcept nogil:
    """p.tx, or a TAP write made at once (fd_write) and timed for the port's cost (tx_cost.pxi:
    every TX_COST_GAP_MIN..+GAP_SPREAD frames, each while the port is watched).  On io_uring
    the writes to it still queued are submitted first, so it does not pass them; a port
    with a write queued is timed once a batch at most unless watched (a gap drawn
    afresh), so bulk traffic pays one extra submit a batch, not one per timing."""
    cdef TxSink* s = &p.sink
    cdef int64_t t0
    if s.cost.sample_in:
        s.cost.sample_in -= 1
        p.tx(s, iov, cnt)
        return
    if p.end != NULL:
        p.tx(s, iov, cnt)               # a ring kind: its kicks are timed
        return
    if s.uring != NULL and s.cost.queued == s.uring.flushes + 1:    # a write to it queued
        if s.cost.timed_batch == s.st.batches and not tx_cost_watched(s.policy, &s.cost):
            s.cost.sample_in = tx_cost_gap(s.policy, &s.cost)
            p.tx(s, iov, cnt)
            return
        uring_flush(s.uring, s.st)
        s.st.tx_timed_flushes += 1
    s.cost.timed_batch = s.st.batches
    s.st.tx_timed += 1
    t0 = now_ns()
    if fd_write(s, iov, cnt) == 0:
        tx_cost_stop(s.policy, &s.cost, t0, 1)
    s.cost.sample_in = tx_cost_gap(s.policy, &s.cost)


cdef void send_out(LoopPort* p, uint8_t* f, uint32_t n, const uint8_t* eth, uint8_t* scratch,
                   LoopStats* st) noexcept nogil:
    """Write frame ``f`` (with ``eth`` instead of its own Ethernet header, for a fan-out
    copy) out of port ``p``, fitted to whether that port has the virtio-net header; unless
    the port is held for what its frames cost (tx_cost.pxi): then within its share."""
    cdef iovec iov[3]
    cdef uint8_t* h = f - VNET_HDR_LEN
    cdef int cnt
    if tx_cost_held(p.sink.policy, &p.sink.cost) \
            and not tx_cost_admit(p.sink.policy, &p.sink.cost, now_ns()):
        st.tx_cost_held += 1
        p.sink.cost.drops += 1
        if p.sink.cap != NULL:
            capture_drop(p.sink.cap, p.sink.port, DROP_TX_COST_HELD, eth, f, n)
        return
    if p.vnet:
        if eth == NULL:
            iov[0].iov_base, iov[0].iov_len = h, VNET_HDR_LEN + n
            cnt = 1
        else:
            iov[0].iov_base, iov[0].iov_len = h, VNET_HDR_LEN
            iov[1].iov_base, iov[1].iov_len = <void*>eth, ETH_HLEN
            iov[2].iov_base, iov[2].iov_len = f + ETH_HLEN, n - ETH_HLEN
            cnt = 3
        port_write(p, iov, cnt)
        return
    cdef int fit = segment_or_complete(eth if eth != NULL else f, f, n, scratch, p.tx, &p.sink, st)
    if fit == FIT_REFUSED and p.sink.cap != NULL:
        capture_drop(p.sink.cap, p.sink.port, DROP_SW_GSO_REFUSED, eth, f, n)
    if fit != FIT_WRITE:
        return
    if eth == NULL:
        iov[0].iov_base, iov[0].iov_len = f, n
        cnt = 1
    else:
        iov[0].iov_base, iov[0].iov_len = <void*>eth, ETH_HLEN
        iov[1].iov_base, iov[1].iov_len = f + ETH_HLEN, n - ETH_HLEN
        cnt = 2
    port_write(p, iov, cnt)


cdef void queue_slow(SlowQueue* q, uint8_t* f, uint32_t n, int32_t port, int32_t ns,
                     uint8_t reason, uint8_t* scratch, LoopStats* st) noexcept nogil:
    """Copy frame ``f`` (read on ``port`` of namespace ``ns``, handed up for ``reason``)
    into the slow queue as the slow path wants it: as on a wire."""
    cdef iovec iov
    q.cur_port = port
    q.cur_ns = ns
    q.cur_reason = reason
    cdef int fit = segment_or_complete(f, f, n, scratch, slow_append, q, st)
    if fit == FIT_REFUSED and q.capture != NULL:
        capture_drop(q.capture, port, DROP_SW_GSO_REFUSED, NULL, f, n)
    if fit != FIT_WRITE:
        return
    iov.iov_base, iov.iov_len = f, n
    slow_append(q, &iov, 1)
