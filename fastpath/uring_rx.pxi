# Step 2 of a batch on the io_uring backend (loop.pxi's _fill): the TAP ports' reads go
# through the same ring as the writes, a pass over the active ports at a time -- one
# io_uring_enter for all the reads of a pass, where the epoll backend makes one read()
# per frame and one more per port that finds it empty.
#
# Each TAP port gets ``burst`` reads per pass, queued with RWF_NOWAIT (an empty port
# completes a read with -EAGAIN at once; without it io_uring would wait for a frame):
# burst doubles (up to URING_RX_BURST) while a port fills every read it got, and falls to
# one more than it filled otherwise (at least two), so a port that brings one frame per
# wake-up costs a read that finds it and one that finds it empty, in one system call.  A
# port whose last read of a pass found it empty leaves the round-robin list (epoll brings
# it back); one whose reads all found frames stays for the next pass.  Ring ports
# (AF_PACKET, AF_XDP) are read by their own rx at the start of a pass, as _fill reads them.
#
# Where frames go: frame k of the batch is slot k (its offset, length, port), but a
# frame's bytes need not lie in pool buffer k (batch.pxi).  Each read takes a buffer left
# by a read of an earlier pass that found its port empty (``holes``), else the next unused
# one (``nbuf``), so a TAP frame's buffer may lie above its slot.  A ring kind's rx may
# read a frame into the pool buffer of its slot (an AF_PACKET super-frame), so ring ports
# are read at the start of a pass only while no such gap exists (no holes), and otherwise
# wait for the next batch.  The fill ends when every buffer holds a frame, or, as
# _fill's does, after reads of FILL_READS_MAX times the batch's capacity (frames dropped
# as they are read do not fill a batch: loop.pxi).
#
# A submission the kernel refused (ts_uring_submit_wait < 0) does not lose frames: each
# read it left undone is made at once with read() into its own buffer.  A read's
# completion is tagged (URING_READ_TAG) so uring_flush never takes one for a write's.

cdef enum:
    URING_RX_BURST = 64         # most reads queued for one port in one pass
    URING_RX_BURST_MIN = 2      # fewest: a frame and the read that finds the port empty
    URING_READ_UNSENT = -1000000  # a read the refused submission left undone (not an errno)


cdef inline Py_ssize_t _uring_read_done(LoopPort* lp, int32_t p, const RxBatch* rx,
                                        Py_ssize_t count, UringRead* r,
                                        bint* empty, bint* failed) noexcept nogil:
    """Account one read's result (tap.pxi's tap_read_result): frames placed at slot
    ``count`` (0 or 1); ``empty`` set when it found the port empty, ``failed`` when the
    port failed (counted by the port's first failing read only)."""
    cdef ssize_t res = r.res
    cdef Py_ssize_t got
    cdef size_t fits = rx.slot_size - rx.headroom + (VNET_HDR_LEN if lp.vnet else 0)
    if res == URING_READ_UNSENT:
        res = read(lp.fd, rx.buf + r.off - (VNET_HDR_LEN if lp.vnet else 0), fits)
        if res < 0:
            res = -errno
    empty[0] = False
    if res <= 0 and failed[0]:
        return 0
    got = tap_read_result(lp, p, rx, count, r.off, res, fits)
    if got == RX_EMPTY:
        empty[0] = True
    elif got == RX_FAILED:
        failed[0] = True
    return got if got > 0 else 0


cdef void _uring_reads_collect(UringTx* u, unsigned nq, LoopStats* st) noexcept nogil:
    """Submit the pass's ``nq`` reads, wait for them, put each result in its UringRead."""
    cdef unsigned k
    cdef io_uring_cqe* c
    cdef int calls
    for k in range(nq):
        u.r[k].res = URING_READ_UNSENT
    if u.refuse_reads > 0:                  # fault injection: as a refused submission
        u.refuse_reads -= 1
        ts_uring_discard(&u.ring)
        return
    calls = ts_uring_submit_wait(&u.ring)
    if calls > 0:
        st.rx_submits += <uint64_t>calls
    while True:
        c = ts_uring_cqe(&u.ring)
        if c == NULL:
            break
        k = <unsigned>(c.user_data & ~URING_READ_TAG)
        if c.user_data & URING_READ_TAG and k < nq:
            u.r[k].res = c.res
        ts_uring_cqe_seen(&u.ring)


cdef Py_ssize_t uring_fill(UringTx* u, PortSet* ps, const RxBatch* rx, Py_ssize_t cap,
                           LoopStats* st) noexcept nogil:
    """Step 2 on the io_uring backend (see the top): read the active ports, a pass at a
    time, into the batch; the number of frames placed."""
    cdef Py_ssize_t count = 0, nbuf = 0, nholes = 0, r, room, reads = 0
    cdef unsigned nq, q, k, first, got
    cdef int n0, t, j, start, kept, next_j, rr
    cdef int32_t p
    cdef LoopPort* lp
    cdef uint32_t off
    cdef bint empty, failed, full = False
    ps.emptied_n = 0
    if u.ring.filled:
        uring_flush(u, st)      # no write is queued between batches; were one, it goes first
    while count < cap and ps.active_n > 0 and not full and reads < FILL_READS_MAX * cap:
        n0 = ps.active_n
        start = ps.rr if ps.rr < n0 else 0
        next_j = start                                  # a whole pass: the next starts here too
        nq = 0
        if nholes == 0:                                 # (a) ring ports: their own rx
            for t in range(n0):
                p = ps.active[(start + t) % n0]
                lp = &ps.port[p]
                if lp.end == NULL:
                    continue
                if count >= cap:
                    break
                r = lp.rx(lp, p, rx, count, cap - count)
                reads += r if r > 0 else 1
                ports_touch(ps, lp, p)
                if r < 0:
                    if r == RX_FAILED:
                        port_failed(ps, p)
                    elif lp.ready != NULL:
                        ps.emptied[ps.emptied_n] = p    # looked at again after the batch
                        ps.emptied_n += 1
                    lp.active = 0                       # out of the list after the pass
                else:
                    count += r
            nbuf = count
        for t in range(n0):                             # (b) TAP ports: reads queued
            j = (start + t) % n0
            p = ps.active[j]
            lp = &ps.port[p]
            if lp.end != NULL:
                continue
            room = cap - nbuf + nholes                  # buffers not yet taken
            if room > FILL_READS_MAX * cap - reads - <Py_ssize_t>nq:
                room = FILL_READS_MAX * cap - reads - <Py_ssize_t>nq
            if room > <Py_ssize_t>(u.ring.entries - nq):
                room = u.ring.entries - nq
            if room <= 0:
                next_j, full = j, True                  # the next batch starts with it
                break
            k = lp.burst if lp.burst > 0 else URING_RX_BURST_MIN
            if k > room:
                k = <unsigned>room
            for q in range(k):
                if nholes > 0:
                    nholes -= 1
                    off = u.holes[nholes]
                else:
                    off = <uint32_t>(nbuf * rx.slot_size + rx.headroom)
                    nbuf += 1
                u.r[nq].port, u.r[nq].off = p, off
                ts_uring_queue_read(&u.ring, lp.sink.uring_fd,
                                    rx.buf + off - (VNET_HDR_LEN if lp.vnet else 0),
                                    <uint32_t>(rx.slot_size - rx.headroom
                                               + (VNET_HDR_LEN if lp.vnet else 0)),
                                    URING_READ_TAG | nq)
                nq += 1
        if nq == 0 and nholes > 0:
            break                                       # only ring ports left: next batch
        if nq > 0:
            reads += nq
            _uring_reads_collect(u, nq, st)
            q = 0
            while q < nq:                               # each port's reads, in order
                p = u.r[q].port
                lp = &ps.port[p]
                first, got, failed = q, 0, False
                while q < nq and u.r[q].port == p:
                    r = _uring_read_done(lp, p, rx, count, &u.r[q], &empty, &failed)
                    count += r
                    if r == 0:
                        u.holes[nholes] = u.r[q].off    # no frame there: the buffer is free
                        nholes += 1
                    if not empty and not failed:
                        got += 1                        # a frame (placed or a counted drop)
                    q += 1
                if failed:
                    port_failed(ps, p)
                    lp.active = 0
                elif empty:                             # its last read found it empty
                    lp.active = 0
                k = q - first                   # the reads it was given (queued together)
                if got == k:
                    k = 2 * k if 2 * k > lp.burst else lp.burst
                    lp.burst = <uint16_t>(k if k < URING_RX_BURST else URING_RX_BURST)
                else:
                    lp.burst = <uint16_t>(got + 1 if got + 1 > URING_RX_BURST_MIN
                                          else URING_RX_BURST_MIN)
        # out of the list: the ports this pass found empty or failed; the next pass (and
        # the next batch) starts at next_j's port, or the first kept one after it
        kept = 0
        rr = -1
        for j in range(n0):
            if j == next_j:
                rr = kept
            p = ps.active[j]
            if ps.port[p].active:
                ps.active[kept] = p
                kept += 1
        ps.active_n = kept
        ps.rr = rr if 0 <= rr < kept else 0
    return count
