# NextHopTable: the next hops routes point at -- (egress port, gateway address; 0 = the
# destination is on-link) -- shared by every route of every scope that uses the same pair
# and reference-counted, so a FIB entry holds a small index instead of the pair.  One
# instance per address family (IPv6: issue 15), written once over the entry type; the
# entries grow by doubling (realloc) and a released index is reused.


cdef struct NextHop4:           # 8 bytes: port and gateway in one load
    int32_t port
    uint32_t gw

cdef struct NextHop6:
    int32_t port
    uint32_t _pad
    uint64_t gw_hi
    uint64_t gw_lo

cdef enum:
    NEXTHOPS_MIN = 64


@cython.final
cdef class NextHopTable:
    cdef readonly int family
    cdef readonly uint32_t limit    # most next hops an entry index can name
    cdef size_t entry_size
    cdef void* entries              # NextHop4 / NextHop6
    cdef uint32_t cap
    cdef dict index                 # (port, gateway) -> next hop
    cdef list refs                  # next hop -> routes using it
    cdef list free_ids

    def __cinit__(self, int family, uint32_t limit):
        if family != 4 and family != 6:
            raise InvalidArgument(f"family must be 4 or 6, not {family}")
        self.family, self.limit = family, limit
        self.entry_size = sizeof(NextHop4) if family == 4 else sizeof(NextHop6)
        self.cap = NEXTHOPS_MIN
        self.entries = calloc(self.cap, self.entry_size)
        if self.entries == NULL:
            raise MemoryError()
        self.index, self.refs, self.free_ids = {}, [], []

    def __dealloc__(self):
        free(self.entries)

    cdef const void* view(self) noexcept nogil:
        return self.entries

    cdef uint32_t acquire(self, int port_id, gateway) except? 0xFFFFFFFF:
        """The next hop (port, gateway), made if new; the caller's route now holds it."""
        key = (port_id, gateway)
        nh = self.index.get(key)
        if nh is None:
            nh = self.free_ids.pop() if self.free_ids else self._new_id()
            self.index[key] = nh
            self._write(nh, port_id, gateway)
        self.refs[nh] += 1
        return nh

    cdef int release(self, uint32_t nh) except -1:
        """A route let go of ``nh``; the last one frees it."""
        self.refs[nh] -= 1
        if self.refs[nh] == 0:
            del self.index[(self.port_of(nh), self.gateway_of(nh))]
            self.free_ids.append(nh)
        return 0

    cdef uint32_t _new_id(self) except? 0xFFFFFFFF:
        cdef uint32_t nh = len(self.refs), cap
        cdef void* grown
        if nh >= self.limit:
            raise MemoryError("FIB: out of next-hop indices")
        if nh >= self.cap:
            cap = self.cap * 2
            grown = realloc(self.entries, cap * self.entry_size)
            if grown == NULL:
                raise MemoryError("FIB: next hops")
            self.entries, self.cap = grown, cap
        self.refs.append(0)
        return nh

    cdef int _write(self, uint32_t nh, int port_id, gateway) except -1:
        cdef NextHop4* e4
        cdef NextHop6* e6
        if self.family == 4:
            e4 = &(<NextHop4*>self.entries)[nh]
            e4.port, e4.gw = port_id, gateway
        else:
            e6 = &(<NextHop6*>self.entries)[nh]
            e6.port, e6.gw_hi, e6.gw_lo = port_id, gateway >> 64, gateway & 0xFFFFFFFFFFFFFFFF
        return 0

    cdef int port_of(self, uint32_t nh) noexcept:
        if self.family == 4:
            return (<NextHop4*>self.entries)[nh].port
        return (<NextHop6*>self.entries)[nh].port

    cdef gateway_of(self, uint32_t nh):
        cdef NextHop6* e6
        if self.family == 4:
            return int((<NextHop4*>self.entries)[nh].gw)
        e6 = &(<NextHop6*>self.entries)[nh]
        return (int(e6.gw_hi) << 64) | e6.gw_lo
