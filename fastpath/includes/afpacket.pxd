# AF_PACKET sockets with TPACKET_V2 rings (<linux/if_packet.h>) and the socket calls the
# ring port kind (fastpath/afpacket.pxi) makes; also what the AF_XDP kind shares with it.
from libc.stdint cimport uint16_t, uint32_t
from posix.uio cimport iovec

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        unsigned short sa_family
    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    int socket(int domain, int type, int protocol)
    int setsockopt(int fd, int level, int name, const void* value, socklen_t length)
    int getsockopt(int fd, int level, int name, void* value, socklen_t* length)
    int bind(int fd, const sockaddr* address, socklen_t length)
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                   socklen_t tolen)
    ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* src, socklen_t* srclen)
    ssize_t recvmsg(int fd, msghdr* msg, int flags)
    ssize_t sendmsg(int fd, const msghdr* msg, int flags)
    enum:
        AF_PACKET
        SOCK_RAW
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        SOL_SOCKET
        SO_RCVBUF
        SO_RCVBUFFORCE
        SO_SNDBUF
        SO_SNDBUFFORCE
        SO_ERROR
        MSG_DONTWAIT
        MSG_TRUNC

cdef extern from "<arpa/inet.h>" nogil:
    uint16_t htons(uint16_t x)

cdef extern from "<linux/if_packet.h>" nogil:
    struct sockaddr_ll:
        unsigned short sll_family
        unsigned short sll_protocol
        int sll_ifindex
        unsigned short sll_hatype
        unsigned char sll_pkttype
        unsigned char sll_halen
        unsigned char sll_addr[8]
    struct tpacket2_hdr:
        uint32_t tp_status
        uint32_t tp_len
        uint32_t tp_snaplen
        uint16_t tp_mac
        uint16_t tp_net
        uint32_t tp_sec
        uint32_t tp_nsec
        uint16_t tp_vlan_tci
        uint16_t tp_vlan_tpid
    struct tpacket_req:
        unsigned int tp_block_size
        unsigned int tp_block_nr
        unsigned int tp_frame_size
        unsigned int tp_frame_nr
    struct tpacket_stats:
        unsigned int tp_packets
        unsigned int tp_drops
    enum:
        PACKET_RX_RING
        PACKET_TX_RING
        PACKET_VERSION
        PACKET_VNET_HDR
        PACKET_QDISC_BYPASS
        PACKET_IGNORE_OUTGOING
        PACKET_COPY_THRESH
        PACKET_LOSS
        PACKET_STATISTICS
        TPACKET_V2
        TPACKET_ALIGNMENT
        TP_STATUS_KERNEL
        TP_STATUS_USER
        TP_STATUS_COPY
        TP_STATUS_VLAN_VALID
        TP_STATUS_AVAILABLE
        TP_STATUS_SEND_REQUEST
        TP_STATUS_SENDING
        TP_STATUS_WRONG_FORMAT

cdef extern from * nogil:
    """
    #include <linux/if_packet.h>
    #ifndef SOL_PACKET
    #define SOL_PACKET 263
    #endif
    #define TS_ETH_P_ALL 0x0003
    /* where a V2 frame's data starts: the header, then the sockaddr_ll the kernel fills */
    #define TS_TPACKET2_HDRLEN (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) + sizeof(struct sockaddr_ll))
    /* where a TX frame's data goes (no PACKET_TX_HAS_OFF): right after the header */
    #define TS_TPACKET2_TX_DATA (TS_TPACKET2_HDRLEN - sizeof(struct sockaddr_ll))
    #define TS_VIRTIO_NET_HDR_LEN 10  /* struct virtio_net_hdr: what PACKET_VNET_HDR carries */
    static inline uint32_t ts_load_acquire_u32(const volatile uint32_t *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline void ts_store_release_u32(volatile uint32_t *p, uint32_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    """
    const int SOL_PACKET
    const int ETH_P_ALL "TS_ETH_P_ALL"
    const size_t TPACKET2_HDRLEN "TS_TPACKET2_HDRLEN"
    const size_t TPACKET2_TX_DATA "TS_TPACKET2_TX_DATA"
    const size_t VIRTIO_NET_HDR_LEN "TS_VIRTIO_NET_HDR_LEN"
    # ring words the kernel reads and writes: ordered loads and stores
    uint32_t load_acquire_u32 "ts_load_acquire_u32"(const uint32_t* p)
    void store_release_u32 "ts_store_release_u32"(uint32_t* p, uint32_t v)
