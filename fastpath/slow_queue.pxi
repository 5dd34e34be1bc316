# The slow queue: frames the batch function handed to the slow path (ARP, ICMP, unknown
# neighbours, ...), copied out of the batch into an arena before the batch is reused,
# one entry per frame, bounded in entries, in bytes and per sending namespace (no
# namespace holds more than ``share`` entries of a queue: a flood from one tenant cannot
# fill it for the others).  A refused frame is a counted drop (slow_overflow, slow_ns_full),
# copied to a capture of its port's drops.
# A frame is queued as the slow path wants it, as on a wire: egress.pxi completes a partial
# checksum and cuts a GSO super-frame into its segments on the way in (slow_append is a
# seg_sink).
#
# The handoff (SlowHandoff): two queues.  The packet loop fills one (under the handoff's
# lock, once per batch cycle); the consumer (PacketLoop.slow_frames(), the slow path's
# thread) swaps them under the lock -- O(1) -- and turns the full one into Python objects
# without the lock, so the loop never waits for Python.  A serving loop (loop.pxi,
# serve()) makes the handoff's eventfd readable when frames wait and the consumer has not
# been told yet; slow_frames() reads it before it swaps, so no frame is left untold.
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK,
                               NOWAIT_LOCK)
from posix.unistd cimport read, write, close
from fastpath.includes.epoll cimport eventfd, EFD_NONBLOCK, EFD_CLOEXEC


cdef struct SlowQueue:
    uint8_t* arena
    size_t size, used
    int32_t* port
    int32_t* ns                 # the sending namespace of each entry
    uint8_t* reason
    uint32_t* off
    uint32_t* len
    uint32_t* held              # entries per namespace (max_ns of them)
    int n, cap, max_ns
    uint32_t share              # entries one namespace may hold
    LoopStats* st
    CaptureRing* capture        # where a refused frame is copied (capture.pxi; the loop's)
    int32_t cur_port            # port, namespace and reason of the frame being queued
    int32_t cur_ns
    uint8_t cur_reason


cdef struct SlowHandoff:
    SlowQueue q[2]
    int fill                    # the queue the loop fills; the other is the consumer's
    PyThread_type_lock lock     # guards ``fill``, the filling queue and ``told``
    int efd                     # eventfd: readable when frames wait (a serving loop)
    bint told                   # efd was written since the last swap


cdef int slow_open(SlowQueue* q, int entries, size_t size, int max_ns, uint32_t share,
                   LoopStats* st) noexcept:
    """Allocate one queue: 0, or -1 (out of memory; slow_close() frees what was)."""
    memset(q, 0, sizeof(SlowQueue))
    q.size, q.cap, q.st, q.max_ns, q.share = size, entries, st, max_ns, share
    q.arena = <uint8_t*>malloc(size)
    q.port = <int32_t*>malloc(entries * sizeof(int32_t))
    q.ns = <int32_t*>malloc(entries * sizeof(int32_t))
    q.reason = <uint8_t*>malloc(entries)
    q.off = <uint32_t*>malloc(entries * sizeof(uint32_t))
    q.len = <uint32_t*>malloc(entries * sizeof(uint32_t))
    q.held = <uint32_t*>calloc(max_ns, sizeof(uint32_t))
    if (q.arena == NULL or q.port == NULL or q.ns == NULL or q.reason == NULL or q.off == NULL
            or q.len == NULL or q.held == NULL):
        return -1
    return 0


cdef void slow_close(SlowQueue* q) noexcept:
    free(q.arena)
    free(q.port)
    free(q.ns)
    free(q.reason)
    free(q.off)
    free(q.len)
    free(q.held)
    memset(q, 0, sizeof(SlowQueue))


cdef int slow_append(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """Queue one frame given as iovecs (a seg_sink: GSO segments land here too), with the
    queue's cur_port, cur_ns and cur_reason; a full queue, or a sending namespace holding
    its share already, is a counted drop."""
    cdef SlowQueue* q = <SlowQueue*>ctx
    cdef size_t total = 0
    cdef int j
    cdef int32_t ns = q.cur_ns
    for j in range(iovcnt):
        total += iov[j].iov_len
    if q.n >= q.cap or q.used + total > q.size:
        q.st.slow_overflow += 1
        if q.capture != NULL:
            capture_drop_iov(q.capture, q.cur_port, DROP_SLOW_OVERFLOW, iov, iovcnt, 0)
        return -1
    if 0 <= ns < q.max_ns:
        if q.held[ns] >= q.share:
            q.st.slow_ns_full += 1
            if q.capture != NULL:
                capture_drop_iov(q.capture, q.cur_port, DROP_SLOW_NS_FULL, iov, iovcnt, 0)
            return -1
        q.held[ns] += 1
    q.port[q.n] = q.cur_port
    q.ns[q.n] = ns
    q.reason[q.n] = q.cur_reason
    q.off[q.n] = <uint32_t>q.used
    q.len[q.n] = <uint32_t>total
    for j in range(iovcnt):
        memcpy(q.arena + q.used, iov[j].iov_base, iov[j].iov_len)
        q.used += iov[j].iov_len
    q.n += 1
    q.st.slow_queued += 1
    return 0


cdef list slow_take(SlowQueue* q):
    """The queued frames as [(port_id, reason, bytes)]; the queue is empty after."""
    cdef int k
    out = [(q.port[k], q.reason[k], (<char*>q.arena)[q.off[k]:q.off[k] + q.len[k]])
           for k in range(q.n)]
    for k in range(q.n):
        if 0 <= q.ns[k] < q.max_ns:
            q.held[q.ns[k]] = 0
    q.n = 0
    q.used = 0
    return out


# ---- the handoff ------------------------------------------------------------------------

cdef int handoff_open(SlowHandoff* h, int entries, size_t size, int max_ns, uint32_t share,
                      LoopStats* st) noexcept:
    """Both queues, the lock and the eventfd: 0, or -1 (handoff_close() frees what was)."""
    memset(h, 0, sizeof(SlowHandoff))
    h.efd = -1
    if (slow_open(&h.q[0], entries, size, max_ns, share, st) < 0
            or slow_open(&h.q[1], entries, size, max_ns, share, st) < 0):
        return -1
    h.lock = PyThread_allocate_lock()
    if h.lock == NULL:
        return -1
    h.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
    return 0 if h.efd >= 0 else -1


cdef void handoff_close(SlowHandoff* h) noexcept:
    slow_close(&h.q[0])
    slow_close(&h.q[1])
    if h.lock != NULL:
        PyThread_free_lock(h.lock)
        h.lock = NULL
    if h.efd >= 0:
        close(h.efd)
        h.efd = -1


cdef inline SlowQueue* handoff_begin(SlowHandoff* h) noexcept nogil:
    """The loop is about to queue frames: the filling queue, under the lock."""
    PyThread_acquire_lock(h.lock, WAIT_LOCK)
    return &h.q[h.fill]


cdef inline void handoff_end(SlowHandoff* h, bint tell) noexcept nogil:
    """Done queueing (handoff_begin); with ``tell``, make the eventfd readable if frames
    wait and the consumer was not told since its last swap."""
    cdef uint64_t one = 1
    if tell and h.q[h.fill].n and not h.told:
        write(h.efd, &one, 8)
        h.told = True
    PyThread_release_lock(h.lock)


cdef list handoff_take(SlowHandoff* h):
    """The consumer: every frame queued so far, as slow_take(); empties the eventfd first
    (see the top)."""
    cdef uint64_t drain
    cdef SlowQueue* full
    read(h.efd, &drain, 8)
    if not PyThread_acquire_lock(h.lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(h.lock, WAIT_LOCK)
    full = &h.q[h.fill]
    h.fill ^= 1
    h.told = False
    PyThread_release_lock(h.lock)
    return slow_take(full)


cdef inline int handoff_pending(SlowHandoff* h) noexcept nogil:
    """Frames in the filling queue (the thread that fills it asks)."""
    return h.q[h.fill].n
