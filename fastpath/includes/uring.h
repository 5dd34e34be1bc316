/* A minimal io_uring submission ring for the packet loop's batched writes and reads of
 * TAP ports (fastpath/uring.pxi and uring_rx.pxi use it, through
 * fastpath/includes/uring.pxd).
 *
 * Raw syscalls (io_uring_setup, io_uring_enter, io_uring_register) and mmap of the
 * rings: no liburing.  setup.py defines TAPSWITCH_HAVE_IO_URING when a test program
 * including <linux/io_uring.h> compiles; without it every call here says ENOSYS and
 * the packet loop runs its epoll+write backend.
 *
 * Only what the packet loop needs: fill SQEs (ts_uring_queue_write, ts_uring_queue_read:
 * both RWF_NOWAIT), publish and submit them all, wait until each has completed
 * (ts_uring_submit_wait), then walk the CQEs
 * (ts_uring_cqe / ts_uring_cqe_seen).  A sparse table of registered files
 * (ts_uring_register_files, ts_uring_file_set) lets an SQE name a port's fd by its slot
 * (IOSQE_FIXED_FILE): the kernel then takes no reference to the file per request (an
 * fget()/fput() pair, ~3.5 % of the packet thread's time with 64-byte frames).  The
 * caller never has more SQEs in flight than the SQ holds, and the CQ is twice that, so
 * completions cannot overflow.
 *
 * Closing a ring is not over when close() returns: the kernel tears the ring down in a
 * worker (after an RCU grace period, some milliseconds later) and then makes every thread
 * tied to it -- the one that created it, any that submitted -- run a task-work item,
 * delivered like a signal: whatever that thread is blocked in at that moment (epoll_wait,
 * the packet loop's wait) returns EINTR, once.  Every wait of the loop is ready for that
 * (it retries, and counts the interruption apart from the waits it chose: fastpath/loop.pxi),
 * so close() does not wait for the teardown.
 */
#ifndef TAPSWITCH_URING_H
#define TAPSWITCH_URING_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/types.h>

#ifdef TAPSWITCH_HAVE_IO_URING
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#define TS_IO_URING_BUILT 1
#else
#define TS_IO_URING_BUILT 0
struct io_uring_sqe { int unused; };
struct io_uring_cqe { uint64_t user_data; int32_t res; uint32_t flags; };
#endif

typedef struct {
    int fd;
    unsigned entries;                   /* SQ size */
    unsigned nfiles;                    /* slots of the registered file table (0: none) */
    unsigned filled;                    /* SQEs filled, not yet submitted */
    unsigned sq_tail;                   /* our copy; published in ts_uring_submit_wait */
    unsigned *k_sq_tail, *k_sq_mask, *k_sq_array;
    unsigned *k_cq_head, *k_cq_tail, *k_cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *ring;                         /* SQ and CQ rings: one mapping (FEAT_SINGLE_MMAP) */
    size_t ring_size, sqes_size;
} ts_uring;

static void ts_uring_init(ts_uring *r) {
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

#ifdef TAPSWITCH_HAVE_IO_URING

static void ts_uring_close(ts_uring *r) {
    if (r->sqes != NULL && r->sqes != MAP_FAILED)
        munmap(r->sqes, r->sqes_size);
    if (r->ring != NULL && r->ring != MAP_FAILED)
        munmap(r->ring, r->ring_size);
    if (r->fd >= 0)
        close(r->fd);
    ts_uring_init(r);
}

/* Does the kernel support ``op``?  (IORING_REGISTER_PROBE, Linux 5.6+.) */
static int ts_uring_has_op(int fd, unsigned op) {
    struct { struct io_uring_probe p; struct io_uring_probe_op ops[256]; } probe;
    memset(&probe, 0, sizeof(probe));
    if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, &probe, 256) < 0)
        return 0;
    return op <= probe.p.last_op && (probe.ops[op].flags & IO_URING_OP_SUPPORTED);
}

/* ``size`` bytes of the ring ``fd`` at ``offset`` mapped shared and populated, or MAP_FAILED. */
static void *ts_uring_map(int fd, size_t size, off_t offset) {
    return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
}

/* Set up a ring of ``entries`` SQEs: 0, or -errno (ENOSYS: no io_uring; EPERM: it is
 * disabled, kernel.io_uring_disabled; EOPNOTSUPP: too old for what we use). */
static int ts_uring_open(ts_uring *r, unsigned entries) {
    struct io_uring_params p;
    size_t sq_size, cq_size;
    char *ring;
    ts_uring_init(r);
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 2 * entries;
    r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (r->fd < 0)
        return -errno;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_NODROP)
            || !ts_uring_has_op(r->fd, IORING_OP_WRITE)
            || !ts_uring_has_op(r->fd, IORING_OP_WRITEV)
            || !ts_uring_has_op(r->fd, IORING_OP_READ)) {
        ts_uring_close(r);
        return -EOPNOTSUPP;
    }
    sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    r->ring_size = sq_size > cq_size ? sq_size : cq_size;
    r->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
    r->ring = ts_uring_map(r->fd, r->ring_size, IORING_OFF_SQ_RING);
    if (r->ring != MAP_FAILED)
        r->sqes = ts_uring_map(r->fd, r->sqes_size, IORING_OFF_SQES);
    if (r->ring == MAP_FAILED || r->sqes == MAP_FAILED) {    /* close() unmaps what was mapped */
        int e = errno;
        ts_uring_close(r);
        return -e;
    }
    ring = (char *)r->ring;
    r->entries = p.sq_entries;
    r->k_sq_tail = (unsigned *)(ring + p.sq_off.tail);
    r->k_sq_mask = (unsigned *)(ring + p.sq_off.ring_mask);
    r->k_sq_array = (unsigned *)(ring + p.sq_off.array);
    r->k_cq_head = (unsigned *)(ring + p.cq_off.head);
    r->k_cq_tail = (unsigned *)(ring + p.cq_off.tail);
    r->k_cq_mask = (unsigned *)(ring + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(ring + p.cq_off.cqes);
    r->sq_tail = *r->k_sq_tail;
    return 0;
}

/* A sparse table of ``n`` registered files, every slot empty (Linux 5.19+): 0, or -errno
 * (the ring then names files by their fds). */
static int ts_uring_register_files(ts_uring *r, unsigned n) {
#ifdef IORING_RSRC_REGISTER_SPARSE
    struct io_uring_rsrc_register reg;
    memset(&reg, 0, sizeof(reg));
    reg.nr = n;
    reg.flags = IORING_RSRC_REGISTER_SPARSE;
    if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_FILES2, &reg, sizeof(reg)) < 0)
        return -errno;
    r->nfiles = n;
    return 0;
#else
    (void)r; (void)n;
    return -EOPNOTSUPP;
#endif
}

/* Put ``fd`` in slot ``slot`` of the registered table (-1: empty it, dropping the ring's
 * reference to the file): 0, or -errno.  Never while a request names the slot. */
static int ts_uring_file_set(ts_uring *r, unsigned slot, int fd) {
    struct io_uring_files_update up;
    if (slot >= r->nfiles)
        return -EINVAL;
    memset(&up, 0, sizeof(up));
    up.offset = slot;
    up.fds = (uint64_t)(uintptr_t)&fd;
    if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_FILES_UPDATE, &up, 1) < 0)
        return -errno;
    return 0;
}

/* An SQE's file: a slot of the registered table when ``fd`` is ``-1 - slot``, else the fd. */
static void ts_uring_sqe_file(struct io_uring_sqe *sqe, int fd) {
    if (fd < 0) {
        sqe->fd = -1 - fd;
        sqe->flags |= IOSQE_FIXED_FILE;
    } else {
        sqe->fd = fd;
    }
}

/* The next free SQE, cleared, or NULL when ``entries`` are filled (submit first). */
static struct io_uring_sqe *ts_uring_sqe(ts_uring *r) {
    unsigned idx;
    struct io_uring_sqe *sqe;
    if (r->filled >= r->entries)
        return NULL;
    idx = r->sq_tail & *r->k_sq_mask;
    sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof(*sqe));
    r->k_sq_array[idx] = idx;
    r->sq_tail++;
    r->filled++;
    return sqe;
}

/* A write of ``iov`` (one buffer: IORING_OP_WRITE; more: IORING_OP_WRITEV) to ``fd``
 * (-1 - slot: that slot of the registered table) that completes with -EAGAIN instead of
 * waiting when the fd cannot take it now. */
static int ts_uring_queue_write(ts_uring *r, int fd, const struct iovec *iov, int iovcnt,
                                uint64_t user_data) {
    struct io_uring_sqe *sqe = ts_uring_sqe(r);
    if (sqe == NULL)
        return -1;
    if (iovcnt == 1) {
        sqe->opcode = IORING_OP_WRITE;
        sqe->addr = (uint64_t)(uintptr_t)iov[0].iov_base;
        sqe->len = (uint32_t)iov[0].iov_len;
    } else {
        sqe->opcode = IORING_OP_WRITEV;
        sqe->addr = (uint64_t)(uintptr_t)iov;
        sqe->len = (uint32_t)iovcnt;
    }
    ts_uring_sqe_file(sqe, fd);
    sqe->off = (uint64_t)-1;            /* the file position: a TAP has none */
    sqe->rw_flags = RWF_NOWAIT;
    sqe->user_data = user_data;
    return 0;
}

/* A read of up to ``len`` bytes from ``fd`` (as for a write) into ``buf`` that completes
 * with -EAGAIN when the fd holds nothing now (RWF_NOWAIT: without it io_uring would wait for a
 * frame on an empty TAP, whatever its O_NONBLOCK). */
static int ts_uring_queue_read(ts_uring *r, int fd, void *buf, uint32_t len, uint64_t user_data) {
    struct io_uring_sqe *sqe = ts_uring_sqe(r);
    if (sqe == NULL)
        return -1;
    sqe->opcode = IORING_OP_READ;
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = len;
    ts_uring_sqe_file(sqe, fd);
    sqe->off = (uint64_t)-1;
    sqe->rw_flags = RWF_NOWAIT;
    sqe->user_data = user_data;
    return 0;
}

/* Forget the filled SQEs, unsubmitted (what a refused submission does to them; the
 * fault-injection tests use it). */
static void ts_uring_discard(ts_uring *r) {
    r->sq_tail -= r->filled;
    r->filled = 0;
}

/* Publish the filled SQEs, submit them and wait until all have completed.  Returns
 * the number of io_uring_enter calls (>= 1), or -errno when the kernel refused the
 * submission (the filled SQEs are then lost: the caller counts them as failed). */
static int ts_uring_submit_wait(ts_uring *r) {
    unsigned submit = r->filled, wait = r->filled, ready;
    int calls = 0;
    long n;
    __atomic_store_n(r->k_sq_tail, r->sq_tail, __ATOMIC_RELEASE);
    r->filled = 0;
    for (;;) {
        ready = __atomic_load_n(r->k_cq_tail, __ATOMIC_ACQUIRE) - *r->k_cq_head;
        if (submit == 0 && ready >= wait)
            return calls;
        n = syscall(__NR_io_uring_enter, r->fd, submit, wait, IORING_ENTER_GETEVENTS, NULL, 0);
        calls++;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EBUSY)
                continue;
            return -errno;
        }
        submit -= (unsigned)n < submit ? (unsigned)n : submit;
    }
}

/* The oldest unseen completion, or NULL. */
static struct io_uring_cqe *ts_uring_cqe(ts_uring *r) {
    unsigned head = *r->k_cq_head;
    if (head == __atomic_load_n(r->k_cq_tail, __ATOMIC_ACQUIRE))
        return NULL;
    return &r->cqes[head & *r->k_cq_mask];
}

static void ts_uring_cqe_seen(ts_uring *r) {
    __atomic_store_n(r->k_cq_head, *r->k_cq_head + 1, __ATOMIC_RELEASE);
}

#else  /* built without <linux/io_uring.h> */

static void ts_uring_close(ts_uring *r) { ts_uring_init(r); }
static int ts_uring_open(ts_uring *r, unsigned entries) { (void)entries; ts_uring_init(r); return -ENOSYS; }
static int ts_uring_register_files(ts_uring *r, unsigned n) { (void)r; (void)n; return -ENOSYS; }
static int ts_uring_file_set(ts_uring *r, unsigned slot, int fd) {
    (void)r; (void)slot; (void)fd;
    return -ENOSYS;
}
static int ts_uring_queue_write(ts_uring *r, int fd, const struct iovec *iov, int iovcnt,
                                uint64_t user_data) {
    (void)r; (void)fd; (void)iov; (void)iovcnt; (void)user_data;
    return -1;
}
static int ts_uring_queue_read(ts_uring *r, int fd, void *buf, uint32_t len, uint64_t user_data) {
    (void)r; (void)fd; (void)buf; (void)len; (void)user_data;
    return -1;
}
static void ts_uring_discard(ts_uring *r) { (void)r; }
static int ts_uring_submit_wait(ts_uring *r) { (void)r; return -ENOSYS; }
static struct io_uring_cqe *ts_uring_cqe(ts_uring *r) { (void)r; return NULL; }
static void ts_uring_cqe_seen(ts_uring *r) { (void)r; }

#endif
#endif
