# The slow queue: frames the batch function handed to the slow path (ARP, ICMP, unknown
# neighbours, ...), copied out of the batch into an arena before the batch is reused,
# one entry per frame, bounded in entries and bytes; PacketLoop.slow_frames() hands them
# to Python and empties it.  A full queue is a counted drop (slow_overflow).  A frame is
# queued as the slow path wants it, as on a wire: egress.pxi completes a partial checksum
# and cuts a GSO super-frame into its segments on the way in (slow_append is a seg_sink).


cdef struct SlowQueue:
    uint8_t* arena
    size_t size, used
    int32_t* port
    uint8_t* reason
    uint32_t* off
    uint32_t* len
    int n, cap
    LoopStats* st
    int32_t cur_port            # port and reason of the frame being queued
    uint8_t cur_reason


cdef int slow_open(SlowQueue* q, int entries, size_t size, LoopStats* st) noexcept:
    """Allocate the queue: 0, or -1 (out of memory; slow_close() frees what was)."""
    memset(q, 0, sizeof(SlowQueue))
    q.size, q.cap, q.st = size, entries, st
    q.arena = <uint8_t*>malloc(size)
    q.port = <int32_t*>malloc(entries * sizeof(int32_t))
    q.reason = <uint8_t*>malloc(entries)
    q.off = <uint32_t*>malloc(entries * sizeof(uint32_t))
    q.len = <uint32_t*>malloc(entries * sizeof(uint32_t))
    if q.arena == NULL or q.port == NULL or q.reason == NULL or q.off == NULL or q.len == NULL:
        return -1
    return 0


cdef void slow_close(SlowQueue* q) noexcept:
    free(q.arena)
    free(q.port)
    free(q.reason)
    free(q.off)
    free(q.len)
    memset(q, 0, sizeof(SlowQueue))


cdef int slow_append(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """Queue one frame given as iovecs (a seg_sink: GSO segments land here too), with the
    queue's cur_port and cur_reason; a full queue is a counted drop (slow_overflow)."""
    cdef SlowQueue* q = <SlowQueue*>ctx
    cdef size_t total = 0
    cdef int j
    for j in range(iovcnt):
        total += iov[j].iov_len
    if q.n >= q.cap or q.used + total > q.size:
        q.st.slow_overflow += 1
        return -1
    q.port[q.n] = q.cur_port
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
    q.n = 0
    q.used = 0
    return out
