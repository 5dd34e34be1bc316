/* AF_XDP without libxdp/libbpf (fastpath/afxdp.pxi uses it, through fastpath/includes/xdp.pxd).
 *
 * The XDP program every AF_XDP port loads is six instructions, assembled here and loaded
 * with the bpf() system call: redirect the frame to the XSKMAP entry of its receive queue,
 * or let it pass to the kernel's stack when no socket is there:
 *
 *     r2 = *(u32 *)(r1 + offsetof(struct xdp_md, rx_queue_index))
 *     r1 = map[xskmap]                      (ld_imm64, two slots)
 *     r3 = XDP_PASS
 *     call bpf_redirect_map
 *     exit
 *
 * It is attached through a BPF link (BPF_LINK_CREATE, Linux >= 5.9): the program leaves
 * the interface when the link's fd is closed, also when the process dies, so nothing
 * stays attached after the switch.  Every call returns an fd or -errno.
 *
 * The rings (fill, completion, RX, TX) are single-producer single-consumer arrays shared
 * with the kernel: a producer writes its entries then publishes its index with release
 * order; a consumer reads the other side's index with acquire order.
 */
#ifndef TAPSWITCH_XDP_H
#define TAPSWITCH_XDP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef XDP_FLAGS_SKB_MODE
#define XDP_FLAGS_SKB_MODE (1U << 1)
#define XDP_FLAGS_DRV_MODE (1U << 2)
#endif

static long ts_bpf(int cmd, union bpf_attr *attr) {
    long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));
    return r < 0 ? -errno : r;
}

/* An XSKMAP of ``entries`` queues. */
static int ts_xskmap_create(unsigned entries) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_XSKMAP;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = entries;
    return (int)ts_bpf(BPF_MAP_CREATE, &a);
}

#define TS_PROG_LOAD_ATTEMPTS 5   /* BPF_PROG_LOAD tries while the verifier says EAGAIN */

/* The redirect program (above) over ``map_fd``; when it is refused and ``log`` is given,
 * loaded again with the verifier's log written there (a log too small for what the
 * verifier says would itself be refused, ENOSPC: so only when it is wanted). */
static int ts_xdp_redirect_prog(int map_fd, char *log, unsigned log_size) {
    struct bpf_insn insn[6];
    union bpf_attr a;
    int fd = -EAGAIN, attempt;
    memset(insn, 0, sizeof(insn));
    insn[0].code = BPF_LDX | BPF_W | BPF_MEM;
    insn[0].dst_reg = 2;
    insn[0].src_reg = 1;
    insn[0].off = offsetof(struct xdp_md, rx_queue_index);
    insn[1].code = BPF_LD | BPF_DW | BPF_IMM;
    insn[1].dst_reg = 1;
    insn[1].src_reg = BPF_PSEUDO_MAP_FD;
    insn[1].imm = map_fd;
    insn[3].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insn[3].dst_reg = 3;
    insn[3].imm = XDP_PASS;
    insn[4].code = BPF_JMP | BPF_CALL;
    insn[4].imm = BPF_FUNC_redirect_map;
    insn[5].code = BPF_JMP | BPF_EXIT;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.insns = (uint64_t)(uintptr_t)insn;
    a.insn_cnt = 6;
    a.license = (uint64_t)(uintptr_t)"GPL";
    a.expected_attach_type = BPF_XDP;
    /* The verifier gives up with EAGAIN when a signal is pending for the thread (as
     * libbpf does, try again a few times): a passing signal must not refuse the port. */
    for (attempt = 0; attempt < TS_PROG_LOAD_ATTEMPTS; attempt++) {
        fd = (int)ts_bpf(BPF_PROG_LOAD, &a);
        if (fd != -EAGAIN)
            break;
    }
    if (fd >= 0 || log == NULL || log_size == 0 || fd == -EPERM)
        return fd;
    log[0] = 0;
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = log_size;
    a.log_level = 1;
    if (ts_bpf(BPF_PROG_LOAD, &a) == -ENOSPC)
        log[log_size - 1] = 0;
    return fd;
}

static int ts_xskmap_set(int map_fd, uint32_t key, int xsk_fd) {
    union bpf_attr a;
    uint32_t value = (uint32_t)xsk_fd;
    memset(&a, 0, sizeof(a));
    a.map_fd = map_fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&value;
    return (int)ts_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

/* Attach ``prog_fd`` to interface ``ifindex`` of the calling thread's network namespace
 * (``flags``: XDP_FLAGS_DRV_MODE native, XDP_FLAGS_SKB_MODE generic); the link's fd. */
static int ts_xdp_link(int prog_fd, int ifindex, unsigned flags) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.link_create.prog_fd = (uint32_t)prog_fd;
    a.link_create.target_ifindex = (uint32_t)ifindex;
    a.link_create.attach_type = BPF_XDP;
    a.link_create.flags = flags;
    return (int)ts_bpf(BPF_LINK_CREATE, &a);
}

/* One of the four rings of an XDP socket, mapped. */
typedef struct {
    uint32_t *producer, *consumer, *flags;
    void *desc;                 /* uint64_t addresses (fill, completion) or xdp_desc (RX, TX) */
    uint32_t mask;
    uint32_t cached;            /* our own index: the producer's of a ring we fill, else the consumer's */
    void *map;
    size_t map_len;
} ts_xsk_ring;

static inline uint32_t ts_xsk_load(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void ts_xsk_store(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline uint64_t *ts_xsk_addr(ts_xsk_ring *r, uint32_t i) {
    return &((uint64_t *)r->desc)[i & r->mask];
}

static inline struct xdp_desc *ts_xsk_desc(ts_xsk_ring *r, uint32_t i) {
    return &((struct xdp_desc *)r->desc)[i & r->mask];
}

#endif
