# Lpm6Fib: the IPv6 longest-prefix-match table of one L2 scope.
#
# The structure: a hash per prefix length (one AddrHash(6) tagged by the length), searched
# longest first -- but only over the lengths that occur in the destination's own /24
# block.  A direct table indexed by the address's first 24 bits (``blocks``) names, per
# block, the set of prefix lengths longer than /24 present inside it (a bitmap of lengths
# 25..128, kept once per distinct set in ``sets``); prefixes of /24 and shorter (the
# default route among them) are a DIR-24 of the address's top 32 bits (dir24.pxi's
# Dir24Fib, fed /0../24 only, so it never needs a tbl8).  A lookup reads one block entry,
# probes the hash at each length of the block's set from the longest down, and stops at
# the first hit; a block without longer prefixes answers from the DIR-24 at once.
#
# Why this and not the others (DPDK's lpm6, a DIR-24-8-8-... multibit trie; the kernel's
# fib6, a binary radix tree; Waldvogel's binary search on lengths with markers):
# - Memory follows the routes.  A multibit trie spends a 256-entry group per 8 bits of
#   every distinct path: 1M scattered /48s need ~3 groups each (GBs), and DPDK makes the
#   operator size the group pool up front.  Here a route is one 32-byte hash slot (load
#   <= 1/2) plus its share of the block table (64 MB of address space, calloc'd: only the
#   pages of blocks that hold routes are ever touched).
# - Few probes where it matters.  Tenant networks (fd00::/8 ULAs, /48 sites, /64
#   subnets, /128 hosts) and even a full BGP table put only a few lengths in any one /24
#   block, so a lookup is the block read plus one to a few probes; the global set of
#   lengths, which a plain "bitmap of lengths present" would search, is much larger.  A
#   radix tree walks up to 128 nodes; a multibit trie 1 + (length - 24) / 8 dependent
#   reads for every lookup (6 for a /64).
# - Cheap, local updates.  Adding or removing a prefix longer than /24 touches its hash
#   slot, a count, and at most its block's set id; Waldvogel's markers must be recomputed
#   when a shorter prefix changes the best match of markers below it, and the search
#   tree over lengths is rebuilt when a length appears or goes.
# - The batch loop prefetches the block entry (and the DIR-24 entry) of each frame in
#   pass 1, as it does tbl24 for IPv4; the per-namespace route cache (route_cache.pxi)
#   answers repeated destinations before any of this.
# The cost: a block whose set holds many lengths (a /24 with prefixes of ten lengths) pays
# a probe per length longer than the match.  The hash probes are the same slot_find() as
# the demux's.
#
# The counts behind the sets ((length, block) -> number of prefixes) are an AddrHash(4)
# too, so no Python object exists per route.  FibTable (fib.pxi) holds one Lpm6Fib per L2
# scope that has IPv6 routes.

from fastpath.includes.compiler cimport TS_PREFETCH

cdef struct LenSet:
    uint64_t hi                 # lengths 65..128: bit length - 65
    uint64_t lo                 # lengths 25..64: bit length - 25

cdef struct Lpm6View:
    FibView top                 # /0../24 over the top 32 bits (dir24.pxi)
    const uint32_t* blocks      # per /24 block: its LenSet id (0: no longer prefix); NULL: none at all
    const LenSet* sets
    HashView routes             # (length, prefix) -> next hop, lengths 25..128

cdef enum:
    LPM6_BLOCKS = 1 << 24
    LPM6_DIR_LEN = 24


cdef inline uint32_t lpm6_lookup(const Lpm6View* f, uint64_t hi, uint64_t lo) noexcept nogil:
    """Next hop + 1 of the longest prefix covering hi:lo; 0 when none does."""
    cdef uint32_t s, k
    cdef uint64_t bits, v
    cdef const LenSet* ls
    cdef Slot6 probe
    if f.blocks != NULL:
        s = f.blocks[hi >> 40]
        if s:
            ls = &f.sets[s]
            bits = ls.hi
            probe.hi = hi
            while bits:
                k = TS_TOP_BIT64(bits)
                probe.lo = lo & mask64(k + 1)
                probe.tag = k + 65
                if slot_find(<const Slot6*>f.routes.slots, f.routes.mask, &probe, &v):
                    return <uint32_t>v + 1
                bits ^= 1ULL << k
            bits = ls.lo
            probe.lo = 0
            while bits:
                k = TS_TOP_BIT64(bits)
                probe.hi = hi & mask64(k + 25)
                probe.tag = k + 25
                if slot_find(<const Slot6*>f.routes.slots, f.routes.mask, &probe, &v):
                    return <uint32_t>v + 1
                bits ^= 1ULL << k
    return fib_entry_lookup(&f.top, <uint32_t>(hi >> 32)) & FIB_NH_MASK


cdef inline void lpm6_prefetch(const Lpm6View* f, uint64_t hi) noexcept nogil:
    """Pass 1 of the batch loop: start reading what lpm6_lookup(hi) reads first."""
    if f.blocks != NULL:
        TS_PREFETCH(&f.blocks[hi >> 40])
    if f.top.tbl24 != NULL:
        TS_PREFETCH(&f.top.tbl24[hi >> 40])


@cython.final
cdef class Lpm6Fib:
    cdef Dir24Fib top               # /0../24
    cdef AddrHash routes            # (length, prefix) -> next hop, /25../128
    cdef AddrHash counts            # (length, block) -> prefixes of that length in the block
    cdef uint32_t* blocks           # LPM6_BLOCKS set ids; NULL while no prefix is longer than /24
    cdef LenSet* sets               # set id -> lengths (id 0: the empty set)
    cdef uint32_t sets_cap
    cdef dict set_ids               # (hi, lo) bitmap -> set id
    cdef list set_refs              # set id -> blocks that have it
    cdef list free_sets

    def __cinit__(self):
        self.top = Dir24Fib()
        self.routes, self.counts = AddrHash(6), AddrHash(4)
        self.blocks, self.sets, self.sets_cap = NULL, NULL, 0
        self.set_ids, self.set_refs, self.free_sets = {}, [0], []

    def __dealloc__(self):
        free(self.blocks)
        free(self.sets)

    def __len__(self):
        return len(self.top) + len(self.routes)

    cdef Lpm6View view(self) noexcept:
        cdef Lpm6View v
        v.top, v.blocks, v.sets, v.routes = self.top.view(), self.blocks, self.sets, self.routes.view()
        return v

    cdef bint get_route(self, uint64_t hi, uint64_t lo, int plen, uint32_t* nh) noexcept:
        cdef uint64_t v
        if plen <= LPM6_DIR_LEN:
            return self.top.get_route(<uint32_t>(hi >> 32), plen, nh)
        if self.routes.get(plen, hi, lo, &v):
            nh[0] = <uint32_t>v
            return True
        return False

    cdef int insert(self, uint64_t hi, uint64_t lo, int plen, uint32_t nh) except -1:
        """Add or replace prefix/plen -> nh (the caller checked the arguments).  A
        MemoryError leaves the table as it was."""
        cdef uint64_t v
        cdef uint32_t block = <uint32_t>(hi >> 40), new_set
        if plen <= LPM6_DIR_LEN:
            return self.top.insert(<uint32_t>(hi >> 32), plen, nh)
        if self.routes.get(plen, hi, lo, &v):
            return self.routes.put(plen, hi, lo, nh)        # replaced in place
        if self.blocks == NULL:
            self.blocks = <uint32_t*>calloc(LPM6_BLOCKS, sizeof(uint32_t))
            if self.blocks == NULL:
                raise MemoryError("IPv6 FIB: block table")
        new_set = self._set_with(block, plen, True)         # may raise: nothing changed yet
        try:
            self._count(block, plen, 1)
            try:
                self.routes.put(plen, hi, lo, nh)
            except BaseException:
                self._count(block, plen, -1)
                raise
        except BaseException:
            self._release_set(new_set)
            if len(self.routes) == 0:
                self._free_blocks()
            raise
        self._assign(block, new_set)
        return 0

    cdef int remove(self, uint64_t hi, uint64_t lo, int plen) except -1:
        """Remove prefix/plen (present: the caller checked)."""
        cdef uint32_t block = <uint32_t>(hi >> 40), new_set = 0
        cdef uint64_t n = 0
        if plen <= LPM6_DIR_LEN:
            return self.top.remove(<uint32_t>(hi >> 32), plen)
        self.counts.get(plen, 0, block, &n)
        if n == 1:                                          # the block's last of this length
            new_set = self._set_with(block, plen, False)    # may raise: nothing changed yet
        self.routes.delete(plen, hi, lo)
        self._count(block, plen, -1)
        if n == 1:
            self._assign(block, new_set)
        if len(self.routes) == 0:
            self._free_blocks()
        return 0

    # ---- the length sets ---------------------------------------------------------------

    cdef uint64_t _count(self, uint32_t block, int plen, int delta) except? 0xFFFFFFFFFFFFFFFF:
        """Add ``delta`` to the count of length ``plen`` in ``block``; the new count."""
        cdef uint64_t n = 0
        self.counts.get(plen, 0, block, &n)
        n += delta
        if n:
            self.counts.put(plen, 0, block, n)
        else:
            self.counts.delete(plen, 0, block)
        return n

    cdef uint32_t _set_with(self, uint32_t block, int plen, bint present) except? 0xFFFFFFFF:
        """The id (a new reference) of ``block``'s current set with length ``plen``
        present or absent."""
        cdef LenSet s
        s.hi = s.lo = 0
        if self.blocks[block]:
            s = self.sets[self.blocks[block]]
        if plen > 64:
            s.hi = (s.hi | (1ULL << (plen - 65))) if present else (s.hi & ~(1ULL << (plen - 65)))
        else:
            s.lo = (s.lo | (1ULL << (plen - 25))) if present else (s.lo & ~(1ULL << (plen - 25)))
        return self._acquire_set(s.hi, s.lo)

    cdef uint32_t _acquire_set(self, uint64_t hi, uint64_t lo) except? 0xFFFFFFFF:
        cdef uint32_t sid, cap
        cdef LenSet* grown
        if hi == 0 and lo == 0:
            return 0
        key = (hi, lo)
        found = self.set_ids.get(key)
        if found is not None:
            sid = found
        else:
            if self.free_sets:
                sid = self.free_sets.pop()
            else:
                sid = len(self.set_refs)
                if sid >= self.sets_cap:
                    cap = max(64, self.sets_cap * 2)
                    grown = <LenSet*>realloc(self.sets, cap * sizeof(LenSet))
                    if grown == NULL:
                        raise MemoryError("IPv6 FIB: length sets")
                    self.sets, self.sets_cap = grown, cap
                self.set_refs.append(0)
            self.sets[sid].hi, self.sets[sid].lo = hi, lo
            self.set_ids[key] = sid
        self.set_refs[sid] += 1
        return sid

    cdef int _release_set(self, uint32_t sid) except -1:
        if sid == 0:
            return 0
        self.set_refs[sid] -= 1
        if self.set_refs[sid] == 0:
            del self.set_ids[(self.sets[sid].hi, self.sets[sid].lo)]
            self.free_sets.append(sid)
        return 0

    cdef int _assign(self, uint32_t block, uint32_t sid) except -1:
        """``block`` now has set ``sid`` (a reference the caller acquired)."""
        cdef uint32_t old = self.blocks[block]
        self.blocks[block] = sid
        return self._release_set(old)

    cdef void _free_blocks(self) noexcept:
        free(self.blocks)
        self.blocks = NULL

    def routes_list(self):
        """[(prefix, plen, nexthop)] with the prefix as a 128-bit int (control plane, tests)."""
        out = [(p << 96, l, nh) for p, l, nh in self.top.routes_list()]
        out += [(prefix, plen, nh) for plen, prefix, nh in self.routes.items()]
        return sorted(out, key=lambda r: (r[1], r[0]))

    def length_sets(self):
        """{block: [lengths]} of the blocks that hold prefixes longer than /24 (tests)."""
        cdef uint32_t b
        cdef LenSet s
        if self.blocks == NULL:
            return {}
        out = {}
        for b in {block for _, block, _ in self.counts.items()}:
            s = self.sets[self.blocks[b]]
            out[b] = [l for l in range(25, 129)
                      if (s.hi >> (l - 65) & 1 if l > 64 else s.lo >> (l - 25) & 1)]
        return out
