# Dir24Fib: the longest-prefix-match table of one L2 scope (DIR-24-8).
#
# Why DIR-24-8: a lookup is one read of tbl24[dst >> 8] and, only for the rare
# /24s that hold longer prefixes, one more read in a 256-entry tbl8 group: at most
# two dependent memory accesses whatever the table size, which the batch loop can
# prefetch.  A full BGP table (~1M prefixes, almost all /24 or shorter) fits in the
# fixed 64 MB tbl24 plus a few thousand groups; tbl24 is allocated on the scope's
# first route (calloc: untouched pages cost nothing) and the tbl8 pool grows on
# demand, so the table never runs out of groups.  Tenant /32 addresses never enter
# here (they live in the demux hash), which is what exhausts the groups of
# LPM-only switches.
#
# Entry (uint32): 0 = no route; FIB_EXT | g = see tbl8 group g;
# otherwise (depth << 24) | (nexthop + 1), depth being the prefix length that wrote it,
# which is what lets insert and delete update only the entries a prefix owns.
# The default route (/0) is held apart and answers when tbl24 has nothing, so adding or
# removing it costs nothing instead of rewriting all 2^24 entries.
# The route set itself ((plen, prefix) -> nexthop) is kept in an AddrHash tagged by the
# prefix length: deleting a prefix rewrites its entries with the next shorter covering
# prefix.  FibTable (fib.pxi) holds one Dir24Fib per L2 scope.

cdef enum:
    FIB_EXT = 0x80000000
    FIB_NH_MASK = 0x00FFFFFF
    FIB_MAX_NEXTHOPS = 0x00FFFFFE
    TBL24_SIZE = 1 << 24

cdef struct FibView:
    const uint32_t* tbl24     # NULL: no route longer than /0 in this scope
    const uint32_t* tbl8
    uint32_t default_entry    # the /0 route's entry (0: none), kept out of tbl24


cdef inline uint32_t fib_entry_lookup(const FibView* f, uint32_t ip) noexcept nogil:
    """The entry for ``ip`` (0 if none); its next hop is (e & FIB_NH_MASK) - 1."""
    cdef uint32_t e
    if f.tbl24 == NULL:
        return f.default_entry
    e = f.tbl24[ip >> 8]
    if e & FIB_EXT:
        e = f.tbl8[((e & FIB_NH_MASK) << 8) | (ip & 0xFF)]
    return e if e else f.default_entry


cdef inline uint32_t fib_depth(uint32_t e) noexcept nogil:
    return (e >> 24) & 0x3F


cdef inline uint32_t prefix_mask(int plen) noexcept nogil:
    return 0 if plen == 0 else <uint32_t>(0xFFFFFFFFu << (32 - plen))


cdef inline bint _fib_owned(uint32_t e, int plen, bint replace_own) noexcept nogil:
    if replace_own:
        return e != 0 and <int>fib_depth(e) == plen
    return e == 0 or <int>fib_depth(e) <= plen


@cython.final
cdef class Dir24Fib:
    cdef uint32_t* tbl24
    cdef uint32_t* tbl8
    cdef Py_ssize_t groups_cap, groups_used
    cdef list free_groups
    cdef AddrHash routes
    cdef uint32_t default_entry

    def __cinit__(self):
        self.default_entry = 0
        self.tbl24 = NULL
        self.tbl8 = NULL
        self.groups_cap = 0
        self.groups_used = 0
        self.free_groups = []
        self.routes = AddrHash(4)

    def __dealloc__(self):
        free(self.tbl24)
        free(self.tbl8)

    def __len__(self):
        return len(self.routes)

    cdef FibView view(self) noexcept:
        cdef FibView v
        v.tbl24 = self.tbl24
        v.tbl8 = self.tbl8
        v.default_entry = self.default_entry
        return v

    cdef bint get_route(self, uint32_t prefix, int plen, uint32_t* nh) noexcept:
        cdef uint64_t v
        if self.routes.get(plen, 0, prefix, &v):
            nh[0] = <uint32_t>v
            return True
        return False

    cdef int _alloc_group(self, uint32_t fill) except -1:
        cdef Py_ssize_t g, j, cap
        cdef uint32_t* grown
        if self.free_groups:
            g = self.free_groups.pop()
        else:
            if self.groups_used == self.groups_cap:
                cap = max(64, self.groups_cap * 2)
                if cap > FIB_NH_MASK:
                    raise MemoryError("FIB: out of tbl8 groups")
                grown = <uint32_t*>realloc(self.tbl8, cap * 256 * sizeof(uint32_t))
                if grown == NULL:
                    raise MemoryError()
                self.tbl8, self.groups_cap = grown, cap
            g = self.groups_used
            self.groups_used += 1
        for j in range(256):
            self.tbl8[g * 256 + j] = fill
        return <int>g

    cdef void _write(self, uint32_t prefix, int plen, uint32_t new, bint replace_own) noexcept:
        """Write ``new`` over the entries of prefix/plen: over every entry of depth <= plen
        (insert), or only over the entries of depth == plen (delete: replace_own)."""
        cdef uint32_t i, j, e, g, start, n, k
        if plen <= 24:
            start = prefix >> 8
            n = 1u << (24 - plen)
            for i in range(start, start + n):
                e = self.tbl24[i]
                if e & FIB_EXT:
                    g = e & FIB_NH_MASK
                    for k in range(256):
                        e = self.tbl8[g * 256 + k]
                        if _fib_owned(e, plen, replace_own):
                            self.tbl8[g * 256 + k] = new
                elif _fib_owned(e, plen, replace_own):
                    self.tbl24[i] = new
        else:
            g = self.tbl24[prefix >> 8] & FIB_NH_MASK
            start = prefix & 0xFF
            n = 1u << (32 - plen)
            for k in range(start, start + n):
                e = self.tbl8[g * 256 + k]
                if _fib_owned(e, plen, replace_own):
                    self.tbl8[g * 256 + k] = new

    cdef int insert(self, uint32_t prefix, int plen, uint32_t nh) except -1:
        """Add or replace prefix/plen -> nh.  The caller has checked the arguments."""
        cdef uint32_t i, e
        cdef int g
        if plen == 0:
            self.routes.put(0, 0, 0, nh)
            self.default_entry = nh + 1
            return 0
        if self.tbl24 == NULL:
            self.tbl24 = <uint32_t*>calloc(TBL24_SIZE, sizeof(uint32_t))
            if self.tbl24 == NULL:
                raise MemoryError()
        if plen > 24:
            i = prefix >> 8
            e = self.tbl24[i]
            if not (e & FIB_EXT):
                g = self._alloc_group(e)
                self.tbl24[i] = FIB_EXT | <uint32_t>g
        self.routes.put(plen, 0, prefix, nh)
        self._write(prefix, plen, (<uint32_t>plen << 24) | (nh + 1), False)
        return 0

    cdef int remove(self, uint32_t prefix, int plen) except -1:
        """Remove prefix/plen (present: the caller checked); entries fall back to the
        longest shorter prefix covering it."""
        cdef uint32_t repl = 0, nh, i, e, g, k
        cdef int l
        cdef bint collapsible
        if plen == 0:
            self.routes.delete(0, 0, 0)
            self.default_entry = 0
            return 0
        for l in range(plen - 1, 0, -1):
            if self.get_route(prefix & prefix_mask(l), l, &nh):
                repl = (<uint32_t>l << 24) | (nh + 1)
                break
        self.routes.delete(plen, 0, prefix)
        self._write(prefix, plen, repl, True)
        if plen > 24:
            # the group goes back to tbl24 once no prefix longer than /24 remains in it
            i = prefix >> 8
            g = self.tbl24[i] & FIB_NH_MASK
            collapsible = True
            for k in range(256):
                e = self.tbl8[g * 256 + k]
                if e != self.tbl8[g * 256] or fib_depth(e) > 24:
                    collapsible = False
                    break
            if collapsible:
                self.tbl24[i] = self.tbl8[g * 256]
                self.free_groups.append(g)
        if len(self.routes) == (1 if self.default_entry else 0):
            free(self.tbl24)
            free(self.tbl8)
            self.tbl24, self.tbl8 = NULL, NULL
            self.groups_cap = self.groups_used = 0
            self.free_groups = []
        return 0

    def routes_list(self):
        """[(prefix, plen, nexthop)] (control plane and tests)."""
        return sorted(((prefix, plen, nh) for plen, prefix, nh in self.routes.items()),
                      key=lambda r: (r[1], r[0]))
