# Internet checksum helpers (RFC 1071, incremental update RFC 1624).
from libc.stdint cimport uint8_t, uint16_t, uint32_t


cdef inline uint16_t csum_fold(uint32_t s) noexcept nogil:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <uint16_t>s


cdef inline uint32_t csum_partial(const uint8_t* p, Py_ssize_t n, uint32_t s) noexcept nogil:
    cdef Py_ssize_t i = 0
    while i + 1 < n:
        s += (<uint32_t>p[i] << 8) | p[i + 1]
        i += 2
    if i < n:
        s += <uint32_t>p[i] << 8
    return s


def internet_checksum(const uint8_t[::1] data):
    """Return the RFC 1071 checksum of ``data`` (as stored big-endian)."""
    cdef uint16_t r
    with nogil:
        r = ~csum_fold(csum_partial(&data[0] if data.shape[0] else NULL, data.shape[0], 0)) & 0xFFFF
    return r
