# PortTable: per port id, the namespace it is attached to, the switch's MAC on it, the
# MAC of the endpoint behind it (learnt by process() from the frames the port sends, or
# set by the slow path) and whether the switch serves it by DHCP, as C arrays indexed by
# id; plus which ports each namespace has.
# MACs are the 48-bit ints of the wire bytes (little-endian load, as process.pxi compares).


cdef struct PortView:
    const int32_t* ns           # -1: no such port
    const uint64_t* mac         # the switch's MAC on the port
    uint64_t* peer              # the endpoint's MAC (0: unknown); process() learns it
    const uint8_t* dhcp         # 1: the switch answers DHCP there (client messages: slow path)


@cython.final
cdef class PortTable:
    cdef readonly int size
    cdef int32_t* ns
    cdef uint64_t* mac
    cdef uint64_t* peer
    cdef uint8_t* dhcp
    cdef dict of_ns                 # namespace -> set of its port ids

    def __cinit__(self, int size):
        cdef int k
        self.size = size
        self.ns = <int32_t*>malloc(size * sizeof(int32_t))
        self.mac = <uint64_t*>calloc(size, sizeof(uint64_t))
        self.peer = <uint64_t*>calloc(size, sizeof(uint64_t))
        self.dhcp = <uint8_t*>calloc(size, sizeof(uint8_t))
        if self.ns == NULL or self.mac == NULL or self.peer == NULL or self.dhcp == NULL:
            raise MemoryError()
        for k in range(size):
            self.ns[k] = -1
        self.of_ns = {}

    def __dealloc__(self):
        free(self.ns)
        free(self.mac)
        free(self.peer)
        free(self.dhcp)

    cdef PortView view(self) noexcept nogil:
        cdef PortView v
        v.ns, v.mac, v.peer, v.dhcp = self.ns, self.mac, self.peer, self.dhcp
        return v

    cdef int check(self, port_id) except -1:
        if not isinstance(port_id, int) or not 0 <= port_id < self.size:
            raise InvalidArgument(f"port id {port_id!r} is not in 0..{self.size - 1}")
        return port_id

    cdef int existing(self, port_id) except -1:
        self.check(port_id)
        if self.ns[port_id] < 0:
            raise NotFound(f"port {port_id} does not exist")
        return port_id

    cdef ports_of(self, int ns_id):
        """The ports of a namespace, sorted by id."""
        return sorted(self.of_ns.get(ns_id, ()))

    cdef int attach(self, int port_id, int ns_id) except -1:
        """Attach a free port to ``ns_id`` (its peer unknown)."""
        self.ns[port_id] = ns_id
        self.peer[port_id] = 0
        self.of_ns.setdefault(ns_id, set()).add(port_id)
        return 0

    cdef int detach(self, int port_id) except -1:
        """Take the port from its namespace; returns that namespace."""
        cdef int ns_id = self.ns[port_id]
        self.of_ns[ns_id].discard(port_id)
        self.ns[port_id] = -1
        self.mac[port_id] = 0
        self.peer[port_id] = 0
        self.dhcp[port_id] = 0
        return ns_id

    cdef bytes_of(self, uint64_t m):
        return None if m == 0 else int(m).to_bytes(6, "little")
