# Compiler builtins the per-packet code uses, as C macros (one instruction each).

cdef extern from *:
    """
    #define TS_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
    #define TS_PREFETCH_W(p) __builtin_prefetch((const void*)(p), 1, 3)
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define TS_BE16_FROM_NATIVE(x) ((uint16_t)(x))
    #else
    #define TS_BE16_FROM_NATIVE(x) __builtin_bswap16((uint16_t)(x))
    #endif
    #define TS_ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
    #define TS_ATOMIC_ADD(p, v) ((void)__atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL))
    """
    # start loading the cache line at p for a read / for a write
    void TS_PREFETCH(const void* p) noexcept nogil
    void TS_PREFETCH_W(const void* p) noexcept nogil
    # a 16-bit value summed from native-order words, as the big-endian sum (RFC 1071, 2(B))
    unsigned short TS_BE16_FROM_NATIVE(unsigned int x) noexcept nogil
    # an int shared between threads (the datapath lock's handoff, datapath.pxi)
    int TS_ATOMIC_LOAD(const int* p) noexcept nogil
    void TS_ATOMIC_ADD(int* p, int v) noexcept nogil
    # branch hints (Cython's own macros): the per-packet code marks its drops unlikely, so
    # the C compiler lays the forwarding path out straight and keeps its registers for it
    bint likely(bint x) noexcept nogil
    bint unlikely(bint x) noexcept nogil
