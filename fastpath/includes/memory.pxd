# Memory for the large tables: big enough ones on transparent huge pages.
#
# A 1M-entry hash (32-64 MB) looked up at random touches a new 4 KB page on nearly every
# probe: the TLB misses, not the cache misses, are then what a lookup waits for (the
# batch loop's prefetches start the cache miss, but a page walk of a prefetch is slow).
# Tables of 2 MB and more are therefore mmap'd and advised MADV_HUGEPAGE (2 MB pages where
# the kernel has them; without THP they are ordinary pages, nothing else changes).  The
# tables written whole when made (the hash slots) and those read at random by every frame
# (the route caches: zeroed, paged in as namespaces route) come here; a sparse table read
# only where routes are (a DIR-24 tbl24) would grow 512-fold per page it touches.

cdef extern from *:
    """
    #include <sys/mman.h>
    #include <stdlib.h>
    #define TS_HUGE_MIN ((size_t)2 << 20)
    static void* ts_table_alloc(size_t n) {
        void* p;
        if (n < TS_HUGE_MIN)
            return malloc(n);
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
    #ifdef MADV_HUGEPAGE
        madvise(p, n, MADV_HUGEPAGE);
    #endif
        return p;
    }
    static void* ts_table_zalloc(size_t n) {
        void* p;
        if (n < TS_HUGE_MIN)
            return calloc(n, 1);
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
    #ifdef MADV_HUGEPAGE
        madvise(p, n, MADV_HUGEPAGE);
    #endif
        return p;
    }
    static void ts_table_free(void* p, size_t n) {
        if (p == NULL)
            return;
        if (n < TS_HUGE_MIN)
            free(p);
        else
            munmap(p, n);
    }
    """
    # n bytes (uninitialised) for a table; NULL when out of memory
    void* ts_table_alloc(size_t n) noexcept nogil
    # the same, zeroed (mmap'd memory is, page by page, as it is first touched)
    void* ts_table_zalloc(size_t n) noexcept nogil
    # give back what ts_table_alloc(n) / ts_table_zalloc(n) gave (the same n)
    void ts_table_free(void* p, size_t n) noexcept nogil
