# Internet checksum helpers (RFC 1071): one summing routine for the whole fast path
# (IPv4 header check in process.pxi, checksum completion and software GSO in vnet.pxi).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from fastpath.includes.compiler cimport TS_BE16_FROM_NATIVE


cdef inline uint16_t csum_fold(uint32_t s) noexcept nogil:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <uint16_t>s


cdef inline uint32_t csum_bytes(const uint8_t* p, size_t n) noexcept nogil:
    """One's complement sum of ``n`` bytes as big-endian 16-bit words, folded to 16 bits,
    eight bytes per step.  The sum of native-order words is the byte-swapped sum of the
    big-endian ones (RFC 1071, 2(B)), so it is swapped once at the end."""
    cdef uint64_t s = 0, w = 0
    cdef uint32_t w32 = 0
    cdef uint16_t w16 = 0
    while n >= 8:
        memcpy(&w, p, 8)
        s += (w & 0xFFFFFFFFULL) + (w >> 32)
        p += 8
        n -= 8
    if n >= 4:
        memcpy(&w32, p, 4)
        s += w32
        p += 4
        n -= 4
    if n >= 2:
        memcpy(&w16, p, 2)
        s += w16
        p += 2
        n -= 2
    if n:
        w16 = 0
        memcpy(&w16, p, 1)      # the odd byte is the high half of a big-endian word
        s += w16
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return TS_BE16_FROM_NATIVE(<uint32_t>s)


def internet_checksum(const uint8_t[::1] data):
    """The RFC 1071 checksum of ``data`` (as stored big-endian): what the fast path's
    summing routine gives, for tests and tools."""
    cdef uint16_t r
    with nogil:
        r = ~csum_bytes(&data[0] if data.shape[0] else NULL, data.shape[0]) & 0xFFFF
    return r
