# The io_uring backend of PacketLoop: its writes (a port's tx, port_io.pxi, for TAP
# ports) are queued as SQEs and submitted together at the end of the batch (one
# io_uring_enter for up to the ring's size), then the loop waits until every one has
# completed before the batch's buffers are read into again.  The TAP ports' reads go
# through the same ring, a pass over the ports per io_uring_enter (uring_rx.pxi).  The
# ring is set up with raw syscalls
# (fastpath/includes/uring.h); setup.py builds it only where <linux/io_uring.h> exists.
# Closing a ring waits for the kernel's teardown to reach the thread that made it
# (uring.h says why): a closed loop cannot interrupt a later wait.
#
# What a queued write may point at until its completion: the LAST iovec of a write
# stays where the caller put it (the batch buffer: the frame, or a slice of a GSO
# frame's payload); every other iovec (virtio-net header, a fan-out copy's Ethernet
# header, a segment's rebuilt L3/L4 header in the reused scratch) is copied into the
# write's own head buffer.  Each write is issued with RWF_NOWAIT: a TAP that cannot take
# the frame completes it with -EAGAIN (a counted drop, write_eagain) instead of making
# the loop wait.
#
# Registered files: the ring holds a sparse table of files, one slot per port id (as
# many as RLIMIT_NOFILE allows), and a TAP port's reads and writes name its slot
# (TxSink.uring_fd), so the kernel takes no reference to the file per request.  A port
# whose slot cannot be set (no table: Linux < 5.19; an id beyond the table) is named by
# its fd.  A slot is set when the port is added and emptied when it is removed, between
# batches, when no request is in flight: the ring then holds no reference to the file
# once the port is gone, and closing its fd closes the TAP.
from posix.resource cimport getrlimit, rlimit, RLIMIT_NOFILE
from fastpath.includes.uring cimport (io_uring_cqe, ts_uring, TS_IO_URING_BUILT, ts_uring_init,
                                     ts_uring_open, ts_uring_close, ts_uring_register_files,
                                     ts_uring_file_set, ts_uring_queue_write,
                                     ts_uring_queue_read, ts_uring_discard, ts_uring_submit_wait, ts_uring_cqe,
                                     ts_uring_cqe_seen)

IO_URING_BUILT = bool(TS_IO_URING_BUILT)
IO_BACKENDS = ("auto", "epoll", "io_uring")
IO_BACKEND_ENV = "TAPSWITCH_IO_BACKEND"

cdef enum:
    URING_HEAD = 320        # copied iovecs of one write: vnet 12 + Ethernet 14 + L3/L4 <= 256
    URING_MIN_ENTRIES = 32
    URING_MAX_ENTRIES = 1024


cdef struct UringWrite:
    iovec iov[2]
    int iovcnt
    int32_t port            # whose write it is, and the bytes before its frame (a capture
    uint8_t skip            # of the port's drops copies a write that failed)
    uint8_t done            # its completion was seen
    uint8_t head[URING_HEAD]


cdef struct UringRead:      # a TAP port's read queued in a pass (uring_rx.pxi)
    int32_t port
    uint32_t off            # where its frame goes: a batch offset
    int32_t res             # its completion's result


cdef extern from *:
    """#define TS_URING_READ_TAG (1ULL << 62)"""
    uint64_t URING_READ_TAG "TS_URING_READ_TAG"     # a read's user_data: tag | its index


cdef struct UringTx:
    ts_uring ring
    UringWrite* w           # w[k]: the k-th write queued since the last flush (user_data k)
    UringRead* r            # r[k]: the k-th read of a pass (user_data URING_READ_TAG | k)
    uint32_t* holes         # pool buffers a batch's reads left free (uring_rx.pxi)
    int refuse_reads        # read submissions to refuse, as the kernel may (tests)
    bint refuse_slots       # give ports no registered file slot (tests)
    CaptureRing* cap        # where a failed write is copied (capture.pxi)
    uint64_t flushes        # flushes that submitted writes (TxCost.queued: since when)


cdef int uring_tx_open(UringTx* u, unsigned entries, Py_ssize_t batch_size,
                       int nports) noexcept nogil:
    """Set up the ring, its table of ``nports`` registered files (fewer where
    RLIMIT_NOFILE is lower; none where the kernel refuses it: see the top) and the writes'
    and reads' bookkeeping: 0, or -errno."""
    cdef rlimit lim
    cdef int r = ts_uring_open(&u.ring, entries)
    if r < 0:
        return r
    u.w = <UringWrite*>malloc(u.ring.entries * sizeof(UringWrite))
    u.r = <UringRead*>malloc(u.ring.entries * sizeof(UringRead))
    u.holes = <uint32_t*>malloc(batch_size * sizeof(uint32_t))
    if u.w == NULL or u.r == NULL or u.holes == NULL:
        ts_uring_close(&u.ring)
        free(u.w)
        free(u.r)
        free(u.holes)
        u.w, u.r, u.holes = NULL, NULL, NULL
        return -ENOMEM
    if getrlimit(RLIMIT_NOFILE, &lim) == 0 and lim.rlim_cur < <unsigned>nports:
        nports = <int>lim.rlim_cur
    if nports > 0:
        ts_uring_register_files(&u.ring, <unsigned>nports)      # refused: fds, as before
    return 0


cdef int uring_file_add(UringTx* u, int32_t port, int fd) noexcept nogil:
    """Put port ``port``'s ``fd`` in its slot of the registered files: what its requests
    name it by (TxSink.uring_fd): -1 - slot, or ``fd`` where the slot cannot be set (on
    the epoll backend the ring is not open: no slots)."""
    if (not u.refuse_slots and <unsigned>port < u.ring.nfiles
            and ts_uring_file_set(&u.ring, <unsigned>port, fd) == 0):
        return -1 - port
    return fd


cdef void uring_file_remove(UringTx* u, int uring_fd) noexcept nogil:
    """Empty the slot uring_file_add() gave (nothing for a port named by its fd)."""
    if uring_fd < 0:
        ts_uring_file_set(&u.ring, <unsigned>(-1 - uring_fd), -1)


cdef void uring_tx_close(UringTx* u) noexcept nogil:
    """Close the ring (waiting for its teardown, see above) and free the buffers."""
    ts_uring_close(&u.ring)
    free(u.w)
    free(u.r)
    free(u.holes)
    u.w, u.r, u.holes = NULL, NULL, NULL


cdef inline void _uring_dropped(UringTx* u, UringWrite* w, uint8_t code) noexcept nogil:
    if u.cap != NULL:
        capture_drop_iov(u.cap, w.port, code, w.iov, w.iovcnt, w.skip)


cdef void uring_flush(UringTx* u, LoopStats* st) noexcept nogil:
    """Submit every queued write, wait for all of them, count how each ended (a failed one
    is copied to a capture of its port's drops while its buffers are still the batch's)."""
    cdef unsigned queued = u.ring.filled, seen = 0, k
    cdef io_uring_cqe* c
    cdef UringWrite* w
    if queued == 0:
        return
    u.flushes += 1
    cdef int calls = ts_uring_submit_wait(&u.ring)
    if calls > 0:
        st.tx_submits += <uint64_t>calls
    while True:
        c = ts_uring_cqe(&u.ring)
        if c == NULL:
            break
        if c.user_data & URING_READ_TAG:  # a read a refused submission left (uring_rx.pxi)
            ts_uring_cqe_seen(&u.ring)
            continue
        w = &u.w[c.user_data] if c.user_data < queued else NULL
        if w != NULL:
            w.done = 1
        if c.res >= 0:
            st.writes += 1
            st.frames_out += 1
            st.bytes_out += <uint64_t>c.res
        elif c.res == -EAGAIN:
            st.write_eagain += 1
            if w != NULL:
                _uring_dropped(u, w, DROP_WRITE_EAGAIN)
        else:
            st.write_errors += 1
            if w != NULL:
                _uring_dropped(u, w, DROP_WRITE_ERRORS)
        ts_uring_cqe_seen(&u.ring)
        seen += 1
    if calls < 0 and seen < queued:
        st.write_errors += queued - seen      # the kernel refused the submission
        for k in range(queued):
            if not u.w[k].done:
                _uring_dropped(u, &u.w[k], DROP_WRITE_ERRORS)


cdef int tx_uring(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """The io_uring backend's sink: queue the write (see the top of this file)."""
    cdef TxSink* s = <TxSink*>ctx
    cdef UringTx* u = s.uring
    cdef UringWrite* w
    cdef size_t used = 0
    cdef int j
    cdef unsigned k
    for j in range(iovcnt - 1):
        used += iov[j].iov_len
    if used > URING_HEAD:           # no caller does this; stay correct if one ever does
        uring_flush(u, s.st)        # (flush first: this port's frames keep their order)
        return fd_write(ctx, iov, iovcnt)
    if u.ring.filled >= u.ring.entries:
        uring_flush(u, s.st)
    k = u.ring.filled
    w = &u.w[k]
    if iovcnt == 1:
        w.iov[0] = iov[0]
    else:
        used = 0
        for j in range(iovcnt - 1):
            memcpy(w.head + used, iov[j].iov_base, iov[j].iov_len)
            used += iov[j].iov_len
        w.iov[0].iov_base, w.iov[0].iov_len = w.head, used
        w.iov[1] = iov[iovcnt - 1]
    w.iovcnt = 1 if iovcnt == 1 else 2
    w.port, w.skip, w.done = s.port, s.skip, 0
    ts_uring_queue_write(&u.ring, s.uring_fd, w.iov, w.iovcnt, k)
    s.cost.queued = u.flushes + 1       # a timed write of this port must not pass it
    return 0


cdef str open_backend(backend, Py_ssize_t batch_size, int nports, UringTx* u):
    """The write backend a PacketLoop runs: "epoll", or "io_uring" with its ring set up
    in ``u`` (a registered file for each of ``nports`` port ids).  ``backend``: "auto"
    (io_uring where it runs, else epoll), "epoll" or "io_uring"; None: the
    TAPSWITCH_IO_BACKEND environment variable, else "auto"."""
    source = "backend"
    if backend is None:
        backend = os.environ.get(IO_BACKEND_ENV) or "auto"
        source = IO_BACKEND_ENV
    if backend not in IO_BACKENDS:
        raise InvalidArgument(f"{source} must be one of {', '.join(IO_BACKENDS)}, not {backend!r}")
    if backend == "epoll":
        return "epoll"
    cdef unsigned entries = <unsigned>min(max(batch_size, URING_MIN_ENTRIES), URING_MAX_ENTRIES)
    cdef int err = uring_tx_open(u, entries, batch_size, nports)
    if err == 0:
        return "io_uring"
    if backend == "io_uring":
        raise NotSupported(f"I/O backend io_uring: {uring_unavailable(err)}")
    return "epoll"


cdef str uring_unavailable(int err):
    """Why the io_uring backend cannot run here (``err``: ts_uring_open's -errno)."""
    if not TS_IO_URING_BUILT:
        return ("this build of fastpath has no io_uring support (<linux/io_uring.h> was not "
                "found when it was compiled)")
    if err == -EPERM:
        return "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled)"
    if err == -EOPNOTSUPP:
        return "the kernel's io_uring lacks what the backend needs (single mmap, WRITE/WRITEV)"
    return f"io_uring_setup failed: {os.strerror(-err)}"


def io_backends():
    """The concrete I/O backends PacketLoop can run here, the preferred first:
    ["io_uring", "epoll"] or ["epoll"]."""
    cdef UringTx u
    ts_uring_init(&u.ring)
    u.w, u.r, u.holes = NULL, NULL, NULL
    if uring_tx_open(&u, URING_MIN_ENTRIES, 1, 0) != 0:
        return ["epoll"]
    uring_tx_close(&u)
    return ["io_uring", "epoll"]
