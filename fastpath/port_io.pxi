# The packet loop's ports, and the seam a port kind plugs into.
#
# A port kind is two functions: ``rx`` reads frames of the port into free batch slots (a
# burst: up to ``room`` frames; it returns how many it placed, RX_EMPTY when the port has
# nothing now, RX_FAILED when the port is dead, having set its ``failed``), and ``tx`` writes one frame given as
# iovecs (a seg_sink, vnet.pxi: a GSO super-frame's segments arrive the same way).  The
# loop never touches a port's fd itself: it waits for readiness on the port's ``fd``
# (epoll), calls ``rx`` round-robin and hands every decided frame to ``tx``.  TAP ports
# (tap.pxi: read() one frame; write()/writev(), or io_uring, uring.pxi) are one kind; the
# ring kinds -- AF_PACKET rings (afpacket.pxi) and AF_XDP (afxdp.pxi) -- add a third call,
# ``end``: after a batch's writes, give the frames rx took from the ring back to the
# kernel (they were classified and written where they lay) and kick the transmit ring.
# The loop calls ``end`` once per batch for each ring port the batch read from or wrote
# to (the ``touched`` list); a ring kind is a RingPort object the caller made.  ``end``
# returns True when frames still wait in the port's transmit ring (the kernel refused
# them for now): the port stays in the touched list, so the next batch's end, or the
# loop's retry at least every RING_RETRY_MS while it would sleep, kicks it again.
# ``end(END_MORE)`` says another batch starts at once: a kind may leave fewer than
# RING_KICK_MIN frames unkicked for it (it returns True; the loop kicks them with
# END_KICK before it calls epoll_wait or returns, loop.pxi).  A ring kind's fourth call,
# ``ready``, says whether its receive ring holds a frame -- a read of ring memory, no
# system call: the loop looks at the ring ports a batch emptied right after it, and
# starts the next batch without epoll_wait while one holds frames again (loop.pxi).
#
# Every frame in a batch has a 12-byte virtio-net header right before it (in the batch's
# headroom): read from a vnet port, zeros from a port without one.  rx_accept() checks and
# places a frame a kind has read; the egress (egress.pxi) fits a frame to the port it
# leaves by.
#
# LoopPorts owns the per-port state (by port id, the datapath's id space) and the
# round-robin list of ports that may hold frames; the nogil code works on its PortSet.
from fastpath.includes.afpacket cimport getsockopt, socklen_t, SOL_SOCKET, SO_ERROR


cdef enum:
    KIND_PORT = 1           # what an epoll event is: tag = kind << 32 | id
    KIND_WAKEUP = 2
    KIND_STOP = 3
    KIND_NUDGE = 4          # send() left frames in a ring: retry them (loop.pxi)
    PORT_EOF = -1           # LoopPort.failed of a port whose read returned 0 bytes
    RX_EMPTY = -1           # rx: nothing to read now
    RX_FAILED = -2          # rx: the port failed (read error or EOF); it is no longer polled
    RING_RETRY_MS = 1       # the longest sleep while a transmit ring holds waiting frames
    RING_KICK_MIN = 32      # frames a ring kind's transmit kick may wait for (END_MORE)
    FILL_READS_MAX = 2      # a batch's reads stop at this many times its capacity (loop.pxi)
    END_KICK = 0            # end's ``how``: kick now
    END_FINAL = 1           #   the port leaves the loop: what the kernel does not take is dropped
    END_MORE = 2            #   another batch starts at once: a small kick may wait for it

cdef struct TxSink:         # what a port's tx writes with
    int fd
    int uring_fd            # how the io_uring backend's requests name fd: -1 - its slot in
                            # the ring's registered files (uring.pxi), or fd itself
    LoopStats* st
    UringTx* uring          # the io_uring backend's ring (NULL: write at once)
    void* kind              # a ring kind's state (its RingPort's)
    CaptureRing* cap        # where a failed write is copied (capture.pxi; NULL: nowhere)
    int32_t port            # the port's id, for the capture
    uint8_t skip            # bytes before the frame in what tx gets (its virtio-net header)
    TxCostPolicy* policy    # the loop's hold of expensive ports (tx_cost.pxi)
    TxCost cost             # what writing to this port costs the packet thread

cdef struct RxBatch:        # where a port kind's rx puts frames
    uint8_t* buf
    Py_ssize_t slot_size, headroom
    uint32_t* offset
    uint32_t* length
    int32_t* port
    LoopStats* st
    CaptureRing* cap        # where a refused read is copied (capture.pxi)

cdef struct LoopPort
ctypedef Py_ssize_t (*port_rx_fn)(LoopPort* p, int32_t port_id, const RxBatch* rx,
                                  Py_ssize_t slot, Py_ssize_t room) noexcept nogil
ctypedef bint (*port_end_fn)(LoopPort* p, LoopStats* st, int how) noexcept nogil
ctypedef bint (*port_ready_fn)(LoopPort* p) noexcept nogil

cdef struct LoopPort:
    int fd                  # -1: no port with this id
    uint8_t vnet            # frames carry a virtio-net header on this port
    uint8_t active          # in the round-robin list
    uint8_t touched         # in the touched list (a ring kind this batch read or wrote)
    uint8_t error_seen      # epoll said EPOLLERR: a ring kind's rx looks at SO_ERROR
    uint16_t burst          # a TAP's reads per pass on the io_uring backend (uring_rx.pxi)
    int failed              # 0; else the errno of the read that failed it, or PORT_EOF
    port_rx_fn rx           # the kind's read
    seg_sink tx             # the write backend's write
    port_end_fn end         # a ring kind's end of batch (NULL: a TAP)
    port_ready_fn ready     # a ring kind's: its receive ring holds a frame (NULL: a TAP)
    void* kind              # a ring kind's state
    TxSink sink             # tx's context

cdef struct PortSet:
    LoopPort* port          # n entries, by port id
    int32_t* active         # round-robin list of ports that may hold frames
    int32_t* touched        # ring ports this batch read from or wrote to
    int32_t* emptied        # ring ports this batch's reads found empty (looked at after it)
    int n, active_n, rr, touched_n, emptied_n
    int epfd


cdef inline void ports_activate(PortSet* ps, int32_t p) noexcept nogil:
    if ps.port[p].fd >= 0 and not ps.port[p].active:
        ps.port[p].active = 1
        ps.active[ps.active_n] = p
        ps.active_n += 1


cdef inline void ports_deactivate(PortSet* ps, int i) noexcept nogil:
    """Take entry i out of the round-robin list."""
    ps.port[ps.active[i]].active = 0
    memmove(&ps.active[i], &ps.active[i + 1], (ps.active_n - i - 1) * sizeof(int32_t))
    ps.active_n -= 1
    if ps.rr > i:
        ps.rr -= 1


cdef inline void ports_touch(PortSet* ps, LoopPort* lp, int32_t p) noexcept nogil:
    """Port p (a ring kind) has frames to give back or to kick out after this batch."""
    if lp.end != NULL and not lp.touched:
        lp.touched = 1
        ps.touched[ps.touched_n] = p
        ps.touched_n += 1


cdef inline void ports_end_batch(PortSet* ps, LoopStats* st, int how) noexcept nogil:
    """After a batch's writes (or as a retry): each touched ring port gives its frames
    back and kicks (``how``: END_KICK, or END_MORE); those whose transmit ring still holds
    frames stay touched."""
    cdef int k, kept = 0
    cdef int32_t p
    cdef LoopPort* lp
    for k in range(ps.touched_n):
        p = ps.touched[k]
        lp = &ps.port[p]
        if lp.end(lp, st, how):
            ps.touched[kept] = p
            kept += 1
        else:
            lp.touched = 0
    ps.touched_n = kept


cdef inline bint ports_refill(PortSet* ps) noexcept nogil:
    """After a batch: the ring ports its reads emptied that hold frames again (their
    ``ready``: a memory read) become active; True when any port is active."""
    cdef int k
    cdef int32_t p
    for k in range(ps.emptied_n):
        p = ps.emptied[k]
        if ps.port[p].fd >= 0 and not ps.port[p].active and ps.port[p].ready(&ps.port[p]):
            ports_activate(ps, p)
    return ps.active_n > 0


cdef inline void port_failed(const PortSet* ps, int32_t p) noexcept nogil:
    """Port p's rx said RX_FAILED (a read error, or EOF): stop polling it (it would report
    ready forever)."""
    epoll_ctl(ps.epfd, EPOLL_CTL_DEL, ps.port[p].fd, NULL)


cdef inline Py_ssize_t rx_accept(const RxBatch* rx, int32_t port_id, bint vnet,
                                 Py_ssize_t slot, uint32_t off, size_t got, size_t room) noexcept nogil:
    """A kind read ``got`` bytes into batch slot ``slot`` (at ``off``, or its header right
    before it on a vnet port; ``room`` bytes fitted): check and place the frame.  1 when it
    is in the batch, 0 when it was a counted drop."""
    cdef uint8_t* f = rx.buf + off
    cdef uint8_t* h = f - VNET_HDR_LEN
    cdef uint32_t n
    cdef uint8_t why
    rx.st.reads += 1
    rx.st.read_bytes += got
    if got >= room:
        rx.st.rx_oversize += 1         # may have been cut short to fit the slot
        if vnet and got >= VNET_HDR_LEN:
            capture_drop(rx.cap, port_id, DROP_RX_OVERSIZE, NULL, f, <uint32_t>(got - VNET_HDR_LEN))
        else:
            capture_drop(rx.cap, port_id, DROP_RX_OVERSIZE, NULL, h if vnet else f, <uint32_t>got)
        return 0
    if vnet:
        if got < VNET_HDR_LEN:
            rx.st.vnet_drop[VNET_SHORT] += 1
            capture_drop(rx.cap, port_id, DROP_VNET_SHORT, NULL, h, <uint32_t>got)
            return 0
        n = <uint32_t>(got - VNET_HDR_LEN)
        why = vnet_check(h, f, n)
        if why != VNET_OK:
            rx.st.vnet_drop[why] += 1
            capture_drop(rx.cap, port_id, vnet_drop_code(why), NULL, f, n)
            return 0
        vnet_drop_claims(h)            # the sender's checksum claim never leaves its port
    else:
        n = <uint32_t>got
        memset(h, 0, VNET_HDR_LEN)
    rx.offset[slot] = off
    rx.length[slot] = n
    rx.port[slot] = port_id
    rx.st.frames_in += 1
    return 1


@cython.final
cdef class LoopPorts:
    """The loop's ports by id: fd, kind, header, state; and the round-robin list."""
    cdef PortSet ps

    def __cinit__(self, int n, int epfd):
        cdef int p
        self.ps.port = <LoopPort*>calloc(n, sizeof(LoopPort))
        self.ps.active = <int32_t*>calloc(n, sizeof(int32_t))
        self.ps.touched = <int32_t*>calloc(n, sizeof(int32_t))
        self.ps.emptied = <int32_t*>calloc(n, sizeof(int32_t))
        if (self.ps.port == NULL or self.ps.active == NULL or self.ps.touched == NULL
                or self.ps.emptied == NULL):
            raise MemoryError()
        self.ps.n, self.ps.epfd = n, epfd
        for p in range(n):
            self.ps.port[p].fd = -1

    def __dealloc__(self):
        free(self.ps.port)
        free(self.ps.active)
        free(self.ps.touched)
        free(self.ps.emptied)

    cdef int check_id(self, port_id) except -1:
        if not isinstance(port_id, int) or not 0 <= port_id < self.ps.n:
            raise InvalidArgument(f"port id {port_id!r} is not in 0..{self.ps.n - 1}")
        return port_id

    cdef int owner_of_fd(self, int fd) noexcept:
        """The port whose fd this is, or -1."""
        cdef int p
        for p in range(self.ps.n):
            if self.ps.port[p].fd == fd:
                return p
        return -1

    cdef int add(self, int port_id, int fd, bint vnet, port_rx_fn rx, seg_sink tx,
                 TxSink sink, port_end_fn end=NULL, port_ready_fn ready=NULL) except -1:
        """Poll and serve ``fd`` as port ``port_id`` (the caller checked both)."""
        cdef epoll_event ev
        cdef LoopPort* p = &self.ps.port[port_id]
        ev.events = EPOLLIN
        ev.data.u64 = (<uint64_t>KIND_PORT << 32) | <uint32_t>port_id
        if epoll_ctl(self.ps.epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
            e = errno
            raise InvalidArgument(f"port {port_id}: fd {fd} cannot be polled: {os.strerror(e)}")
        memset(p, 0, sizeof(LoopPort))
        p.fd, p.vnet, p.rx, p.tx, p.sink, p.end, p.kind = fd, vnet, rx, tx, sink, end, sink.kind
        p.ready = ready
        return 0

    cdef int remove(self, int port_id, LoopStats* st) except -1:
        """Forget the port; a ring port is kicked a last time and what its transmit ring
        still holds is dropped, counted in ``st`` (the caller holds the batch lock)."""
        cdef LoopPort* p = &self.ps.port[port_id]
        cdef int i
        if p.fd < 0:
            raise NotFound(f"port {port_id} is not in the loop")
        if p.touched:
            p.end(p, st, END_FINAL)
            for i in range(self.ps.touched_n):
                if self.ps.touched[i] == port_id:
                    memmove(&self.ps.touched[i], &self.ps.touched[i + 1],
                            (self.ps.touched_n - i - 1) * sizeof(int32_t))
                    self.ps.touched_n -= 1
                    break
        if not p.failed:
            epoll_ctl(self.ps.epfd, EPOLL_CTL_DEL, p.fd, NULL)   # gone already if fd was closed
        if p.active:
            for i in range(self.ps.active_n):
                if self.ps.active[i] == port_id:
                    ports_deactivate(&self.ps, i)
                    break
        memset(p, 0, sizeof(LoopPort))
        p.fd = -1
        return 0

    cdef dict describe(self):
        """{port_id: {"fd", "vnet_hdr", "failed", "error", "ring", "registered"}}
        (PacketLoop.ports())."""
        cdef LoopPort* p
        out = {}
        for k in range(self.ps.n):
            p = &self.ps.port[k]
            if p.fd >= 0:
                out[k] = {"fd": p.fd, "vnet_hdr": bool(p.vnet), "failed": bool(p.failed),
                          "error": _failure_name(p.failed), "ring": p.end != NULL,
                          "registered": p.sink.uring_fd < 0}
        return out


cdef class RingPort:
    """A port of a ring kind (AF_PACKET rings, AF_XDP): what the packet loop needs of it.
    Made for one loop (its rings lie in that loop's FrameArena), in the kernel network
    namespace of its interface; ``PacketLoop.add_port(port_id, ring_port)`` serves it.
    ``close()`` releases everything it holds (refused while a loop serves it)."""
    cdef FrameArena arena           # the loop's: where the rings lie
    cdef int poll_fd                # what the loop waits on
    cdef bint vnet                  # frames carry a virtio-net header
    cdef port_rx_fn rx
    cdef seg_sink tx
    cdef port_end_fn end
    cdef port_ready_fn ready
    cdef void* state                # the kind's C state (TxSink.kind, LoopPort.kind)
    cdef readonly int ifindex
    cdef readonly int serving       # 1 while a loop serves it

    def __cinit__(self):
        self.poll_fd = -1

    cdef int check_usable(self, FrameArena arena) except -1:
        if self.poll_fd < 0:
            raise ValueError(f"{type(self).__name__} is closed")
        if arena is not self.arena:
            raise InvalidArgument(f"{type(self).__name__} was made for another packet loop")
        if self.serving:
            raise Busy(f"{type(self).__name__} is already served by the packet loop")
        return 0

    cdef int check_not_serving(self, what) except -1:
        if self.serving:
            raise Busy(f"{what} while the packet loop serves the port (remove_port() first)")
        return 0


cdef inline int ring_errno_of(int fd) noexcept nogil:
    """The pending error of socket ``fd`` (read and cleared), or 0."""
    cdef int err = 0
    cdef socklen_t size = sizeof(int)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &size) < 0:
        return errno
    return err


cdef inline Py_ssize_t ring_empty(LoopPort* p, int fd, LoopStats* st) noexcept nogil:
    """A ring kind's rx found nothing: RX_EMPTY, or RX_FAILED when epoll reported an
    error and the socket has one (its device went down or away)."""
    cdef int err
    if not p.error_seen:
        return RX_EMPTY
    p.error_seen = 0
    err = ring_errno_of(fd)
    if err == 0:
        return RX_EMPTY
    st.read_errors += 1
    p.failed = err
    return RX_FAILED


def _failure_name(int why):
    if why == 0:
        return None
    if why == PORT_EOF:
        return "EOF"
    return _errno_mod.errorcode.get(why, f"errno {why}")
