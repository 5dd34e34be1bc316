# IPv6 in C, for the frame path (process6.pxi) and the virtio-net code (vnet.pxi): an
# address as two host-order 64-bit halves (hi = the first 8 bytes on the wire), the
# address classes the rules test, and the walk of the extension-header chain to the
# upper layer.  fastpath/ipv6.py is the same in Python (the reference, the slow path) and
# says what is walked and why the chain is bounded; the differential tests hold the two
# together.

cdef extern from *:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define TS_BE64(x) ((uint64_t)(x))
    #else
    #define TS_BE64(x) __builtin_bswap64((uint64_t)(x))
    #endif
    #define TS_TOP_BIT64(x) (63 - __builtin_clzll((uint64_t)(x)))
    """
    # a 64-bit word loaded from the wire as the big-endian number it is (and back)
    uint64_t TS_BE64(uint64_t x) noexcept nogil
    # the index of the highest set bit of x (x != 0)
    uint32_t TS_TOP_BIT64(uint64_t x) noexcept nogil

cdef enum:
    ETHERTYPE_IPV6 = 0x86DD
    IPV6_HLEN = 40
    IPV6_MAX_EXT_HEADERS = 8        # fastpath/ipv6.py MAX_EXT_HEADERS
    IPV6_MAX_EXT_BYTES = 256        # fastpath/ipv6.py MAX_EXT_BYTES
    NH_HOP_BY_HOP = 0
    NH_ROUTING = 43
    NH_FRAGMENT = 44
    NH_AUTH = 51
    NH_ICMPV6 = 58
    NH_DEST_OPTS = 60
    UL_FRAGMENT = 256               # the upper layer of a non-first fragment: unknown

cdef struct Ip6Upper:
    uint32_t off                    # where the upper-layer header starts (from the fixed header)
    uint16_t proto                  # its protocol; UL_FRAGMENT after a non-first fragment
    uint8_t fragment                # a fragment header was in the chain
    uint8_t routed                  # a routing header with segments left (the destination
                                    # field is not the final one)


cdef inline uint64_t load_be64(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return TS_BE64(v)


cdef inline void store_be64(uint8_t* p, uint64_t v) noexcept nogil:
    v = TS_BE64(v)
    memcpy(p, &v, 8)


cdef inline uint64_t mask64(uint32_t bits) noexcept nogil:
    """The top ``bits`` (0..64) bits of a 64-bit half set."""
    return 0 if bits == 0 else (<uint64_t>0xFFFFFFFFFFFFFFFFULL) << (64 - bits)


cdef inline bint ip6_same_prefix(uint64_t ahi, uint64_t alo, uint64_t bhi, uint64_t blo,
                                 uint32_t plen) noexcept nogil:
    """Do a and b share their first ``plen`` (0..128) bits?"""
    if plen <= 64:
        return ((ahi ^ bhi) & mask64(plen)) == 0
    return ahi == bhi and ((alo ^ blo) & mask64(plen - 64)) == 0


cdef inline bint ip6_is_multicast(uint64_t hi) noexcept nogil:
    return (hi >> 56) == 0xFF


cdef inline bint ip6_is_solicited_node(uint64_t hi, uint64_t lo) noexcept nogil:
    """ff02::1:ff00:0/104: the owners of the addresses it is made from (fastpath/ipv6.py)."""
    return hi == 0xFF02000000000000ULL and (lo >> 24) == 0x1FFULL


cdef inline bint ip6_is_link_local(uint64_t hi) noexcept nogil:
    return (hi >> 54) == 0x3FA                      # fe80::/10


cdef inline bint ip6_martian_source(uint64_t hi, uint64_t lo) noexcept nogil:
    """Never a source on a link: multicast, ::1, an IPv4-mapped ::ffff:0:0/96."""
    return (hi >> 56) == 0xFF or (hi == 0 and (lo == 1 or (lo >> 32) == 0xFFFF))


cdef inline bint ip6_bad_destination(uint64_t hi, uint64_t lo) noexcept nogil:
    """Never a unicast destination: ::, ::1, an IPv4-mapped ::ffff:0:0/96."""
    return hi == 0 and (lo <= 1 or (lo >> 32) == 0xFFFF)


cdef inline uint64_t ip6_group_mac(uint64_t lo) noexcept nogil:
    """33:33 + the low 32 bits of the group (RFC 2464 7), as process.pxi holds a MAC."""
    return 0x3333ULL | (((lo >> 24) & 0xFF) << 16) | (((lo >> 16) & 0xFF) << 24) \
        | (((lo >> 8) & 0xFF) << 32) | ((lo & 0xFF) << 40)


cdef inline bint ipv6_walk(const uint8_t* ip, uint32_t end, Ip6Upper* u) noexcept nogil:
    """Walk the extension headers of the IPv6 packet ip[0:end] (end = 40 + payload
    length, within the frame) to the upper layer; False for a chain fastpath/ipv6.py
    refuses (beyond ``end``, too many or too long, hop-by-hop not first)."""
    cdef uint32_t off = IPV6_HLEN, size, count = 0
    cdef uint8_t nh = ip[6]
    u.fragment = 0
    u.routed = 0
    while nh == NH_HOP_BY_HOP or nh == NH_ROUTING or nh == NH_FRAGMENT or nh == NH_DEST_OPTS \
            or nh == NH_AUTH:
        if nh == NH_HOP_BY_HOP and off != IPV6_HLEN:
            return False
        if off + 2 > end:
            return False
        count += 1
        if nh == NH_FRAGMENT:
            size = 8
        elif nh == NH_AUTH:
            size = (<uint32_t>ip[off + 1] + 2) * 4
        else:
            size = (<uint32_t>ip[off + 1] + 1) * 8
        if count > IPV6_MAX_EXT_HEADERS or off + size > end or off + size - IPV6_HLEN > IPV6_MAX_EXT_BYTES:
            return False
        if nh == NH_FRAGMENT:
            u.fragment = 1
            if ((<uint32_t>ip[off + 2] << 8) | ip[off + 3]) & 0xFFF8:
                u.proto = UL_FRAGMENT
                u.off = off + size
                return True
        elif nh == NH_ROUTING and ip[off + 3] != 0:
            u.routed = 1
        nh = ip[off]
        off += size
    u.proto = nh
    u.off = off
    return True
