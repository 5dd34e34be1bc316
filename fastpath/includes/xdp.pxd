# AF_XDP sockets and the XDP redirect program of xdp.h (bpf() directly, no libbpf): what
# the AF_XDP port kind (fastpath/afxdp.pxi, afxdp_port.pxi) calls.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "xdp.h" nogil:
    struct xdp_desc:
        uint64_t addr
        uint32_t len
        uint32_t options
    struct xdp_umem_reg:
        uint64_t addr
        uint64_t len
        uint32_t chunk_size
        uint32_t headroom
        uint32_t flags
    struct xdp_ring_offset:
        uint64_t producer
        uint64_t consumer
        uint64_t desc
        uint64_t flags
    struct xdp_mmap_offsets:
        xdp_ring_offset rx
        xdp_ring_offset tx
        xdp_ring_offset fr
        xdp_ring_offset cr
    struct sockaddr_xdp:
        unsigned short sxdp_family
        unsigned short sxdp_flags
        uint32_t sxdp_ifindex
        uint32_t sxdp_queue_id
        uint32_t sxdp_shared_umem_fd
    struct xdp_statistics:
        uint64_t rx_dropped
        uint64_t rx_invalid_descs
        uint64_t tx_invalid_descs
        uint64_t rx_ring_full
        uint64_t rx_fill_ring_empty_descs
        uint64_t tx_ring_empty_descs
    ctypedef struct ts_xsk_ring:
        uint32_t* producer
        uint32_t* consumer
        uint32_t* flags
        void* desc
        uint32_t mask
        uint32_t cached
        void* map
        size_t map_len
    enum:
        AF_XDP
        SOL_XDP
        XDP_MMAP_OFFSETS
        XDP_RX_RING
        XDP_TX_RING
        XDP_UMEM_REG
        XDP_UMEM_FILL_RING
        XDP_UMEM_COMPLETION_RING
        XDP_STATISTICS
        XDP_COPY
        XDP_ZEROCOPY
        XDP_USE_NEED_WAKEUP
        XDP_RING_NEED_WAKEUP
        XDP_FLAGS_SKB_MODE
        XDP_FLAGS_DRV_MODE
    const long long XDP_PGOFF_RX_RING         # mmap offsets of the rings (beyond 32 bits)
    const long long XDP_PGOFF_TX_RING
    const long long XDP_UMEM_PGOFF_FILL_RING
    const long long XDP_UMEM_PGOFF_COMPLETION_RING
    int ts_xskmap_create(unsigned entries)
    int ts_xdp_redirect_prog(int map_fd, char* log, unsigned log_size)
    int ts_xskmap_set(int map_fd, uint32_t key, int xsk_fd)
    int ts_xdp_link(int prog_fd, int ifindex, unsigned flags)
    uint32_t ts_xsk_load(const uint32_t* p)
    void ts_xsk_store(uint32_t* p, uint32_t v)
    uint64_t* ts_xsk_addr(ts_xsk_ring* r, uint32_t i)
    xdp_desc* ts_xsk_desc(ts_xsk_ring* r, uint32_t i)
