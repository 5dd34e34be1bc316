# The AF_XDP port kind (port_io.pxi's seam): an interface served through an XDP socket.
# A six-instruction XDP program (includes/xdp.h) redirects every frame the interface
# receives into the socket, which the kernel fills into the UMEM -- the port's frame
# memory, mapped into the loop's FrameArena -- so the batch points at each frame where
# it lies (no copy), and hands the chunks back on the fill ring after the batch's writes.
# No virtio-net header: frames arrive and leave whole, with complete checksums (the
# veth's other end has its checksum and segmentation offloads off; a super-frame from a
# vnet port is cut into segments in software on its way out, egress.pxi).  Needs
# CAP_BPF and CAP_NET_ADMIN (loading and attaching the program) and CAP_NET_RAW.
#
# UMEM: ``rx`` chunks for receiving (each on the fill ring, in the RX ring, or held by
# the batch), then ``tx`` chunks for sending (free, or in the TX or completion ring).
#
# Receive.  xsk_rx reads descriptors from the RX ring without publishing its consumer
# index; xsk_end gives the chunks of the batch's frames back on the fill ring and then
# moves the RX consumer on, so the kernel never reuses a chunk the batch still reads.
#
# Transmit.  xsk_tx copies the frame into a free TX chunk and publishes a descriptor;
# xsk_end kicks (sendto) once per batch (while batches follow each other at once,
# END_MORE: once per RING_KICK_MIN frames and before the loop waits, port_io.pxi) -- in
# copy mode the kernel sends 32 descriptors per call and says EAGAIN when more wait --
# and takes the sent chunks back from the completion ring.  No free chunk left is a counted drop (write_eagain).
from libc.errno cimport EBUSY
from fastpath.includes.afpacket cimport sendto, recvfrom
from fastpath.includes.xdp cimport (xdp_desc, ts_xsk_ring, ts_xsk_load, ts_xsk_store,
                                   ts_xsk_addr, ts_xsk_desc, XDP_RING_NEED_WAKEUP)

cdef enum:
    XSK_KICK_BATCH = 32         # descriptors the kernel sends per sendto() in copy mode


cdef struct XskState:
    int fd                      # the XDP socket (polled)
    uint8_t* umem               # the frame memory, in the FrameArena
    uint32_t umem_base          # its offset from the batch buffer
    uint32_t chunk              # chunk size (a power of two)
    uint32_t rx_next            # the next RX descriptor to read (rx.cached: the first held)
    ts_xsk_ring rx, tx, fill, comp
    uint64_t* tx_free           # free TX chunks (UMEM addresses)
    uint32_t tx_free_n, tx_queued


cdef Py_ssize_t xsk_rx(LoopPort* p, int32_t port_id, const RxBatch* rx, Py_ssize_t slot,
                       Py_ssize_t room) noexcept nogil:
    """Put up to ``room`` (at most RING_BURST) received frames in the batch from ``slot``
    on, where they lie in the UMEM; held until xsk_end."""
    cdef XskState* x = <XskState*>p.kind
    cdef uint32_t avail = ts_xsk_load(x.rx.producer) - x.rx_next
    cdef xdp_desc* d
    cdef Py_ssize_t k, placed = 0
    if avail == 0:
        return ring_empty(p, x.fd, rx.st)
    if room > RING_BURST:
        room = RING_BURST
    if avail > room:
        avail = <uint32_t>room
    for k in range(avail):
        d = ts_xsk_desc(&x.rx, x.rx_next)
        x.rx_next += 1
        placed += rx_accept(rx, port_id, False, slot + placed, x.umem_base + <uint32_t>d.addr,
                            d.len, <size_t>d.len + 1)
    return placed


cdef bint xsk_ready(LoopPort* p) noexcept nogil:
    """The RX ring holds a descriptor not read yet (the kind's ``ready``)."""
    cdef XskState* x = <XskState*>p.kind
    return ts_xsk_load(x.rx.producer) != x.rx_next


cdef void xsk_reap(XskState* x) noexcept nogil:
    """Take the chunks the kernel has sent back from the completion ring."""
    cdef uint32_t prod = ts_xsk_load(x.comp.producer)
    while x.comp.cached != prod:
        x.tx_free[x.tx_free_n] = ts_xsk_addr(&x.comp, x.comp.cached)[0]
        x.tx_free_n += 1
        x.comp.cached += 1
    ts_xsk_store(x.comp.consumer, prod)


cdef void xsk_kick(XskState* x, TxSink* s) noexcept nogil:
    """Have the kernel send what the TX ring holds (see the top of this file); timed for
    the port's cost (tx_cost.pxi: in copy mode the peer's stack runs in sendto())."""
    cdef uint32_t tries = x.tx_queued // XSK_KICK_BATCH + 2
    cdef uint32_t frames = x.tx_queued
    cdef LoopStats* st = s.st
    cdef int64_t t0
    x.tx_queued = 0
    if not ts_xsk_load(x.tx.flags) & XDP_RING_NEED_WAKEUP:
        return                          # a zero-copy driver polls the ring itself
    t0 = now_ns()
    while tries:
        tries -= 1
        st.tx_submits += 1
        if sendto(x.fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0:
            if errno == EBUSY or errno == ENOBUFS:
                break                   # the device is full: the rest goes at the next kick
            if errno != EAGAIN:
                st.write_errors += 1
                break
        xsk_reap(x)
        if ts_xsk_load(x.tx.consumer) == x.tx.cached:
            break
    xsk_reap(x)
    tx_cost_stop(s.policy, &s.cost, t0, frames)


cdef int xsk_tx(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """The kind's tx (a seg_sink): the frame copied into a free TX chunk and queued."""
    cdef TxSink* s = <TxSink*>ctx
    cdef XskState* x = <XskState*>s.kind
    cdef size_t total = 0
    cdef uint64_t addr
    cdef xdp_desc* d
    cdef int k
    for k in range(iovcnt):
        total += iov[k].iov_len
    if total > x.chunk:
        s.st.write_errors += 1          # larger than a chunk (the port's MTU is smaller)
        capture_drop_iov(s.cap, s.port, DROP_WRITE_ERRORS, iov, iovcnt, s.skip)
        return -1
    if x.tx_free_n == 0:
        xsk_reap(x)
        if x.tx_free_n == 0 and x.tx_queued:
            xsk_kick(x, s)
        if x.tx_free_n == 0:
            s.st.write_eagain += 1
            capture_drop_iov(s.cap, s.port, DROP_WRITE_EAGAIN, iov, iovcnt, s.skip)
            return -1
    x.tx_free_n -= 1
    addr = x.tx_free[x.tx_free_n]
    total = 0
    for k in range(iovcnt):
        memcpy(x.umem + addr + total, iov[k].iov_base, iov[k].iov_len)
        total += iov[k].iov_len
    d = ts_xsk_desc(&x.tx, x.tx.cached)
    d.addr, d.len, d.options = addr, <uint32_t>total, 0
    x.tx.cached += 1
    ts_xsk_store(x.tx.producer, x.tx.cached)
    x.tx_queued += 1
    s.st.writes += 1
    s.st.frames_out += 1
    s.st.bytes_out += total
    if tx_cost_kick_alone(s.policy, &s.cost):
        xsk_kick(x, s)                  # measured alone (tx_cost.pxi)
    return 0


cdef bint xsk_end(LoopPort* p, LoopStats* st, int how) noexcept nogil:
    """After the batch: kick the TX ring, give the batch's RX chunks back on the fill
    ring (it has room for every RX chunk) and release their descriptors.  False: the
    loop need not call again (what the kick leaves goes at the next one); True after
    END_MORE left fewer than RING_KICK_MIN frames for the next batch's end to kick."""
    cdef XskState* x = <XskState*>p.kind
    cdef uint32_t i, n = x.rx_next - x.rx.cached
    cdef bint left = False
    if how == END_MORE and x.tx_queued and x.tx_queued < RING_KICK_MIN:
        st.tx_kicks_deferred += 1
        left = True
    elif x.tx_queued:
        xsk_kick(x, &p.sink)
    if n == 0:
        return left
    for i in range(n):
        ts_xsk_addr(&x.fill, x.fill.cached + i)[0] = \
            ts_xsk_desc(&x.rx, x.rx.cached + i).addr & ~(<uint64_t>x.chunk - 1)
    x.fill.cached += n
    ts_xsk_store(x.fill.producer, x.fill.cached)
    x.rx.cached += n
    ts_xsk_store(x.rx.consumer, x.rx.cached)
    if ts_xsk_load(x.fill.flags) & XDP_RING_NEED_WAKEUP:
        recvfrom(x.fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)
    return left
