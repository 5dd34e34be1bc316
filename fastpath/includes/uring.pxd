# The io_uring submission ring of uring.h (raw syscalls, no liburing): what the packet
# loop's io_uring write backend (fastpath/uring.pxi) calls.
from libc.stdint cimport int32_t, uint32_t, uint64_t
from posix.uio cimport iovec

cdef extern from "uring.h" nogil:
    struct io_uring_cqe:
        uint64_t user_data
        int32_t res
    ctypedef struct ts_uring:
        unsigned entries
        unsigned filled
        unsigned nfiles
    int TS_IO_URING_BUILT               # 1 when built with <linux/io_uring.h>
    void ts_uring_init(ts_uring* r)
    int ts_uring_open(ts_uring* r, unsigned entries)            # 0 or -errno
    void ts_uring_close(ts_uring* r)    # waits for the kernel's teardown (uring.h)
    int ts_uring_register_files(ts_uring* r, unsigned n)        # 0 or -errno
    int ts_uring_file_set(ts_uring* r, unsigned slot, int fd)   # fd -1: empty the slot
    # fd: a file descriptor, or -1 - slot for a slot of the registered table
    int ts_uring_queue_write(ts_uring* r, int fd, const iovec* iov, int iovcnt,
                             uint64_t user_data)
    int ts_uring_queue_read(ts_uring* r, int fd, void* buf, uint32_t len, uint64_t user_data)
    void ts_uring_discard(ts_uring* r)  # forget the filled SQEs
    int ts_uring_submit_wait(ts_uring* r)                       # enter calls, or -errno
    io_uring_cqe* ts_uring_cqe(ts_uring* r)                     # oldest unseen, or NULL
    void ts_uring_cqe_seen(ts_uring* r)
