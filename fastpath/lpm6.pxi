# Lpm6Fib: the IPv6 longest-prefix-match table of one L2 scope.
#
# The structure: a hash per prefix length (one AddrHash(6) tagged by the length), searched
# longest first -- but only over the lengths that occur in the destination's own /24
# block.  A second hash (``blocks``: block = the address's first 24 bits) names, per block
# that holds prefixes longer than /24, the set of their lengths (a bitmap of lengths
# 25..128, kept once per distinct set in ``sets``); prefixes of /24 and shorter (the
# default route among them) are a DIR-24 of the address's top 32 bits (dir24.pxi's
# Dir24Fib, fed /0../24 only, so it never needs a tbl8).  A lookup probes the block hash,
# then the route hash at each length of the block's set from the longest down, and stops
# at the first hit; a block without longer prefixes answers from the DIR-24 at once.
#
# Why this and not the others (DPDK's lpm6, a DIR-24-8-8-... multibit trie; the kernel's
# fib6, a binary radix tree; Waldvogel's binary search on lengths with markers):
# - Memory follows the routes.  A multibit trie spends a 256-entry group per 8 bits of
#   every distinct path: 1M scattered /48s need ~3 groups each (GBs), and DPDK makes the
#   operator size the group pool up front.  Here a route is one 32-byte hash slot (load
#   <= 1/2), its block one 16-byte slot; a scope with a few routes costs a few KB (no
#   direct table of 2^24 blocks), and the large hashes sit on huge pages.
# - Few probes where it matters.  Tenant networks (fd00::/8 ULAs, /48 sites, /64
#   subnets, /128 hosts) and even a full BGP table put only a few lengths in any one /24
#   block, so a lookup is the block probe plus one to a few route probes; the global set
#   of lengths, which a plain "bitmap of lengths present" would search, is much larger.
#   A radix tree walks up to 128 nodes; a multibit trie 1 + (length - 24) / 8 dependent
#   reads for every lookup (6 for a /64).
# - Cheap, local updates.  Adding or removing a prefix longer than /24 touches its hash
#   slot, a count, and at most its block's set id; Waldvogel's markers must be recomputed
#   when a shorter prefix changes the best match of markers below it, and the search
#   tree over lengths is rebuilt when a length appears or goes.
# - Prefetchable.  The batch loop starts the block probe's and the DIR-24 entry's reads
#   of every frame in pass 1 (lpm6_prefetch), as it does tbl24's for IPv4; the
#   per-namespace route cache (route_cache.pxi) answers repeated destinations first.
# The cost: a block whose set holds many lengths (a /24 with prefixes of ten lengths) pays
# a probe per length longer than the match, each a dependent read.  The probes are the
# demux's slot_find().
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
    uint32_t longer             # are there prefixes longer than /24?
    HashView blocks             # (0, /24 block) -> its LenSet id
    const LenSet* sets
    HashView routes             # (length, prefix) -> next hop, lengths 25..128

cdef enum:
    LPM6_DIR_LEN = 24


cdef inline uint32_t lpm6_lookup(const Lpm6View* f, uint64_t hi, uint64_t lo) noexcept nogil:
    """Next hop + 1 of the longest prefix covering hi:lo; 0 when none does."""
    cdef uint32_t k
    cdef uint64_t bits, v, s
    cdef const LenSet* ls
    cdef Slot6 probe
    if f.longer:
        if hash4_find(&f.blocks, 0, <uint32_t>(hi >> 40), &s):
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
    if f.longer:
        TS_PREFETCH(hash4_home(&f.blocks, 0, <uint32_t>(hi >> 40)))
    if f.top.tbl24 != NULL:
        TS_PREFETCH(&f.top.tbl24[hi >> 40])


@cython.final
cdef class Lpm6Fib:
    cdef Dir24Fib top               # /0../24
    cdef AddrHash routes            # (length, prefix) -> next hop, /25../128
    cdef AddrHash counts            # (length, block) -> prefixes of that length in the block
    cdef AddrHash blocks            # (0, block) -> set id, for the blocks with longer prefixes
    cdef LenSet* sets               # set id -> lengths (id 0: the empty set)
    cdef uint32_t sets_cap
    cdef dict set_ids               # (hi, lo) bitmap -> set id
    cdef list set_refs              # set id -> blocks that have it
    cdef list free_sets

    def __cinit__(self):
        self.top = Dir24Fib()
        self.routes, self.counts, self.blocks = AddrHash(6), AddrHash(4), AddrHash(4)
        self.sets, self.sets_cap = NULL, 0
        self.set_ids, self.set_refs, self.free_sets = {}, [0], []

    def __dealloc__(self):
        free(self.sets)

    def __len__(self):
        return len(self.top) + len(self.routes)

    cdef Lpm6View view(self) noexcept:
        cdef Lpm6View v
        v.top, v.sets, v.routes, v.blocks = self.top.view(), self.sets, self.routes.view(), self.blocks.view()
        v.longer = len(self.routes) > 0
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
        cdef uint32_t block = <uint32_t>(hi >> 40), new_set, old_set
        if plen <= LPM6_DIR_LEN:
            return self.top.insert(<uint32_t>(hi >> 32), plen, nh)
        if self.routes.get(plen, hi, lo, &v):
            return self.routes.put(plen, hi, lo, nh)        # replaced: never allocates
        old_set = self._block_set(block)
        new_set = self._set_with(block, plen, True)         # may raise: nothing changed yet
        try:
            self._count(block, plen, 1)
            try:
                self.routes.put(plen, hi, lo, nh)
                try:
                    self.blocks.put(0, 0, block, new_set)
                except BaseException:
                    self.routes.delete(plen, hi, lo)
                    raise
            except BaseException:
                self._count(block, plen, -1)
                raise
        except BaseException:
            self._release_set(new_set)
            raise
        return self._release_set(old_set)

    cdef int remove(self, uint64_t hi, uint64_t lo, int plen) except -1:
        """Remove prefix/plen (present: the caller checked)."""
        cdef uint32_t block = <uint32_t>(hi >> 40), new_set = 0, old_set
        cdef uint64_t n = 0
        if plen <= LPM6_DIR_LEN:
            return self.top.remove(<uint32_t>(hi >> 32), plen)
        self.counts.get(plen, 0, block, &n)
        if n == 1:                                          # the block's last of this length
            new_set = self._set_with(block, plen, False)    # may raise: nothing changed yet
        self.routes.delete(plen, hi, lo)
        self._count(block, plen, -1)
        if n == 1:
            old_set = self._block_set(block)
            if new_set:
                self.blocks.put(0, 0, block, new_set)       # replaced: never allocates
            else:
                self.blocks.delete(0, 0, block)
            self._release_set(old_set)
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

    cdef uint32_t _block_set(self, uint32_t block) noexcept:
        """The set id of ``block`` (0: none)."""
        cdef uint64_t sid = 0
        self.blocks.get(0, 0, block, &sid)
        return <uint32_t>sid

    cdef uint32_t _set_with(self, uint32_t block, int plen, bint present) except? 0xFFFFFFFF:
        """The id (a new reference) of ``block``'s current set with length ``plen``
        present or absent."""
        cdef LenSet s
        cdef uint32_t sid = self._block_set(block)
        s.hi = s.lo = 0
        if sid:
            s = self.sets[sid]
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

    def routes_list(self):
        """[(prefix, plen, nexthop)] with the prefix as a 128-bit int (control plane, tests)."""
        out = [(p << 96, l, nh) for p, l, nh in self.top.routes_list()]
        out += [(prefix, plen, nh) for plen, prefix, nh in self.routes.items()]
        return sorted(out, key=lambda r: (r[1], r[0]))

    def length_sets(self):
        """{block: [lengths]} of the blocks that hold prefixes longer than /24 (tests)."""
        cdef LenSet s
        out = {}
        for _, block, sid in self.blocks.items():
            s = self.sets[sid]
            out[block] = [l for l in range(25, 129)
                          if (s.hi >> (l - 65) & 1 if l > 64 else s.lo >> (l - 25) & 1)]
        return out
