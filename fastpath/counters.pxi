# Counters: what process() charges per frame -- traffic per port and per namespace
# (TRAFFIC_COUNTERS of reasons.py: rx/tx packets and bytes), and each reason switch-wide
# and per sending namespace -- as C arrays indexed by id, and the per-packet functions
# that charge them.  Reset when a port is attached to another namespace or a namespace id
# is created again; read by Datapath.counters().


cdef struct CounterView:
    uint64_t* port              # size_ports * NCOUNTERS
    uint64_t* ns                # size_ns * NCOUNTERS
    uint64_t* reason            # REASON_COUNT
    uint64_t* ns_reason         # size_ns * REASON_COUNT (charged to the sending namespace)


@cython.final
cdef class Counters:
    cdef int size_ns, size_ports
    cdef CounterView c

    def __cinit__(self, int size_ns, int size_ports):
        self.size_ns, self.size_ports = size_ns, size_ports
        self.c.port = <uint64_t*>calloc(<size_t>size_ports * NCOUNTERS, sizeof(uint64_t))
        self.c.ns = <uint64_t*>calloc(<size_t>size_ns * NCOUNTERS, sizeof(uint64_t))
        self.c.reason = <uint64_t*>calloc(REASON_COUNT, sizeof(uint64_t))
        self.c.ns_reason = <uint64_t*>calloc(<size_t>size_ns * REASON_COUNT, sizeof(uint64_t))
        if self.c.port == NULL or self.c.ns == NULL or self.c.reason == NULL or self.c.ns_reason == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.c.port)
        free(self.c.ns)
        free(self.c.reason)
        free(self.c.ns_reason)

    cdef CounterView view(self) noexcept nogil:
        return self.c

    cdef void clear_port(self, int port_id) noexcept:
        memset(&self.c.port[<size_t>port_id * NCOUNTERS], 0, NCOUNTERS * sizeof(uint64_t))

    cdef void clear_ns(self, int ns_id) noexcept:
        memset(&self.c.ns[<size_t>ns_id * NCOUNTERS], 0, NCOUNTERS * sizeof(uint64_t))
        memset(&self.c.ns_reason[<size_t>ns_id * REASON_COUNT], 0, REASON_COUNT * sizeof(uint64_t))

    cdef dict traffic(self, const uint64_t* row):
        return {name: int(row[k]) for k, name in enumerate(TRAFFIC_COUNTER_NAMES)}

    cdef dict port_traffic(self, int port_id):
        return self.traffic(&self.c.port[<size_t>port_id * NCOUNTERS])

    cdef dict ns_traffic(self, int ns_id):
        """Its traffic and, under "reasons", what it sent was charged with."""
        cdef const uint64_t* r = &self.c.ns_reason[<size_t>ns_id * REASON_COUNT]
        out = self.traffic(&self.c.ns[<size_t>ns_id * NCOUNTERS])
        out["reasons"] = {name: int(r[code]) for code, name in NAMED_REASONS}
        return out

    cdef dict reasons(self):
        return {name: int(self.c.reason[code]) for code, name in NAMED_REASONS}


# (code, name) of every reason but "none", in code order: the keys of the reason counters
NAMED_REASONS = tuple(sorted((code, name) for code, name in REASON_NAMES.items() if code))


cdef inline uint8_t charge(const CounterView* c, int32_t ns, uint8_t reason) noexcept nogil:
    """Count a drop or slow-path reason (ns: the sender, -1 if none); returns it."""
    c.reason[reason] += 1
    if ns >= 0:
        c.ns_reason[<size_t>ns * REASON_COUNT + reason] += 1
    return reason


cdef inline void charge_n(const CounterView* c, int32_t ns, uint8_t reason, uint32_t n) noexcept nogil:
    c.reason[reason] += n
    c.ns_reason[<size_t>ns * REASON_COUNT + reason] += n


cdef inline void count_rx(const CounterView* c, int32_t port, int32_t ns, uint32_t nbytes) noexcept nogil:
    cdef uint64_t* pc = &c.port[<size_t>port * NCOUNTERS]
    cdef uint64_t* nc = &c.ns[<size_t>ns * NCOUNTERS]
    pc[TRAFFIC_RX_PACKETS] += 1
    pc[TRAFFIC_RX_BYTES] += nbytes
    nc[TRAFFIC_RX_PACKETS] += 1
    nc[TRAFFIC_RX_BYTES] += nbytes


cdef inline void count_tx(const CounterView* c, int32_t port, int32_t ns, uint32_t nbytes) noexcept nogil:
    cdef uint64_t* pc = &c.port[<size_t>port * NCOUNTERS]
    cdef uint64_t* nc = &c.ns[<size_t>ns * NCOUNTERS]
    pc[TRAFFIC_TX_PACKETS] += 1
    pc[TRAFFIC_TX_BYTES] += nbytes
    nc[TRAFFIC_TX_PACKETS] += 1
    nc[TRAFFIC_TX_BYTES] += nbytes
