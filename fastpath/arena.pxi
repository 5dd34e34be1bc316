# FrameArena: the address space a packet loop's frames lie in, so that one 32-bit offset
# from the batch's buffer (batch.pxi's ``offset``) reaches any of them.
#
# One reservation of virtual memory (PROT_NONE, nothing committed): the batch's buffer
# pool at its start, then room where ports of the ring kinds map their rings -- an
# AF_PACKET socket's RX and TX rings (afpacket.pxi), an AF_XDP socket's UMEM (afxdp.pxi).
# The fast path then classifies a frame where the kernel left it, in the ring: its batch
# offset is (ring - pool start) + where it lies in the ring, no copy in between.
#
# A port takes a page-aligned range with take() and maps over it (MAP_FIXED); give()
# puts the reservation back over the range (never a hole another mapping could fill,
# which the arena's final munmap would then take away).  The whole arena is unmapped
# when the last object holding it (the loop, its batch, a ring port, a numpy view of
# the pool) goes.
cimport cython
from posix.mman cimport (mmap, munmap, MAP_FAILED, PROT_NONE, PROT_READ, PROT_WRITE,
                         MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE)
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES

cdef enum:
    ARENA_PAGE = 4096
    ARENA_MIN_RINGS = 64 << 20         # the least room for rings worth reserving


cdef inline size_t page_up(size_t n) noexcept nogil:
    return (n + ARENA_PAGE - 1) & ~(<size_t>ARENA_PAGE - 1)


@cython.final
cdef class FrameArena:
    """A pool of ``pool_size`` bytes, then up to ``ring_space`` bytes of room for rings
    (less when the machine refuses so large a reservation; ``ring_space`` says what was
    had).  The pool is readable through the buffer protocol."""
    cdef uint8_t* base
    cdef readonly size_t size, pool_size, ring_space
    cdef list free                  # [[start, length]] of the ring room, by start
    cdef Py_ssize_t exports

    def __cinit__(self, size_t pool_size, size_t ring_space=0):
        cdef size_t pool = page_up(pool_size)
        cdef size_t rings = page_up(ring_space)
        cdef void* m = MAP_FAILED
        while True:
            m = mmap(NULL, pool + rings, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if m != MAP_FAILED or rings < ARENA_MIN_RINGS:
                break
            rings = page_up(rings // 2)       # a limit on address space (ulimit -v): less
        if m == MAP_FAILED:
            rings = 0
            m = mmap(NULL, pool, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if m == MAP_FAILED:
                raise MemoryError(f"cannot reserve {pool} bytes for the batch pool")
        if mmap(m, pool, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED:
            munmap(m, pool + rings)
            raise MemoryError(f"cannot map {pool} bytes for the batch pool")
        self.base = <uint8_t*>m
        self.size, self.pool_size, self.ring_space = pool + rings, pool_size, rings
        self.free = [[pool, rings]] if rings else []

    def __dealloc__(self):
        if self.base != NULL:
            munmap(self.base, self.size)
            self.base = NULL

    def __getbuffer__(self, Py_buffer* view, int flags):
        view.buf = self.base
        view.obj = self
        view.len = self.pool_size
        view.readonly = 0
        view.itemsize = 1
        view.format = NULL
        if flags & PyBUF_FORMAT:
            view.format = "B"
        view.ndim = 1
        view.shape = &view.len if flags & PyBUF_ND else NULL
        view.strides = &view.itemsize if flags & PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL
        self.exports += 1

    def __releasebuffer__(self, Py_buffer* view):
        self.exports -= 1

    @property
    def rings_in_use(self):
        """Bytes of the ring room taken by ports now."""
        return self.ring_space - sum(length for _, length in self.free)

    cdef Py_ssize_t take(self, size_t n, str what) except -1:
        """A page-aligned range of ``n`` bytes of the ring room (still reserved, not
        mapped): its offset from the pool's start.  Refused when no free range is large
        enough."""
        cdef size_t need = page_up(n)
        for k, (start, length) in enumerate(self.free):
            if length >= need:
                if length == need:
                    del self.free[k]
                else:
                    self.free[k] = [start + need, length - need]
                return start
        raise InvalidArgument(
            f"{what}: no room for {need >> 20} MiB of rings in the packet loop's address "
            f"space ({self.rings_in_use >> 20} of {self.ring_space >> 20} MiB taken)")

    cdef int give(self, size_t start, size_t n) except -1:
        """Put the reservation back over a range take() gave (unmapping what a port
        mapped there) and return it to the free list."""
        cdef size_t need = page_up(n)
        if mmap(self.base + start, need, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED:
            munmap(self.base + start, need)    # at least no ring stays mapped (kept out of use)
            return 0
        self.free.append([start, need])
        self.free.sort()
        merged = []
        for s, length in self.free:
            if merged and merged[len(merged) - 1][0] + merged[len(merged) - 1][1] == s:
                merged[len(merged) - 1][1] += length
            else:
                merged.append([s, length])
        self.free = merged
        return 0
