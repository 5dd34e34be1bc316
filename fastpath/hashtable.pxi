# AddrHash: the open-addressing hash every address-keyed table is made of -- the demux
# (demux.pxi), the neighbours (neighbours.pxi), each FIB's route set (dir24.pxi, lpm6.pxi) --
# written once over its key type.  A key is (tag, address): the tag is an L2 scope (or a
# prefix length), the address an IPv4 (Slot4) or IPv6 (Slot6) address.  The per-slot
# operations below are fused over the two slot types, so a table of either family is the
# same code specialised at compile time; an AddrHash says its family at construction.
#
# Why this shape: linear probing keeps a lookup to one or two adjacent slots (Slot4: 16
# bytes, 4 per cache line; Slot6: 32 bytes), so a lookup in a 1M-entry table costs one
# cache miss, which the batch loop hides by prefetching the home slot.  The murmur3 64-bit
# finaliser spreads consecutive tenant addresses over the whole table.  The table doubles
# when the load factor would pass 1/2 (probe sequences stay short: ~1.5 slots on a hit),
# and deletion shifts the following cluster back (no tombstones, so lookups never slow down
# after churn).  An empty slot is all ones (memset 0xFF): its Slot4 key / Slot6 tag is all
# ones, which no key can be (tags are < 2^31).  Slots of a large table sit on huge pages
# (includes/memory.pxd: at 1M entries the TLB, not the cache, is what a probe waits for).
from libc.stdlib cimport malloc, calloc, free, realloc
from libc.string cimport memset, memcpy
from fastpath.includes.memory cimport ts_table_alloc, ts_table_free, ts_table_zalloc
cimport cython

cdef struct Slot4:
    uint64_t key            # tag << 32 | IPv4 address
    uint64_t value

cdef struct Slot6:
    uint64_t hi             # IPv6 address, high and low 64 bits
    uint64_t lo
    uint64_t tag
    uint64_t value

ctypedef fused Slot:
    Slot4
    Slot6

cdef struct HashView:
    # what the batch loop reads of a table (taken under the batch lock)
    const void* slots       # Slot4 or Slot6, by the table's family
    uint64_t mask           # slots - 1

cdef enum:
    HASH_MIN_SIZE = 64
    HASH_MAX_TAG = 0x7FFFFFFF

cdef extern from *:
    """
    #define TS_SLOT_EMPTY (~(uint64_t)0)
    """
    # the key (Slot4) / tag (Slot6) of an empty slot: a constant, so a probe compares
    # with an immediate instead of loading a variable
    const uint64_t SLOT_EMPTY "TS_SLOT_EMPTY"


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    x ^= x >> 33
    x *= 0xff51afd7ed558ccdULL
    x ^= x >> 33
    x *= 0xc4ceb9fe1a85ec53ULL
    x ^= x >> 33
    return x


cdef inline void slot_set_key(Slot* s, uint64_t tag, uint64_t hi, uint64_t lo) noexcept nogil:
    if Slot is Slot4:
        s.key = (tag << 32) | lo
    else:
        s.hi, s.lo, s.tag = hi, lo, tag


cdef inline uint64_t slot_hash(const Slot* s) noexcept nogil:
    if Slot is Slot4:
        return mix64(s.key)
    else:
        return mix64(s.lo ^ mix64(s.hi ^ (s.tag * 0x9E3779B97F4A7C15ULL)))


cdef inline bint slot_same(const Slot* a, const Slot* b) noexcept nogil:
    if Slot is Slot4:
        return a.key == b.key
    else:
        return a.lo == b.lo and a.hi == b.hi and a.tag == b.tag


cdef inline bint slot_empty(const Slot* s) noexcept nogil:
    if Slot is Slot4:
        return s.key == SLOT_EMPTY
    else:
        return s.tag == SLOT_EMPTY


cdef inline bint slot_find(const Slot* slots, uint64_t mask, const Slot* probe,
                           uint64_t* value) noexcept nogil:
    """Look the key of ``probe`` up in a table of mask + 1 slots."""
    cdef uint64_t i = slot_hash(probe) & mask
    while True:
        if slot_same(&slots[i], probe):
            value[0] = slots[i].value
            return True
        if slot_empty(&slots[i]):
            return False
        i = (i + 1) & mask


cdef inline bint hash4_find(const HashView* h, uint32_t tag, uint32_t ip, uint64_t* value) noexcept nogil:
    """The per-packet lookup of an IPv4 table: (tag, ip) -> value."""
    cdef Slot4 probe
    probe.key = (<uint64_t>tag << 32) | ip
    return slot_find(<const Slot4*>h.slots, h.mask, &probe, value)


cdef inline const Slot4* hash4_home(const HashView* h, uint32_t tag, uint32_t ip) noexcept nogil:
    """Where the lookup of (tag, ip) starts (the batch loop prefetches it)."""
    return &(<const Slot4*>h.slots)[mix64((<uint64_t>tag << 32) | ip) & h.mask]


cdef inline bint hash6_find(const HashView* h, uint32_t tag, uint64_t hi, uint64_t lo,
                           uint64_t* value) noexcept nogil:
    """The per-packet lookup of an IPv6 table: (tag, hi:lo) -> value."""
    cdef Slot6 probe
    probe.hi, probe.lo, probe.tag = hi, lo, tag
    return slot_find(<const Slot6*>h.slots, h.mask, &probe, value)


cdef inline const Slot6* hash6_home(const HashView* h, uint32_t tag, uint64_t hi, uint64_t lo) noexcept nogil:
    """Where the lookup of (tag, hi:lo) starts (the batch loop prefetches it)."""
    cdef Slot6 probe
    probe.hi, probe.lo, probe.tag = hi, lo, tag
    return &(<const Slot6*>h.slots)[slot_hash(&probe) & h.mask]


cdef bint slot_put(Slot* slots, uint64_t mask, const Slot* item) noexcept nogil:
    """Insert or replace; True when the key is new.  The caller keeps the load <= 1/2."""
    cdef uint64_t i = slot_hash(item) & mask
    while True:
        if slot_same(&slots[i], item):
            slots[i].value = item.value
            return False
        if slot_empty(&slots[i]):
            slots[i] = item[0]
            return True
        i = (i + 1) & mask


cdef bint slot_delete(Slot* slots, uint64_t mask, const Slot* probe) noexcept nogil:
    """Remove the key of ``probe``; shift the rest of its cluster back.  False if absent."""
    cdef uint64_t i = slot_hash(probe) & mask, j, k
    while not slot_same(&slots[i], probe):
        if slot_empty(&slots[i]):
            return False
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if slot_empty(&slots[j]):
            break
        k = slot_hash(&slots[j]) & mask
        # the entry at j may fill the hole at i when i lies on its probe path k..j
        if ((j - k) & mask) >= ((j - i) & mask):
            slots[i] = slots[j]
            i = j
    memset(&slots[i], 0xFF, sizeof(Slot))
    return True


cdef void slots_move(const Slot* old, uint64_t old_size, Slot* new, uint64_t new_mask) noexcept nogil:
    """Insert every entry of ``old`` into the empty table ``new``."""
    cdef uint64_t n
    for n in range(old_size):
        if not slot_empty(&old[n]):
            slot_put(new, new_mask, &old[n])


cdef class AddrHash:
    """(tag, address) -> uint64 value, for IPv4 (family 4) or IPv6 (family 6) addresses;
    owns its slots.  Subclasses say what the values mean; the C methods take the address
    as two 64-bit halves (hi is 0 for IPv4), the py_* methods a Python int (tests)."""
    cdef void* slots
    cdef uint64_t mask
    cdef Py_ssize_t used
    cdef readonly int family
    cdef size_t slot_size

    def __cinit__(self, int family=4, Py_ssize_t initial=HASH_MIN_SIZE):
        cdef uint64_t size = HASH_MIN_SIZE
        if family != 4 and family != 6:
            raise InvalidArgument(f"family must be 4 or 6, not {family}")
        while size < <uint64_t>initial:
            size <<= 1
        self.family = family
        self.slot_size = sizeof(Slot4) if family == 4 else sizeof(Slot6)
        self.slots = self._alloc(size)
        self.mask = size - 1
        self.used = 0

    def __dealloc__(self):
        ts_table_free(self.slots, (self.mask + 1) * self.slot_size)

    def __len__(self):
        return self.used

    @property
    def size(self):
        return self.mask + 1

    cdef void* _alloc(self, uint64_t size) except NULL:
        cdef void* s = ts_table_alloc(size * self.slot_size)
        if s == NULL:
            raise MemoryError()
        memset(s, 0xFF, size * self.slot_size)
        return s

    cdef HashView view(self) noexcept nogil:
        cdef HashView v
        v.slots, v.mask = self.slots, self.mask
        return v

    cdef bint get(self, uint64_t tag, uint64_t hi, uint64_t lo, uint64_t* value) noexcept:
        cdef Slot4 p4
        cdef Slot6 p6
        if self.family == 4:
            slot_set_key(&p4, tag, hi, lo)
            return slot_find(<Slot4*>self.slots, self.mask, &p4, value)
        slot_set_key(&p6, tag, hi, lo)
        return slot_find(<Slot6*>self.slots, self.mask, &p6, value)

    cdef int put(self, uint64_t tag, uint64_t hi, uint64_t lo, uint64_t value) except -1:
        """Insert or replace (tag, address) -> value.  Replacing never allocates (so
        never fails): a caller may undo a change with it."""
        cdef Slot4 p4
        cdef Slot6 p6
        cdef uint64_t old
        if (<uint64_t>self.used + 1) * 2 > self.mask + 1 and not self.get(tag, hi, lo, &old):
            self._resize((self.mask + 1) * 2)
        if self.family == 4:
            slot_set_key(&p4, tag, hi, lo)
            p4.value = value
            self.used += slot_put(<Slot4*>self.slots, self.mask, &p4)
        else:
            slot_set_key(&p6, tag, hi, lo)
            p6.value = value
            self.used += slot_put(<Slot6*>self.slots, self.mask, &p6)
        return 0

    cdef bint delete(self, uint64_t tag, uint64_t hi, uint64_t lo) noexcept:
        """Remove (tag, address); False if absent."""
        cdef Slot4 p4
        cdef Slot6 p6
        cdef bint gone
        if self.family == 4:
            slot_set_key(&p4, tag, hi, lo)
            gone = slot_delete(<Slot4*>self.slots, self.mask, &p4)
        else:
            slot_set_key(&p6, tag, hi, lo)
            gone = slot_delete(<Slot6*>self.slots, self.mask, &p6)
        self.used -= gone
        return gone

    cdef int _resize(self, uint64_t size) except -1:
        cdef void* new = self._alloc(size)
        if self.family == 4:
            slots_move(<Slot4*>self.slots, self.mask + 1, <Slot4*>new, size - 1)
        else:
            slots_move(<Slot6*>self.slots, self.mask + 1, <Slot6*>new, size - 1)
        ts_table_free(self.slots, (self.mask + 1) * self.slot_size)
        self.slots, self.mask = new, size - 1
        return 0

    def items(self):
        """[(tag, address, value)] of every entry (control plane and tests, not per packet)."""
        cdef uint64_t n
        cdef Slot4* s4 = <Slot4*>self.slots
        cdef Slot6* s6 = <Slot6*>self.slots
        if self.family == 4:
            return [(s4[n].key >> 32, s4[n].key & 0xFFFFFFFF, s4[n].value)
                    for n in range(self.mask + 1) if not slot_empty(&s4[n])]
        return [(s6[n].tag, (<object>s6[n].hi << 64) | s6[n].lo, s6[n].value)
                for n in range(self.mask + 1) if not slot_empty(&s6[n])]

    cdef int delete_tag(self, uint64_t tag) except -1:
        """Remove every entry of ``tag`` (an L2 scope that goes)."""
        for t, address, _ in self.items():
            if t == tag:
                self.remove(tag, address)
        return 0

    # the same with the address as a Python int of the table's family (checked by the caller)

    cdef bint lookup(self, uint64_t tag, address, uint64_t* value) except? False:
        return self.get(tag, address >> 64, address & 0xFFFFFFFFFFFFFFFF, value)

    cdef int store(self, uint64_t tag, address, uint64_t value) except -1:
        return self.put(tag, address >> 64, address & 0xFFFFFFFFFFFFFFFF, value)

    cdef bint remove(self, uint64_t tag, address) except? False:
        return self.delete(tag, address >> 64, address & 0xFFFFFFFFFFFFFFFF)

    # Python-level access, for the table's own tests

    cdef _check_key(self, tag, address):
        if not isinstance(tag, int) or not 0 <= tag <= HASH_MAX_TAG:
            raise InvalidArgument(f"tag {tag!r} is not in 0..{HASH_MAX_TAG}")
        if not isinstance(address, int) or address < 0 or address >> (32 if self.family == 4 else 128):
            raise InvalidArgument(f"{address!r} is not an IPv{self.family} address as an int")

    def py_put(self, tag, address, uint64_t value):
        self._check_key(tag, address)
        self.store(tag, address, value)

    def py_get(self, tag, address):
        cdef uint64_t v
        self._check_key(tag, address)
        return v if self.lookup(tag, address, &v) else None

    def py_delete(self, tag, address):
        self._check_key(tag, address)
        return self.remove(tag, address)
