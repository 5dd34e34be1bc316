# CaptureRing: the switch-side capture (`tapswitch ctl capture`).  Python selects ports
# (Datapath.capture_select: per port, which of received / sent / dropped frames); while
# any is selected, process_locked() copies the selected frames of each batch into a
# bounded arena: the received ones before the batch is decided (as they came in), the
# sent ones and the drops (with their reason) after.  With nothing selected the batch
# pays one branch, nothing per frame.  A full ring is a counted loss of capture copies
# (overflow), never a slower or lost forward.  Python takes the copies with
# Datapath.capture_take() under the batch lock; pyctl/daemon/capture.py hands them out.
#
# The packet loop's own drops -- a refused virtio-net header or oversized read (the
# ingress port's), a failed write, a port the loop lacks, a fan-out copy over its port's
# MTU, a super-frame that cannot be cut (the egress port's), a full slow queue or a share
# of the slow path spent (the ingress port's) -- are copied where they are counted, with
# the capture code of their counter (fastpath/reasons.py: LOOP_DROPS), by capture_drop():
# one branch on ``on`` per dropped frame, under the batch lock as the rest.
from libc.stdint cimport int64_t
from posix.uio cimport iovec
from libc.stdlib cimport calloc
from posix.time cimport clock_gettime, timespec
from posix.time cimport CLOCK_REALTIME

cdef enum:
    CAP_RX = 1          # selection flags per port, and an entry's direction
    CAP_TX = 2
    CAP_DROP = 4
    CAP_SNAP = 65535    # bytes kept of one frame (a GSO super-frame is longer)


cdef struct CaptureRing:
    bint on
    uint8_t* want                # max_ports selection flags (CAP_*)
    int max_ports
    uint8_t* arena
    size_t size, used
    int32_t* port
    uint8_t* dir
    uint8_t* reason
    uint32_t* off
    uint32_t* caplen
    uint32_t* origlen
    int64_t* ts                  # ns since the epoch (one clock read per batch)
    int n, cap
    uint64_t copied, overflow


cdef int capture_open(CaptureRing* r, int max_ports, int entries, size_t size) noexcept:
    """Allocate (selection empty, so off): 0, or -1 (out of memory; capture_close frees)."""
    memset(r, 0, sizeof(CaptureRing))
    r.max_ports, r.cap, r.size = max_ports, entries, size
    r.want = <uint8_t*>calloc(max_ports, 1)
    r.arena = <uint8_t*>malloc(size)
    r.port = <int32_t*>malloc(entries * sizeof(int32_t))
    r.dir = <uint8_t*>malloc(entries)
    r.reason = <uint8_t*>malloc(entries)
    r.off = <uint32_t*>malloc(entries * sizeof(uint32_t))
    r.caplen = <uint32_t*>malloc(entries * sizeof(uint32_t))
    r.origlen = <uint32_t*>malloc(entries * sizeof(uint32_t))
    r.ts = <int64_t*>malloc(entries * sizeof(int64_t))
    if (r.want == NULL or r.arena == NULL or r.port == NULL or r.dir == NULL or r.reason == NULL
            or r.off == NULL or r.caplen == NULL or r.origlen == NULL or r.ts == NULL):
        return -1
    return 0


cdef void capture_close(CaptureRing* r) noexcept:
    free(r.want)
    free(r.arena)
    free(r.port)
    free(r.dir)
    free(r.reason)
    free(r.off)
    free(r.caplen)
    free(r.origlen)
    free(r.ts)
    memset(r, 0, sizeof(CaptureRing))


cdef inline int64_t _wall_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef inline bint _wants(CaptureRing* r, int32_t port, uint8_t flag) noexcept nogil:
    return 0 <= port < r.max_ports and (r.want[port] & flag) != 0


cdef uint8_t* _capture_entry(CaptureRing* r, int32_t port, uint8_t direction, uint8_t reason,
                             uint32_t n, int64_t ts) noexcept nogil:
    """Room for a copy of an ``n``-byte frame (its first CAP_SNAP bytes), its entry filled:
    where to copy them; NULL when the ring is full (counted in overflow)."""
    cdef uint32_t keep = n if n < CAP_SNAP else CAP_SNAP
    cdef uint8_t* at
    if r.n >= r.cap or r.used + keep > r.size:
        r.overflow += 1
        return NULL
    r.port[r.n], r.dir[r.n], r.reason[r.n] = port, direction, reason
    r.off[r.n], r.caplen[r.n], r.origlen[r.n], r.ts[r.n] = <uint32_t>r.used, keep, n, ts
    at = r.arena + r.used
    r.used += keep
    r.n += 1
    r.copied += 1
    return at


cdef void _capture_copy(CaptureRing* r, int32_t port, uint8_t direction, uint8_t reason,
                        const uint8_t* eth, const uint8_t* f, uint32_t n, int64_t ts) noexcept nogil:
    """One copy (``eth``: another Ethernet header in front of ``f``'s payload, a fan-out
    copy's); a full ring counts it in overflow."""
    cdef uint32_t keep = n if n < CAP_SNAP else CAP_SNAP
    cdef uint8_t* at = _capture_entry(r, port, direction, reason, n, ts)
    if at == NULL:
        return
    if eth != NULL and keep >= ETH_HLEN:
        memcpy(at, eth, ETH_HLEN)
        memcpy(at + ETH_HLEN, f + ETH_HLEN, keep - ETH_HLEN)
    else:
        memcpy(at, f, keep)


cdef void capture_drop_iov(CaptureRing* r, int32_t port, uint8_t code, const iovec* iov,
                           int cnt, size_t skip) noexcept nogil:
    """A frame the packet loop dropped (see the top), given as iovecs whose first ``skip``
    bytes are not the frame's (a virtio-net header): copied with the capture code ``code``
    when ``port``'s drops are selected (``r`` NULL: no ring, nothing)."""
    cdef size_t n = 0, left, take
    cdef uint8_t* at
    cdef const uint8_t* src
    cdef int j
    if r == NULL or not r.on or not _wants(r, port, CAP_DROP):
        return
    for j in range(cnt):
        n += iov[j].iov_len
    n = n - skip if n > skip else 0
    at = _capture_entry(r, port, CAP_DROP, code, <uint32_t>n, _wall_ns())
    if at == NULL:
        return
    left = n if n < CAP_SNAP else CAP_SNAP
    for j in range(cnt):
        src = <const uint8_t*>iov[j].iov_base
        take = iov[j].iov_len
        if skip >= take:
            skip -= take
            continue
        src += skip
        take -= skip
        skip = 0
        if take > left:
            take = left
        memcpy(at, src, take)
        at += take
        left -= take
        if left == 0:
            return


cdef void capture_drop(CaptureRing* r, int32_t port, uint8_t code, const uint8_t* eth,
                       const uint8_t* f, uint32_t n) noexcept nogil:
    """``capture_drop_iov`` of a frame in one piece (``eth``: a fan-out copy's own Ethernet
    header in front of ``f``'s payload)."""
    cdef iovec iov[2]
    if r == NULL or not r.on:
        return
    if eth != NULL and n >= ETH_HLEN:
        iov[0].iov_base, iov[0].iov_len = <void*>eth, ETH_HLEN
        iov[1].iov_base, iov[1].iov_len = <void*>(f + ETH_HLEN), n - ETH_HLEN
        capture_drop_iov(r, port, code, iov, 2, 0)
    else:
        iov[0].iov_base, iov[0].iov_len = <void*>f, n
        capture_drop_iov(r, port, code, iov, 1, 0)


cdef void capture_received(CaptureRing* r, Batch batch) noexcept nogil:
    """The batch's frames from selected ports, before they are decided (and rewritten)."""
    cdef Py_ssize_t i
    cdef int64_t ts = _wall_ns()
    for i in range(batch._count):
        if _wants(r, batch.c_port[i], CAP_RX):
            _capture_copy(r, batch.c_port[i], CAP_RX, 0, NULL, batch.c_buf + batch.c_offset[i],
                          batch.c_length[i], ts)


cdef void capture_decided(CaptureRing* r, Batch batch) noexcept nogil:
    """After the batch is decided: frames sent to selected ports (each fan-out copy with
    its own Ethernet header), and the drops of selected ports with their reason."""
    cdef Py_ssize_t i, k
    cdef uint8_t v
    cdef const uint8_t* f
    cdef int64_t ts = _wall_ns()
    for i in range(batch._count):
        v = batch.c_verdict[i]
        f = batch.c_buf + batch.c_offset[i]
        if v == VERDICT_FORWARD:
            if _wants(r, batch.c_out_port[i], CAP_TX):
                _capture_copy(r, batch.c_out_port[i], CAP_TX, 0, NULL, f, batch.c_length[i], ts)
        elif v == VERDICT_FANOUT:
            for k in range(batch.c_fanout_first[i], batch.c_fanout_first[i] + batch.c_fanout_n[i]):
                if _wants(r, batch.c_fanout_port[k], CAP_TX):
                    _capture_copy(r, batch.c_fanout_port[k], CAP_TX, 0,
                                  batch.c_fanout_eth + k * ETH_HLEN, f, batch.c_length[i], ts)
        elif v == VERDICT_DROP:
            if _wants(r, batch.c_port[i], CAP_DROP):
                _capture_copy(r, batch.c_port[i], CAP_DROP, batch.c_reason[i], NULL, f,
                              batch.c_length[i], ts)


cdef list capture_take(CaptureRing* r):
    """The copies as [(port, direction, reason, ts_ns, origlen, bytes)]; empty after."""
    cdef int k
    out = [(r.port[k], r.dir[k], r.reason[k], r.ts[k], r.origlen[k],
            (<char*>r.arena)[r.off[k]:r.off[k] + r.caplen[k]]) for k in range(r.n)]
    r.n = 0
    r.used = 0
    return out
