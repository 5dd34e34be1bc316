# PacketLoop: the I/O layer.  epoll over the ports' TAP fds, burst reads into a Batch,
# one Datapath decision per batch, then the writes -- all without the GIL.  Python runs
# only between calls of run(): when a wake-up fd (control socket, signal pipe, timer)
# is readable, when frames wait for the slow path, when the timeout passed, on stop().
#
# One batch cycle (_cycle):
#   1. epoll_wait: blocks only when no port is known to hold frames (no busy spin when
#      idle); otherwise polls (timeout 0) to pick up newly readable ports.
#   2. Fill the batch round-robin: one read per active port per round, until the batch
#      is full or every port said EAGAIN (a busy port cannot starve the others; the next
#      batch starts where this one stopped).  Frames land at the batch's default offsets;
#      on a vnet port the 12-byte virtio-net header lands in the headroom right before the
#      frame and is checked there (vnet.pxi); a port without the header gets a zero
#      header written there, so every frame carries one.
#   3. Datapath.process_locked() under the datapath's batch lock.
#   4. Writes: FORWARD -> the out port; FANOUT -> each copy (its own Ethernet header +
#      the frame's body, writev); SLOWPATH -> copied into the slow queue (bounded; the
#      overflow is counted).  Out to a vnet port: header + frame as read.  Out to a port
#      without the header: checksum completed / segmented in software (vnet.pxi).
#
# Backends (chosen at construction: backend="auto"|"epoll"|"io_uring", or the
# TAPSWITCH_IO_BACKEND environment variable; ``loop.backend`` says which runs).  Every
# frame leaves through ``self.tx``:
#   "epoll"     tx_write: one write()/writev() per frame;
#   "io_uring"  tx_uring (uring.pxi): the batch's writes are queued and submitted
#               together at the end of _cycle(), which waits for their completions
#               before the next batch reads into the same buffers.
# Reads are non-blocking read() in both.  "auto" takes io_uring where this build and
# the kernel have it, epoll otherwise.
#
# Thread safety: run(), add_port(), remove_port(), add_wakeup(), remove_wakeup(),
# send(), slow_frames() and close() belong to the thread that runs the loop (the port,
# wake-up and close calls are refused with Busy while run() is running); stop() may be
# called from any thread, and a stop() that comes before run() makes the next run()
# return at once.
#
# close() releases what the loop owns (epoll fd, stop eventfd, io_uring ring and its
# mappings, the buffers) at once instead of when the object is freed; the ports' and
# wake-up fds stay open (they are the caller's).  After it every method but close()
# raises ValueError, as a closed select.epoll does.
import os
import errno as _errno_mod
from libc.stdint cimport int64_t
from libc.errno cimport errno, EAGAIN, EINTR, ENOMEM, EPERM, EOPNOTSUPP
from posix.uio cimport iovec, writev
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memmove
from posix.unistd cimport read, write, close
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from cpython.exc cimport PyErr_CheckSignals
from pyctl.errors import AlreadyExists as _AlreadyExists, Busy as _Busy, \
    InvalidArgument as _InvalidArgument, NotFound as _NotFound, NotSupported as _NotSupported

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    enum:
        EPOLLIN
        EPOLL_CTL_ADD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    enum:
        EFD_NONBLOCK
        EFD_CLOEXEC

cdef enum:
    KIND_PORT = 1
    KIND_WAKEUP = 2
    KIND_STOP = 3
    MAX_EVENTS = 64
    PORT_EOF = -1           # port_failed[p] of a port whose read returned 0 bytes


def _failure_name(int why):
    if why == 0:
        return None
    if why == PORT_EOF:
        return "EOF"
    return _errno_mod.errorcode.get(why, f"errno {why}")

# Loop counters; STAT_NAMES gives their names in stats(), in this order.
cdef struct LoopStats:
    uint64_t batches, epoll_waits, reads, read_bytes, frames_in
    uint64_t writes, frames_out, bytes_out, write_eagain, write_errors, tx_no_port
    uint64_t read_errors, read_eof, rx_oversize, slow_queued, slow_overflow
    uint64_t sw_csum, sw_gso_frames, sw_segments, sw_gso_refused, sent, tx_submits
    uint64_t vnet_drop[VNET_NREASONS]

STAT_NAMES = ("batches", "epoll_waits", "reads", "read_bytes", "frames_in",
              "writes", "frames_out", "bytes_out", "write_eagain", "write_errors", "tx_no_port",
              "read_errors", "read_eof", "rx_oversize", "slow_queued", "slow_overflow",
              "sw_csum", "sw_gso_frames", "sw_segments", "sw_gso_refused", "sent", "tx_submits")


cdef struct UringTx


cdef struct TxSink:
    int fd
    LoopStats* st
    UringTx* uring          # the io_uring backend's ring (NULL: epoll)


cdef int tx_write(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """The epoll+write backend's sink: one write()/writev() per frame; a full queue
    (EAGAIN) or any other error is a counted drop."""
    cdef TxSink* s = <TxSink*>ctx
    cdef ssize_t r
    s.st.tx_submits += 1
    while True:
        if iovcnt == 1:
            r = write(s.fd, iov[0].iov_base, iov[0].iov_len)
        else:
            r = writev(s.fd, iov, iovcnt)
        if r >= 0 or errno != EINTR:
            break
    if r < 0:
        if errno == EAGAIN:
            s.st.write_eagain += 1
        else:
            s.st.write_errors += 1
        return -1
    s.st.writes += 1
    s.st.frames_out += 1
    s.st.bytes_out += <uint64_t>r
    return 0


include "uring.pxi"


# The slow queue: frames for the slow path packed into an arena, one entry per frame,
# bounded in entries and bytes; slow_frames() hands them to Python and empties it.
cdef struct SlowQueue:
    uint8_t* arena
    size_t size, used
    int32_t* port
    uint8_t* reason
    uint32_t* off
    uint32_t* len
    int n, cap
    LoopStats* st
    int32_t cur_port            # port and reason of the frame being queued
    uint8_t cur_reason


cdef int slow_append(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """Queue one frame given as iovecs (a seg_sink: GSO segments land here too); a full
    queue is a counted drop (slow_overflow)."""
    cdef SlowQueue* q = <SlowQueue*>ctx
    cdef size_t total = 0
    cdef int j
    for j in range(iovcnt):
        total += iov[j].iov_len
    if q.n >= q.cap or q.used + total > q.size:
        q.st.slow_overflow += 1
        return -1
    q.port[q.n] = q.cur_port
    q.reason[q.n] = q.cur_reason
    q.off[q.n] = <uint32_t>q.used
    q.len[q.n] = <uint32_t>total
    for j in range(iovcnt):
        memcpy(q.arena + q.used, iov[j].iov_base, iov[j].iov_len)
        q.used += iov[j].iov_len
    q.n += 1
    q.st.slow_queued += 1
    return 0


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef uint8_t ZERO_VNET_HDR[VNET_HDR_LEN]      # static: all zero


cdef class PacketLoop:
    """Forward between TAP fds through a Datapath (see the top of fastpath/io.pxi)."""
    cdef Datapath dp
    cdef readonly Batch batch
    cdef readonly str backend
    cdef int epfd, stopfd, max_ports
    cdef bint running
    cdef bint inited                # __init__ was entered (it runs once: it allocates)
    cdef bint usable                # __init__ completed and close() was not called
    cdef readonly bint closed
    # per port id (the datapath's id space): fd (-1: none), header, active, and why it
    # failed (0: it did not; else the errno of the read that failed it, PORT_EOF for EOF)
    cdef int* port_fd
    cdef uint8_t* port_vnet
    cdef uint8_t* port_active
    cdef int* port_failed
    cdef int32_t* active            # round-robin list of ports that may hold frames
    cdef int active_n, rr
    cdef dict wakeups               # fd -> True
    cdef int ready[MAX_EVENTS]      # wake-up fds seen by the last run()
    cdef int ready_n
    # the batch, as C pointers
    cdef uint8_t* buf
    cdef Py_ssize_t cap, slot_size, headroom
    cdef SlowQueue slow
    cdef LoopStats st
    cdef seg_sink tx                # the backend's write function
    cdef UringTx uring              # the io_uring backend's ring (unused by epoll)
    cdef uint8_t scratch[SEG_SCRATCH]

    def __cinit__(self):
        self.epfd = -1
        self.stopfd = -1
        self.port_fd = NULL
        self.port_vnet = self.port_active = NULL
        self.port_failed = NULL
        self.active = NULL
        memset(&self.slow, 0, sizeof(SlowQueue))
        memset(&self.st, 0, sizeof(LoopStats))
        ts_uring_init(&self.uring.ring)
        self.uring.w = NULL

    def __init__(self, Datapath datapath not None, *, Py_ssize_t batch_size=256,
                 Py_ssize_t slot_size=65536 + 256, Py_ssize_t headroom=64,
                 int slow_queue=1024, Py_ssize_t slow_queue_bytes=1 << 20, backend=None):
        cdef epoll_event ev
        if self.inited:
            raise RuntimeError("PacketLoop is already initialised")
        self.inited = True
        if not 1 <= batch_size <= 4096:
            raise _InvalidArgument(f"batch_size must be in 1..4096, not {batch_size}")
        if not 1 <= slow_queue <= 1 << 20:
            raise _InvalidArgument(f"slow_queue must be in 1..{1 << 20}, not {slow_queue}")
        if not slot_size <= slow_queue_bytes <= 1 << 30:
            raise _InvalidArgument(f"slow_queue_bytes must be in slot_size..{1 << 30}")
        try:
            self.batch = Batch(capacity=batch_size, slot_size=slot_size, headroom=headroom)
        except ValueError as exc:
            raise _InvalidArgument(str(exc)) from None
        self.dp = datapath
        self._choose_backend(backend, batch_size)
        self.buf, self.cap = self.batch.c_buf, batch_size
        self.slot_size, self.headroom = slot_size, headroom
        self.max_ports = datapath.max_ports
        self.port_fd = <int*>malloc(self.max_ports * sizeof(int))
        self.port_vnet = <uint8_t*>calloc(self.max_ports, 1)
        self.port_active = <uint8_t*>calloc(self.max_ports, 1)
        self.port_failed = <int*>calloc(self.max_ports, sizeof(int))
        self.active = <int32_t*>calloc(self.max_ports, sizeof(int32_t))
        self.slow.size, self.slow.cap, self.slow.st = slow_queue_bytes, slow_queue, &self.st
        self.slow.arena = <uint8_t*>malloc(slow_queue_bytes)
        self.slow.port = <int32_t*>malloc(slow_queue * sizeof(int32_t))
        self.slow.reason = <uint8_t*>malloc(slow_queue)
        self.slow.off = <uint32_t*>malloc(slow_queue * sizeof(uint32_t))
        self.slow.len = <uint32_t*>malloc(slow_queue * sizeof(uint32_t))
        if (self.port_fd == NULL or self.port_vnet == NULL or self.port_active == NULL
                or self.port_failed == NULL or self.active == NULL or self.slow.arena == NULL
                or self.slow.port == NULL or self.slow.reason == NULL or self.slow.off == NULL
                or self.slow.len == NULL):
            raise MemoryError()
        for p in range(self.max_ports):
            self.port_fd[p] = -1
        self.wakeups = {}
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.stopfd < 0:
            raise OSError(errno, "eventfd failed")
        ev.events = EPOLLIN
        ev.data.u64 = <uint64_t>KIND_STOP << 32
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.stopfd, &ev) < 0:
            raise OSError(errno, "epoll_ctl(stop eventfd) failed")
        self.usable = True

    cdef _choose_backend(self, backend, Py_ssize_t batch_size):
        """backend: "auto" (io_uring where it runs, else epoll), "epoll" or "io_uring";
        None: the TAPSWITCH_IO_BACKEND environment variable, else "auto"."""
        source = "backend"
        if backend is None:
            backend = _os.environ.get(IO_BACKEND_ENV) or "auto"
            source = IO_BACKEND_ENV
        if backend not in IO_BACKENDS:
            raise _InvalidArgument(f"{source} must be one of {', '.join(IO_BACKENDS)}, "
                                   f"not {backend!r}")
        self.backend, self.tx = "epoll", tx_write
        if backend == "epoll":
            return
        cdef unsigned entries = <unsigned>min(max(batch_size, URING_MIN_ENTRIES), URING_MAX_ENTRIES)
        cdef int err = uring_tx_open(&self.uring, entries)
        if err == 0:
            self.backend, self.tx = "io_uring", tx_uring
        elif backend == "io_uring":
            raise _NotSupported(f"I/O backend io_uring: {uring_unavailable(err)}")

    def close(self):
        """Release the epoll fd, the stop eventfd, the io_uring ring and the buffers now
        (see the top of fastpath/io.pxi); a second call does nothing.  Refused with Busy
        while run() is running."""
        if self.closed:
            return
        if self.running:
            raise _Busy("close() while run() is running (stop() it first)")
        self.closed = True
        self.usable = False
        self._release()
        self.batch = None
        self.dp = None
        self.wakeups = None

    cdef void _release(self) noexcept:
        """Free every C resource the loop owns; what is freed reads NULL / -1 after, so
        close() and __dealloc__ can both call it."""
        uring_tx_close(&self.uring)
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        if self.stopfd >= 0:
            close(self.stopfd)
            self.stopfd = -1
        free(self.port_fd)
        free(self.port_vnet)
        free(self.port_active)
        free(self.port_failed)
        free(self.active)
        free(self.slow.arena)
        free(self.slow.port)
        free(self.slow.reason)
        free(self.slow.off)
        free(self.slow.len)
        self.port_fd = NULL
        self.port_vnet = self.port_active = NULL
        self.port_failed = NULL
        self.active = NULL
        self.active_n = self.rr = self.ready_n = 0
        memset(&self.slow, 0, sizeof(SlowQueue))
        self.buf = NULL

    def __dealloc__(self):
        self._release()

    # ---- ports and wake-ups (between runs) ------------------------------------------

    cdef int _check_open(self, what) except -1:
        if not self.usable:
            if self.closed:
                raise ValueError(f"{what} on a closed PacketLoop")
            raise ValueError(f"{what} on a PacketLoop whose __init__ did not complete")
        return 0

    cdef _not_running(self, what):
        self._check_open(what)
        if self.running:
            raise _Busy(f"{what} while run() is running (call it from the loop's thread)")

    cdef int _check_port_id(self, port_id) except -1:
        if not isinstance(port_id, int) or not 0 <= port_id < self.max_ports:
            raise _InvalidArgument(f"port id {port_id!r} is not in 0..{self.max_ports - 1}")
        return port_id

    cdef _check_new_fd(self, fd, what):
        if not isinstance(fd, int) or fd < 0:
            raise _InvalidArgument(f"{what} fd must be a non-negative int, not {fd!r}")
        if fd in self.wakeups:
            raise _AlreadyExists(f"fd {fd} is already a wake-up fd")
        for p in range(self.max_ports):
            if self.port_fd[p] == fd:
                raise _AlreadyExists(f"fd {fd} is already port {p}")

    cdef _epoll_add(self, int fd, uint64_t tag, what):
        cdef epoll_event ev
        ev.events = EPOLLIN
        ev.data.u64 = tag
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
            e = errno
            raise _InvalidArgument(f"{what}: fd {fd} cannot be polled: {os.strerror(e)}")

    def add_port(self, port_id, fd, vnet_hdr=False):
        """Forward frames of the non-blocking TAP ``fd`` as port ``port_id`` (``vnet_hdr``:
        the fd reads and writes a 12-byte virtio-net header before each frame)."""
        self._not_running("add_port()")
        self._check_port_id(port_id)
        if self.port_fd[port_id] >= 0:
            raise _AlreadyExists(f"port {port_id} already has fd {self.port_fd[port_id]}")
        self._check_new_fd(fd, "port")
        try:
            blocking = os.get_blocking(fd)
        except OSError as exc:
            raise _InvalidArgument(f"port {port_id}: fd {fd}: {exc.strerror}") from None
        if blocking:
            raise _InvalidArgument(f"port {port_id}: fd {fd} must be non-blocking (O_NONBLOCK)")
        self._epoll_add(fd, (<uint64_t>KIND_PORT << 32) | <uint32_t>port_id, f"port {port_id}")
        self.port_fd[port_id] = fd
        self.port_vnet[port_id] = bool(vnet_hdr)
        self.port_failed[port_id] = 0
        self.port_active[port_id] = 0

    def remove_port(self, port_id):
        """Stop polling and writing port ``port_id`` (call it before closing the fd)."""
        self._not_running("remove_port()")
        self._check_port_id(port_id)
        cdef int fd = self.port_fd[port_id]
        cdef int i
        if fd < 0:
            raise _NotFound(f"port {port_id} is not in the loop")
        if not self.port_failed[port_id]:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, NULL)   # gone already if fd was closed
        if self.port_active[port_id]:
            for i in range(self.active_n):
                if self.active[i] == port_id:
                    self._deactivate(i)
                    break
        self.port_fd[port_id] = -1
        self.port_vnet[port_id] = 0
        self.port_failed[port_id] = 0

    def ports(self):
        """{port_id: {"fd", "vnet_hdr", "failed", "error"}}; a failed port gave a read
        error or EOF and is no longer polled (remove_port() and add_port() it again);
        ``error`` is that read's errno name (EBADFD: the TAP was deleted), "EOF", or None."""
        self._check_open("ports()")
        return {p: {"fd": self.port_fd[p], "vnet_hdr": bool(self.port_vnet[p]),
                    "failed": bool(self.port_failed[p]), "error": _failure_name(self.port_failed[p])}
                for p in range(self.max_ports) if self.port_fd[p] >= 0}

    def add_wakeup(self, fd):
        """Make run() return when ``fd`` is readable (it returns the ready fds)."""
        self._not_running("add_wakeup()")
        self._check_new_fd(fd, "wake-up")
        self._epoll_add(fd, (<uint64_t>KIND_WAKEUP << 32) | <uint32_t>fd, "wake-up")
        self.wakeups[fd] = True

    def remove_wakeup(self, fd):
        self._not_running("remove_wakeup()")
        if fd not in self.wakeups:
            raise _NotFound(f"fd {fd!r} is not a wake-up fd")
        del self.wakeups[fd]
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, NULL)

    # ---- running -----------------------------------------------------------------------

    def run(self, int timeout_ms=-1):
        """Forward until a wake-up fd is readable, frames wait in the slow queue, stop()
        was called or ``timeout_ms`` passed (-1: no timeout; 0: one pass).  Returns the
        ready wake-up fds.  A signal interrupting the wait runs its Python handlers here
        (PEP 475): an exception they raise comes out of run(); otherwise the wait goes on
        (a handler that wants run() to return writes to a wake-up fd or calls stop())."""
        self._not_running("run()")
        if timeout_ms < -1:
            raise _InvalidArgument(f"timeout_ms must be -1 or >= 0, not {timeout_ms}")
        if self.dp.updating:
            raise RuntimeError("run() inside datapath.update() would deadlock")
        cdef int64_t deadline = now_ns() + <int64_t>timeout_ms * 1000000 if timeout_ms > 0 else 0
        cdef bint interrupted
        self.running = True
        try:
            while True:
                with nogil:
                    interrupted = self._run(timeout_ms, deadline)
                if not interrupted:
                    break
                PyErr_CheckSignals()
        finally:
            self.running = False
        return [self.ready[i] for i in range(self.ready_n)]

    def stop(self):
        """Make a running run() return promptly (from any thread)."""
        cdef uint64_t one = 1
        self._check_open("stop()")
        # With the GIL held, as close() runs: the eventfd cannot be closed (and its number
        # reused) between the check and the write.  The write never blocks (EFD_NONBLOCK).
        write(self.stopfd, &one, 8)

    cdef bint _run(self, int timeout_ms, int64_t deadline) noexcept nogil:
        """The loop of run(); True when a signal interrupted epoll_wait (EINTR: also
        what io_uring's task work can cause without any signal)."""
        cdef epoll_event ev[MAX_EVENTS]
        cdef int n, j, wait
        cdef int64_t left
        cdef uint64_t tag, drain
        cdef uint32_t ident
        cdef bint stopped = False
        self.ready_n = 0
        while True:
            if self.active_n > 0 or timeout_ms == 0:
                wait = 0
            elif timeout_ms < 0:
                wait = -1
            else:
                left = deadline - now_ns()
                wait = 0 if left <= 0 else <int>((left + 999999) // 1000000)
            n = epoll_wait(self.epfd, ev, MAX_EVENTS, wait)
            self.st.epoll_waits += 1
            if n < 0:
                return True     # EINTR: run() lets Python run the signal handlers
            for j in range(n):
                tag = ev[j].data.u64
                ident = <uint32_t>(tag & 0xFFFFFFFFULL)
                if tag >> 32 == KIND_PORT:
                    if self.port_fd[ident] >= 0 and not self.port_active[ident]:
                        self.port_active[ident] = 1
                        self.active[self.active_n] = ident
                        self.active_n += 1
                elif tag >> 32 == KIND_WAKEUP:
                    self.ready[self.ready_n] = ident
                    self.ready_n += 1
                else:
                    read(self.stopfd, &drain, 8)
                    stopped = True
            if self.active_n > 0 and not stopped:
                self._cycle()
            if self.ready_n or stopped or self.slow.n or timeout_ms == 0:
                return False
            if timeout_ms > 0 and now_ns() >= deadline:
                return False

    cdef void _deactivate(self, int i) noexcept nogil:
        self.port_active[self.active[i]] = 0
        memmove(&self.active[i], &self.active[i + 1], (self.active_n - i - 1) * sizeof(int32_t))
        self.active_n -= 1
        if self.rr > i:
            self.rr -= 1

    cdef void _fail(self, int32_t p, int why) noexcept nogil:
        """A read error (``why``: its errno) or EOF (PORT_EOF): stop polling the port (it
        would report ready forever)."""
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, self.port_fd[p], NULL)
        self.port_failed[p] = why

    cdef int _read_one(self, int32_t p, Py_ssize_t slot) noexcept nogil:
        """Read one frame of port p into batch slot ``slot``: 1 = a frame, 0 = nothing
        usable (a counted drop, or EINTR), -1 = the port is empty, -2 = the port failed."""
        cdef uint32_t off = slot * self.slot_size + self.headroom
        cdef uint8_t* f = self.buf + off
        cdef uint8_t* h = f - VNET_HDR_LEN
        cdef bint vnet = self.port_vnet[p]
        cdef size_t room = self.slot_size - self.headroom + (VNET_HDR_LEN if vnet else 0)
        cdef ssize_t r = read(self.port_fd[p], h if vnet else f, room)
        cdef uint32_t n
        cdef uint8_t why
        if r < 0:
            if errno == EAGAIN:
                return -1
            if errno == EINTR:
                return 0
            self.st.read_errors += 1
            self._fail(p, errno)
            return -2
        if r == 0:
            self.st.read_eof += 1          # a TAP never reads 0 bytes; a closed socket does
            self._fail(p, PORT_EOF)
            return -2
        self.st.reads += 1
        self.st.read_bytes += <uint64_t>r
        if <size_t>r >= room:
            self.st.rx_oversize += 1       # may have been cut short to fit the slot
            return 0
        if vnet:
            if r < VNET_HDR_LEN:
                self.st.vnet_drop[VNET_SHORT] += 1
                return 0
            n = <uint32_t>(r - VNET_HDR_LEN)
            why = vnet_check(h, f, n)
            if why != VNET_OK:
                self.st.vnet_drop[why] += 1
                return 0
        else:
            n = <uint32_t>r
            memset(h, 0, VNET_HDR_LEN)
        self.batch.c_offset[slot] = off
        self.batch.c_length[slot] = n
        self.batch.c_port[slot] = p
        self.st.frames_in += 1
        return 1

    cdef void _cycle(self) noexcept nogil:
        cdef Py_ssize_t count = 0, i, k, end
        cdef int j = self.rr
        cdef int r
        cdef uint8_t v
        while count < self.cap and self.active_n > 0:
            if j >= self.active_n:
                j = 0
            r = self._read_one(self.active[j], count)
            if r < 0:
                self.rr = j
                self._deactivate(j)
                j = self.rr
            else:
                count += r
                j += 1
        self.rr = j
        if count == 0:
            return
        self.batch._count = count
        PyThread_acquire_lock(self.dp.lock, WAIT_LOCK)
        self.dp.process_locked(self.batch)
        PyThread_release_lock(self.dp.lock)
        self.st.batches += 1
        for i in range(count):
            v = self.batch.c_verdict[i]
            if v == VERDICT_FORWARD:
                self._out(i, self.batch.c_out_port[i], NULL)
            elif v == VERDICT_FANOUT:
                self._settle_csum(i)
                end = self.batch.c_fanout_first[i] + self.batch.c_fanout_n[i]
                for k in range(self.batch.c_fanout_first[i], end):
                    self._out(i, self.batch.c_fanout_port[k], self.batch.c_fanout_eth + k * ETH_HLEN)
            elif v == VERDICT_SLOWPATH:
                self._queue_slow(i)
        if self.uring.w != NULL:
            uring_flush(&self.uring, &self.st)     # before the next batch reuses the buffers
        self.batch._count = 0

    cdef void _settle_csum(self, Py_ssize_t i) noexcept nogil:
        """Complete a partial checksum before a frame's fan-out copies go out: a copy to
        a plain port would complete it in place while a vnet copy queued earlier (io_uring)
        still points at the frame.  Completed, the frame is valid for every port."""
        cdef uint8_t* f = self.buf + self.batch.c_offset[i]
        cdef uint8_t* h = f - VNET_HDR_LEN
        if h[0] & VNET_F_NEEDS_CSUM and h[1] == VNET_GSO_NONE:
            vnet_complete_csum(f, self.batch.c_length[i], h)
            self.st.sw_csum += 1

    cdef void _out(self, Py_ssize_t i, int32_t out, const uint8_t* eth) noexcept nogil:
        """Write frame i (with ``eth`` instead of its own Ethernet header, for a fan-out
        copy) to port ``out``, fitted to whether that port has the virtio-net header."""
        cdef TxSink sink
        cdef iovec iov[3]
        cdef uint8_t* f = self.buf + self.batch.c_offset[i]
        cdef uint32_t n = self.batch.c_length[i]
        cdef uint8_t* h = f - VNET_HDR_LEN
        cdef int cnt
        if out < 0 or out >= self.max_ports or self.port_fd[out] < 0:
            self.st.tx_no_port += 1
            return
        sink.fd = self.port_fd[out]
        sink.st = &self.st
        sink.uring = &self.uring
        if self.port_vnet[out]:
            if eth == NULL:
                iov[0].iov_base, iov[0].iov_len = h, VNET_HDR_LEN + n
                cnt = 1
            else:
                iov[0].iov_base, iov[0].iov_len = h, VNET_HDR_LEN
                iov[1].iov_base, iov[1].iov_len = <void*>eth, ETH_HLEN
                iov[2].iov_base, iov[2].iov_len = f + ETH_HLEN, n - ETH_HLEN
                cnt = 3
            self.tx(&sink, iov, cnt)
            return
        if self._segment_or_complete(eth if eth != NULL else f, f, n, h, self.tx, &sink):
            return
        if eth == NULL:
            iov[0].iov_base, iov[0].iov_len = f, n
            cnt = 1
        else:
            iov[0].iov_base, iov[0].iov_len = <void*>eth, ETH_HLEN
            iov[1].iov_base, iov[1].iov_len = f + ETH_HLEN, n - ETH_HLEN
            cnt = 2
        self.tx(&sink, iov, cnt)

    cdef bint _segment_or_complete(self, const uint8_t* eth, uint8_t* f, uint32_t n, uint8_t* h,
                                   seg_sink sink, void* ctx) noexcept nogil:
        """Fit a frame for a destination without the virtio-net header: a GSO super-frame
        goes to ``sink`` as its segments (True: nothing left to write); a partial checksum
        is completed in place (False: the caller writes the frame).  Counted either way."""
        cdef Py_ssize_t segs
        if h[1] != VNET_GSO_NONE:
            segs = gso_segment(eth, f, n, h, self.scratch, sink, ctx)
            if segs < 0:
                self.st.sw_gso_refused += 1
            else:
                self.st.sw_gso_frames += 1
                self.st.sw_segments += <uint64_t>segs
            return True
        if h[0] & VNET_F_NEEDS_CSUM:
            vnet_complete_csum(f, n, h)
            self.st.sw_csum += 1
        return False

    cdef void _queue_slow(self, Py_ssize_t i) noexcept nogil:
        """Copy frame i into the slow queue as the slow path wants it: a frame as on a
        wire (partial checksum completed; a GSO super-frame cut into its segments)."""
        cdef uint8_t* f = self.buf + self.batch.c_offset[i]
        cdef uint32_t n = self.batch.c_length[i]
        cdef uint8_t* h = f - VNET_HDR_LEN
        cdef iovec iov
        self.slow.cur_port = self.batch.c_port[i]
        self.slow.cur_reason = self.batch.c_reason[i]
        if self._segment_or_complete(f, f, n, h, slow_append, &self.slow):
            return
        iov.iov_base, iov.iov_len = f, n
        slow_append(&self.slow, &iov, 1)

    # ---- Python side, between runs -----------------------------------------------------

    def slow_frames(self):
        """The frames the fast path handed to the slow path since the last call:
        [(port_id, reason, bytes)] (Ethernet frames, no virtio-net header)."""
        cdef int k
        self._check_open("slow_frames()")
        out = [(self.slow.port[k], self.slow.reason[k],
                (<char*>self.slow.arena)[self.slow.off[k]:self.slow.off[k] + self.slow.len[k]])
               for k in range(self.slow.n)]
        self.slow.n = 0
        self.slow.used = 0
        return out

    def send(self, port_id, frame):
        """Write a frame the slow path built to ``port_id`` (a zero virtio-net header goes
        in front on a vnet port).  True when written; False when the write failed (a full
        queue or an error, counted in stats())."""
        self._check_open("send()")
        self._check_port_id(port_id)
        cdef int fd = self.port_fd[port_id]
        if fd < 0:
            raise _NotFound(f"port {port_id} is not in the loop")
        cdef const uint8_t[::1] data = frame
        cdef Py_ssize_t n = data.shape[0]
        if not ETH_HLEN <= n <= self.slot_size - self.headroom:
            raise _InvalidArgument(f"a frame is {ETH_HLEN}..{self.slot_size - self.headroom} "
                                   f"bytes, not {n}")
        cdef TxSink sink
        cdef iovec iov[2]
        cdef int cnt = 0
        sink.fd, sink.st, sink.uring = fd, &self.st, NULL
        if self.port_vnet[port_id]:
            iov[0].iov_base, iov[0].iov_len = ZERO_VNET_HDR, VNET_HDR_LEN
            cnt = 1
        iov[cnt].iov_base, iov[cnt].iov_len = <void*>&data[0], n
        cnt += 1
        if tx_write(&sink, iov, cnt) != 0:     # at once, whatever the backend: the caller's bytes
            return False
        self.st.sent += 1
        return True

    def stats(self):
        """The loop's counters (a snapshot), with the backend and the vnet drop reasons."""
        cdef uint64_t* c = <uint64_t*>&self.st
        self._check_open("stats()")
        out = {name: int(c[k]) for k, name in enumerate(STAT_NAMES)}
        for k in range(1, VNET_NREASONS):
            out[VNET_REASON_NAMES[k]] = int(self.st.vnet_drop[k])
        out["slow_pending"] = self.slow.n
        out["backend"] = self.backend
        return out
