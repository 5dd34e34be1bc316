# libc / POSIX bits of the fast path that Cython's own declarations do not give as such.
from libc.stdint cimport int64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC


cdef inline int64_t now_ns() noexcept nogil:
    """The monotonic clock in nanoseconds (the packet loop's timeouts)."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec
