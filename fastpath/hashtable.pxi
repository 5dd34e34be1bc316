# U64Map: open-addressing hash table uint64 key -> uint64 value, owned C memory.
#
# Used for the address demux ((scope << 32) | ip -> owner), the neighbour table
# ((scope << 32) | ip -> MAC) and each FIB's route set ((plen << 32) | prefix -> next hop).
# Why this shape: linear probing keeps a lookup to one or two adjacent 16-byte slots
# (4 per cache line), so a lookup in a 1M-entry table costs one cache miss, which the
# batch loop hides by prefetching the home slot.  The murmur3 64-bit finaliser spreads
# consecutive tenant addresses over the whole table.  The table doubles when the load
# factor would pass 1/2 (probe sequences stay short: ~1.5 slots on a hit), and
# deletion shifts the following cluster back (no tombstones, so lookups never slow
# down after churn).  The empty key is all-ones, which no (scope, ip) or (plen, prefix)
# key can be (scopes are < 2^31).
from libc.stdlib cimport malloc, calloc, free, realloc
from libc.string cimport memset, memcpy
cimport cython

cdef struct MapSlot:
    uint64_t key
    uint64_t value

cdef enum:
    MAP_MIN_SIZE = 64

cdef uint64_t MAP_EMPTY = 0xFFFFFFFFFFFFFFFFULL


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    x ^= x >> 33
    x *= 0xff51afd7ed558ccdULL
    x ^= x >> 33
    x *= 0xc4ceb9fe1a85ec53ULL
    x ^= x >> 33
    return x


cdef MapSlot* map_alloc(uint64_t size) noexcept nogil:
    cdef MapSlot* s = <MapSlot*>malloc(size * sizeof(MapSlot))
    if s != NULL:
        memset(s, 0xFF, size * sizeof(MapSlot))
    return s


cdef inline bint map_find(const MapSlot* slots, uint64_t mask, uint64_t key, uint64_t* value) noexcept nogil:
    """Look ``key`` up in a table of mask + 1 slots (the batch loop calls it on the slots
    it took under the lock; U64Map.get on its own)."""
    cdef uint64_t i = mix64(key) & mask
    while True:
        if slots[i].key == key:
            value[0] = slots[i].value
            return True
        if slots[i].key == MAP_EMPTY:
            return False
        i = (i + 1) & mask


@cython.final
cdef class U64Map:
    cdef MapSlot* slots
    cdef uint64_t mask
    cdef Py_ssize_t used

    def __cinit__(self, Py_ssize_t initial=MAP_MIN_SIZE):
        cdef uint64_t size = MAP_MIN_SIZE
        while size < <uint64_t>initial:
            size <<= 1
        self.slots = map_alloc(size)
        if self.slots == NULL:
            raise MemoryError()
        self.mask = size - 1
        self.used = 0

    def __dealloc__(self):
        free(self.slots)

    def __len__(self):
        return self.used

    @property
    def size(self):
        return self.mask + 1

    cdef inline bint get(self, uint64_t key, uint64_t* value) noexcept nogil:
        return map_find(self.slots, self.mask, key, value)

    cdef int put(self, uint64_t key, uint64_t value) except -1:
        """Insert or replace."""
        cdef uint64_t i
        if (<uint64_t>self.used + 1) * 2 > self.mask + 1:
            self._resize((self.mask + 1) * 2)
        i = mix64(key) & self.mask
        while True:
            if self.slots[i].key == key:
                self.slots[i].value = value
                return 0
            if self.slots[i].key == MAP_EMPTY:
                self.slots[i].key = key
                self.slots[i].value = value
                self.used += 1
                return 0
            i = (i + 1) & self.mask

    cdef bint delete(self, uint64_t key) noexcept:
        """Remove ``key``; backward-shift the rest of its cluster.  False if absent."""
        cdef uint64_t i = mix64(key) & self.mask, j, k
        while self.slots[i].key != key:
            if self.slots[i].key == MAP_EMPTY:
                return False
            i = (i + 1) & self.mask
        j = i
        while True:
            j = (j + 1) & self.mask
            if self.slots[j].key == MAP_EMPTY:
                break
            k = mix64(self.slots[j].key) & self.mask
            # the entry at j may fill the hole at i when i lies on its probe path k..j
            if ((j - k) & self.mask) >= ((j - i) & self.mask):
                self.slots[i] = self.slots[j]
                i = j
        self.slots[i].key = MAP_EMPTY
        self.slots[i].value = MAP_EMPTY
        self.used -= 1
        return True

    cdef int _resize(self, uint64_t size) except -1:
        cdef MapSlot* old = self.slots
        cdef uint64_t old_size = self.mask + 1, n, i
        cdef MapSlot* s = map_alloc(size)
        if s == NULL:
            raise MemoryError()
        self.slots, self.mask = s, size - 1
        for n in range(old_size):
            if old[n].key != MAP_EMPTY:
                i = mix64(old[n].key) & self.mask
                while s[i].key != MAP_EMPTY:
                    i = (i + 1) & self.mask
                s[i] = old[n]
        free(old)
        return 0

    cdef void clear(self) noexcept:
        memset(self.slots, 0xFF, (self.mask + 1) * sizeof(MapSlot))
        self.used = 0

    def items(self):
        """All (key, value) pairs (for tests and the control plane, not the hot path)."""
        cdef uint64_t n
        return [(self.slots[n].key, self.slots[n].value)
                for n in range(self.mask + 1) if self.slots[n].key != MAP_EMPTY]

    # Python-level access for tests of the table itself.
    def py_put(self, uint64_t key, uint64_t value):
        self.put(key, value)

    def py_get(self, uint64_t key):
        cdef uint64_t v
        return v if self.get(key, &v) else None

    def py_delete(self, uint64_t key):
        return self.delete(key)
