# SlowShares: each namespace's share of the slow path (issue 14).  A token bucket per
# sending namespace and share (SLOW_SHARES of reasons.py: arp, icmp, igmp, resolve,
# other), or per ingress port for a share that says so (igmp: each uplink its own); the
# packet loop asks it before it copies a slow-path frame into the slow queue
# (loop.pxi), so a frame over its sender's share costs a few instructions, never Python:
# one tenant flooding the switch's address with pings or ARP spends its own share and
# the others' ARP and ICMP still get through.  What is refused is counted per namespace
# and share (Datapath.counters(): "slow_refused").
#
# Memory: fixed C arrays sized by the namespace and port id spaces, allocated once; a
# namespace's buckets and counts are reset when its id is created again (clear_ns), a
# port's when it is attached (clear_port): nothing is kept for what is gone.  A bucket
# that was never used starts full.  Rules (rate, burst per share; rate 0: no limit) are
# written under the batch lock (Datapath.set_slow_share).
from libc.stdint cimport int64_t


cdef struct ShareBucket:
    double tokens
    int64_t stamp               # ns of the last refill; 0: never used (full)


cdef struct ShareRule:
    double per_ns               # tokens per nanosecond; 0: no limit
    double burst


cdef struct ShareView:
    ShareBucket* ns             # size_ns * NSHARES
    ShareBucket* port           # size_ports * NSHARES (the per-port shares')
    uint64_t* refused           # size_ns * NSHARES
    const ShareRule* rule       # NSHARES
    int32_t size_ns, size_ports


@cython.final
cdef class SlowShares:
    cdef ShareView v
    cdef ShareRule rules[NSHARES]

    def __cinit__(self, int size_ns, int size_ports):
        self.v.ns = <ShareBucket*>calloc(<size_t>size_ns * NSHARES, sizeof(ShareBucket))
        self.v.port = <ShareBucket*>calloc(<size_t>size_ports * NSHARES, sizeof(ShareBucket))
        self.v.refused = <uint64_t*>calloc(<size_t>size_ns * NSHARES, sizeof(uint64_t))
        if self.v.ns == NULL or self.v.port == NULL or self.v.refused == NULL:
            raise MemoryError()
        memset(self.rules, 0, sizeof(self.rules))
        self.v.rule, self.v.size_ns, self.v.size_ports = self.rules, size_ns, size_ports

    def __dealloc__(self):
        free(self.v.ns)
        free(self.v.port)
        free(self.v.refused)

    cdef ShareView* view(self) noexcept nogil:
        return &self.v

    cdef void set_rule(self, int share, double rate, double burst) noexcept:
        """``rate`` frames per second (0: no limit), ``burst`` saved up; every bucket of
        the share starts again full."""
        cdef int32_t k
        self.rules[share].per_ns = rate / 1e9
        self.rules[share].burst = burst
        for k in range(self.v.size_ns):
            self.v.ns[<size_t>k * NSHARES + share].stamp = 0
        for k in range(self.v.size_ports):
            self.v.port[<size_t>k * NSHARES + share].stamp = 0

    cdef tuple rule(self, int share):
        return (self.rules[share].per_ns * 1e9, self.rules[share].burst)

    cdef void clear_ns(self, int ns_id) noexcept:
        memset(&self.v.ns[<size_t>ns_id * NSHARES], 0, NSHARES * sizeof(ShareBucket))
        memset(&self.v.refused[<size_t>ns_id * NSHARES], 0, NSHARES * sizeof(uint64_t))

    cdef void clear_port(self, int port_id) noexcept:
        memset(&self.v.port[<size_t>port_id * NSHARES], 0, NSHARES * sizeof(ShareBucket))

    cdef dict refused(self, int ns_id):
        cdef const uint64_t* r = &self.v.refused[<size_t>ns_id * NSHARES]
        return {name: int(r[k]) for k, name in enumerate(SHARE_NAMES)}


cdef inline bint share_admit(ShareView* v, int32_t ns, int32_t port, uint8_t share,
                             int64_t now) noexcept nogil:
    """May a frame of ``share`` from namespace ``ns`` (port ``port``) go to the slow path
    now?  Takes a token; a refusal is counted for ``ns``."""
    cdef const ShareRule* rule = &v.rule[share]
    cdef ShareBucket* b
    cdef double tokens
    if rule.per_ns <= 0 or ns < 0 or ns >= v.size_ns:
        return True
    if share_per_port(share):
        if port < 0 or port >= v.size_ports:
            return True
        b = &v.port[<size_t>port * NSHARES + share]
    else:
        b = &v.ns[<size_t>ns * NSHARES + share]
    if b.stamp == 0:
        tokens = rule.burst
    else:
        tokens = b.tokens + <double>(now - b.stamp) * rule.per_ns
        if tokens > rule.burst:
            tokens = rule.burst
    b.stamp = now
    if tokens >= 1.0:
        b.tokens = tokens - 1.0
        return True
    b.tokens = tokens
    v.refused[<size_t>ns * NSHARES + share] += 1
    return False
