/* urfwd: minifwd's forwarding (every frame read on one TAP written to the other, no
 * lookups, virtio-net header and TSO on both TAPs) with every read and write going
 * through one io_uring: what reading through the ring, instead of epoll + read(),
 * gives a TAP forwarder (issue 18, "reads through the same io_uring ring as the
 * writes").
 *
 *   urfwd TAP_A TAP_B
 *
 * Each TAP has a multishot read (IORING_OP_READ_MULTISHOT, kernel 6.7) that takes
 * its buffers from a provided-buffer ring of its own: a frame that arrives becomes
 * a completion naming the buffer it lies in, without a system call of the
 * forwarder's. Each completion becomes a write SQE to the other TAP from that
 * buffer; the buffer goes back to its ring when the write completes. One
 * io_uring_enter() per round submits the writes and waits for the next
 * completions. The ring is set up single-issuer with deferred task work (where the
 * kernel has them), so reads are done when the forwarder asks for completions.
 *
 * Prints "ready", forwards until SIGTERM/SIGINT or its parent's death, then prints
 * {"frames_ab","frames_ba","write_errors","enters","rearms"} on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tapfwd.h"

#define OP_READ_MULTISHOT 49        /* IORING_OP_READ_MULTISHOT; older headers lack it */
#define BUFSIZE (VNET_HDR_LEN + 65536)
#define NBUF 32                     /* buffers per TAP (a power of two) */
#define ENTRIES 128                 /* SQ entries: 2 * NBUF writes + 2 reads fit */
#define WRITE_TAG (1ull << 32)


static void die(const char *what) { perror(what); exit(2); }

static struct {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    unsigned tail, pending;
} ring;

static void ring_setup(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    ring.fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
    if (ring.fd < 0) {                      /* kernels before 6.1 */
        memset(&p, 0, sizeof p);
        ring.fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
    }
    if (ring.fd < 0) die("urfwd: io_uring_setup");
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) { fprintf(stderr, "urfwd: kernel too old\n"); exit(2); }
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    size_t size = sq_size > cq_size ? sq_size : cq_size;
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                   IORING_OFF_SQ_RING);
    if (m == MAP_FAILED) die("urfwd: mmap ring");
    ring.sq_tail = (unsigned *)(m + p.sq_off.tail);
    ring.sq_mask = (unsigned *)(m + p.sq_off.ring_mask);
    ring.sq_array = (unsigned *)(m + p.sq_off.array);
    ring.cq_head = (unsigned *)(m + p.cq_off.head);
    ring.cq_tail = (unsigned *)(m + p.cq_off.tail);
    ring.cq_mask = (unsigned *)(m + p.cq_off.ring_mask);
    ring.cqes = (struct io_uring_cqe *)(m + p.cq_off.cqes);
    ring.sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_POPULATE, ring.fd, IORING_OFF_SQES);
    if (ring.sqes == MAP_FAILED) die("urfwd: mmap sqes");
    ring.tail = *ring.sq_tail;
}

static struct io_uring_sqe *sqe_get(void) {
    unsigned i = ring.tail & *ring.sq_mask;
    struct io_uring_sqe *s = &ring.sqes[i];
    memset(s, 0, sizeof *s);
    ring.sq_array[i] = i;
    ring.tail++;
    ring.pending++;
    return s;
}

/* One TAP's provided buffers: a buffer ring registered as group `bgid`. */
struct side {
    int fd;
    unsigned char *bufs;
    struct io_uring_buf_ring *br;
    unsigned short br_tail;
    uint64_t frames;
};

static void buf_give(struct side *s, unsigned bid) {
    struct io_uring_buf *b = &s->br->bufs[s->br_tail & (NBUF - 1)];
    b->addr = (uint64_t)(uintptr_t)(s->bufs + (size_t)bid * BUFSIZE);
    b->len = BUFSIZE;
    b->bid = (unsigned short)bid;
    s->br_tail++;
    __atomic_store_n(&s->br->tail, s->br_tail, __ATOMIC_RELEASE);
}

static void side_setup(struct side *s, int bgid) {
    s->bufs = mmap(NULL, (size_t)NBUF * BUFSIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    s->br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (s->bufs == MAP_FAILED || s->br == MAP_FAILED) die("urfwd: mmap buffers");
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)s->br;
    reg.ring_entries = NBUF;
    reg.bgid = (unsigned short)bgid;
    if (syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
        die("urfwd: IORING_REGISTER_PBUF_RING");
    s->br_tail = 0;
    for (unsigned b = 0; b < NBUF; b++) buf_give(s, b);
}

static void arm_read(struct side *s, int bgid) {
    struct io_uring_sqe *q = sqe_get();
    q->opcode = OP_READ_MULTISHOT;
    q->fd = s->fd;
    q->flags = IOSQE_BUFFER_SELECT;
    q->buf_group = (unsigned short)bgid;
    q->user_data = (uint64_t)bgid;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: urfwd TAP_A TAP_B\n");
        return 2;
    }
    forwarder_signals();

    struct side sides[2];
    memset(sides, 0, sizeof sides);
    sides[0].fd = open_tap("urfwd", argv[1], 1);
    sides[1].fd = open_tap("urfwd", argv[2], 1);
    ring_setup();
    side_setup(&sides[0], 0);
    side_setup(&sides[1], 1);
    arm_read(&sides[0], 0);
    arm_read(&sides[1], 1);
    uint64_t write_errors = 0, enters = 0, rearms = 0;
    printf("ready\n");
    fflush(stdout);

    while (!stop) {
        __atomic_store_n(ring.sq_tail, ring.tail, __ATOMIC_RELEASE);
        int n = (int)syscall(__NR_io_uring_enter, ring.fd, ring.pending, 1,
                             IORING_ENTER_GETEVENTS, NULL, 0);
        enters++;
        if (n < 0) {
            if (errno == EINTR) continue;
            die("urfwd: io_uring_enter");
        }
        ring.pending = 0;
        unsigned head = *ring.cq_head;
        unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
        for (; head != tail; head++) {
            struct io_uring_cqe *c = &ring.cqes[head & *ring.cq_mask];
            if (c->user_data & WRITE_TAG) {             /* a write done: its buffer back */
                int from = (int)((c->user_data >> 16) & 1);
                if (c->res < 0) write_errors++;
                else sides[from].frames++;
                buf_give(&sides[from], (unsigned)(c->user_data & 0xffff));
                continue;
            }
            int side = (int)c->user_data;
            if (c->res > 0 && (c->flags & IORING_CQE_F_BUFFER)) {
                unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
                struct io_uring_sqe *q = sqe_get();
                q->opcode = IORING_OP_WRITE;
                q->fd = sides[1 - side].fd;
                q->addr = (uint64_t)(uintptr_t)(sides[side].bufs + (size_t)bid * BUFSIZE);
                q->len = (unsigned)c->res;
                q->off = (uint64_t)-1;
                q->user_data = WRITE_TAG | ((uint64_t)side << 16) | bid;
            } else if (c->res > 0) {
                write_errors++;                         /* no buffer named: cannot happen */
            }
            if (!(c->flags & IORING_CQE_F_MORE)) {      /* ended (out of buffers): again */
                arm_read(&sides[side], side);
                rearms++;
            }
        }
        __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
    }
    printf("{\"frames_ab\": %llu, \"frames_ba\": %llu, \"write_errors\": %llu, "
           "\"enters\": %llu, \"rearms\": %llu}\n",
           (unsigned long long)sides[0].frames, (unsigned long long)sides[1].frames,
           (unsigned long long)write_errors, (unsigned long long)enters,
           (unsigned long long)rearms);
    return 0;
}
