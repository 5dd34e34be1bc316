# RouteCache: each namespace's own direct-mapped cache of routed destinations -> (egress
# port, next-hop MAC), so a frame of a flow seen before costs one slot read instead of the
# FIB and neighbour lookups.  One instance per address family (the IPv6 one: RcEntry6), written
# once over the entry type; ``size`` slots per namespace, indexed by a hash of the
# destination.  An entry is valid while its generation is its scope's (namespaces.pxi):
# whatever changes the scope's routes, neighbours, addresses or ports bumps it, so a stale
# entry is never used and nothing has to be searched out.  Zeroed as the pages are first
# touched (includes/memory.pxd): the pages of namespaces that never route stay untouched
# (a zero generation is an empty slot).


cdef struct RcEntry4:           # 16 bytes, 4 per cache line
    uint32_t dst
    uint32_t gen                # the scope generation it was filled under; 0 = empty
    uint64_t hop                # next-hop MAC (48 bits, wire order) | egress port << 48

cdef struct RcEntry6:           # 32 bytes
    uint64_t dst_hi
    uint64_t dst_lo
    uint32_t gen
    uint32_t _pad
    uint64_t hop

cdef struct RouteCacheView:
    void* entries               # RcEntry4 / RcEntry6: namespaces * size
    uint32_t size               # slots per namespace (a power of two)
    uint32_t mask               # size - 1


cdef inline uint32_t rc_index(uint32_t dst, uint32_t mask) noexcept nogil:
    return ((dst * 0x9E3779B1u) >> 16) & mask


cdef inline RcEntry4* rc4_slot(const RouteCacheView* rc, int32_t ns, uint32_t dst) noexcept nogil:
    """The slot of namespace ns that holds dst if it is cached."""
    return &(<RcEntry4*>rc.entries)[<size_t>ns * rc.size + rc_index(dst, rc.mask)]


cdef inline RcEntry6* rc6_slot(const RouteCacheView* rc, int32_t ns, uint64_t hi, uint64_t lo) noexcept nogil:
    """The slot of namespace ns that holds hi:lo if it is cached (the low half first:
    it is what tells a subnet's hosts apart)."""
    cdef uint64_t x = lo ^ (lo >> 29) ^ (hi * 0x9E3779B97F4A7C15ULL)
    return &(<RcEntry6*>rc.entries)[<size_t>ns * rc.size + rc_index(<uint32_t>(x ^ (x >> 32)), rc.mask)]


@cython.final
cdef class RouteCache:
    cdef readonly int family, namespaces, size
    cdef size_t entry_size
    cdef void* entries

    def __cinit__(self, int family, int namespaces, int size):
        if family != 4 and family != 6:
            raise InvalidArgument(f"family must be 4 or 6, not {family}")
        if size < 1 or size & (size - 1) or size > 1 << 16:
            raise InvalidArgument("route_cache_size must be a power of two up to 65536")
        self.family, self.namespaces, self.size = family, namespaces, size
        self.entry_size = sizeof(RcEntry4) if family == 4 else sizeof(RcEntry6)
        self.entries = ts_table_zalloc(<size_t>namespaces * size * self.entry_size)
        if self.entries == NULL:
            raise MemoryError()

    def __dealloc__(self):
        ts_table_free(self.entries, <size_t>self.namespaces * self.size * self.entry_size)

    cdef RouteCacheView view(self) noexcept nogil:
        cdef RouteCacheView v
        v.entries, v.size, v.mask = self.entries, self.size, self.size - 1
        return v

    cdef void clear_ns(self, int ns_id) noexcept:
        memset(<char*>self.entries + <size_t>ns_id * self.size * self.entry_size, 0,
               self.size * self.entry_size)

    cdef void clear(self) noexcept:
        memset(self.entries, 0, <size_t>self.namespaces * self.size * self.entry_size)
