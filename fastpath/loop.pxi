# LoopEngine: the I/O loop.  epoll over the ports (port_io.pxi), burst reads into a
# Batch, one Datapath decision per batch, then the writes -- all without the GIL.
# PacketLoop (loop_api.pxi) adds what Python calls: ports, wake-ups, send(), slow frames,
# stats.  Two ways to run it:
#   run()    in the caller's thread, returning to Python between calls: when a wake-up
#            fd (control socket, signal pipe, timer) is readable, when frames wait for
#            the slow path, when the timeout passed, on stop();
#   serve()  in a thread of its own, until stop(): it never needs the GIL.  Slow-path
#            frames wait in the slow handoff (slow_queue.pxi) for the thread that calls
#            slow_frames() (its eventfd, ``slow_fd``, says when); ports are added and
#            removed from other threads, between batches.
#
# One batch cycle (_cycle), under the datapath's batch lock (taken after epoll_wait, given
# back after the cycle; a waiting control thread is let in first: datapath.pxi's handoff):
#   1. epoll_wait (no lock held): blocks only when no port is known to hold frames (no
#      busy spin when idle); otherwise polls (timeout 0) to pick up newly readable ports.
#      With ``poll_us`` set, after a batch that forwarded frames it keeps polling for up
#      to that long before it blocks (poll.pxi).  No epoll_wait at all when the batch
#      before left a ring port holding frames (step 6), as long as fewer than a batch's
#      capacity of frames and RING_SKIP_MAX batches were taken since the last one: that
#      bounds how long a TAP port, a wake-up fd or stop() waits to be seen, as a full
#      batch does (ring_batches counts these).
#   2. Fill the batch round-robin: each active port's rx (its kind's read, tap.pxi) per
#      round, until the batch is full or every port said RX_EMPTY (a busy port cannot
#      starve the others; the next batch starts where this one stopped), or reads took
#      FILL_READS_MAX times the batch's capacity in frames: frames a read drops at once
#      (a counted drop: larger than a slot, a bad virtio-net header) do not fill the
#      batch, and a port flooding them must not hold back the frames already in it.  On the
#      io_uring backend the TAP ports' reads go through its ring, a pass over the ports
#      per io_uring_enter (uring_rx.pxi).
#   3. Datapath.process_locked().
#   4. Writes (egress.pxi): FORWARD -> the out port's tx; FANOUT -> each copy.
#   5. SLOWPATH frames -> within the sender's share (slow_shares.pxi), copied into the slow
#      handoff's filling queue (bounded in all and per namespace, refusals counted), once.
#   6. The ring ports the batch's reads emptied are looked at again (their receive ring's
#      next slot: a memory read, port_io.pxi's ``ready``): frames that came meanwhile make
#      them active, and the next batch starts at once (step 1).  Each ring port the batch
#      touched gives its frames back and kicks its transmit ring -- but when the next
#      batch starts at once, fewer than RING_KICK_MIN new frames wait for its end
#      (END_MORE), never past an epoll_wait or run()'s return: kicks left so are made
#      first (kicks_owed).  After kicks, the emptied ports are looked at once more (frames
#      keep coming while a kick runs, the longest part of a small batch).  A port whose
#      ring still holds frames the kernel refused stays touched: kicked again at the next
#      batch's end, or after at most RING_RETRY_MS of sleep (afpacket.pxi).
#
# Ports of the ring kinds (AF_PACKET, AF_XDP: a RingPort made for this loop) map their
# rings into the loop's FrameArena, whose start is the batch pool (arena.pxi): the batch
# points at their frames in the rings until step 6 (port_io.pxi's ``end``).
#
# Every frame the loop drops on the way (a refused read, a failed write, no port, over the
# MTU, a full slow queue, a spent share) is counted and copied to its port's drop capture.
#
# Write backends (chosen at construction: backend="auto"|"epoll"|"io_uring", or the
# TAPSWITCH_IO_BACKEND environment variable; ``loop.backend`` says which runs): a port's
# tx is fd_write (tap.pxi, one write()/writev() per frame) or tx_uring (uring.pxi: the
# batch's writes queued and submitted together at the end of _cycle(), which waits for
# their completions before the next batch reads into the same buffers).  "auto" takes
# io_uring where this build and the kernel have it, epoll otherwise.
#
# Thread safety: run() and close() belong to one thread, and the port, wake-up and close
# calls are refused with Busy while run() runs in another.  While serve() runs: port
# changes, ports(), stats(), send() and slow_frames() (one consumer thread) may come from
# any thread; wake-up changes and close() are refused.  stop() may be called from any
# thread, and a stop() that comes before run() or serve() makes it return at once.
#
# close() releases what the loop owns (epoll fd, eventfds, io_uring ring and its mappings,
# the buffers) at once instead of when the object is freed; the ports' and wake-up fds
# stay open (they are the caller's).  PacketLoop.close() first lets the ring ports it
# still serves go as remove_port() does (a last kick; what a transmit ring still holds is
# a counted drop).  After it every method but close() and stats() (the counters as close()
# left them) raises ValueError, as a closed select.epoll does.
from libc.errno cimport errno, EAGAIN, EINTR, ENOMEM, EPERM, EOPNOTSUPP
from libc.stdint cimport int64_t
from posix.uio cimport iovec, writev
from libc.string cimport memmove
from posix.unistd cimport read, write, close
from cpython.exc cimport PyErr_CheckSignals
from fastpath.includes.epoll cimport (epoll_event, epoll_create1, epoll_ctl, epoll_wait, EPOLLIN,
                                      EPOLLERR, EPOLLHUP, EPOLL_CTL_ADD, EPOLL_CTL_DEL,
                                      EPOLL_CLOEXEC, eventfd, EFD_NONBLOCK, EFD_CLOEXEC)
from fastpath.includes.system cimport (now_ns, sigset_t, sigfillset, pthread_sigmask, SIG_BLOCK,
                                       SIG_SETMASK)

cdef enum:
    MAX_EVENTS = 64
    RING_SKIP_MAX = 16      # batches in a row without an epoll_wait (step 1)


cdef class LoopEngine:
    """The packet loop's state and its running (see the top of fastpath/loop.pxi);
    PacketLoop (loop_api.pxi) is what Python uses."""
    cdef DatapathTables dp
    cdef readonly Batch batch
    cdef readonly FrameArena arena  # the batch pool, then the ring ports' rings
    cdef dict ring_ports            # port id -> the RingPort served there
    cdef readonly str backend
    cdef LoopPorts port_table
    cdef PortSet* ps                # the ports' C state (owned by port_table)
    cdef int epfd, stopfd
    cdef int nudgefd                # send() left frames in a ring port: retry soon
    cdef bint running
    cdef readonly bint serving      # serve() runs (in another thread)
    cdef bint inited                # __init__ was entered (it runs once: it allocates)
    cdef bint usable                # __init__ completed and close() was not called
    cdef readonly bint closed
    cdef bint taking                # slow_frames() runs (one consumer at a time)
    cdef dict wakeups               # fd -> True
    cdef int ready[MAX_EVENTS]      # wake-up fds seen by the last run()
    cdef int ready_n
    cdef RxBatch rx                 # where the ports' rx put frames (the batch)
    cdef SlowHandoff slow
    cdef LoopStats st               # the loop thread's counters
    cdef LoopStats send_st          # send()'s, from whichever thread calls it
    cdef seg_sink tx                # the backend's write function
    cdef UringTx uring              # the io_uring backend's ring (unused by epoll)
    cdef PollState poll             # polling after a busy batch (poll.pxi)
    cdef TxCostPolicy txcost        # the hold of ports whose frames cost too much (tx_cost.pxi)
    cdef bint skip_wait             # the next batch starts without epoll_wait (step 1)
    cdef bint kicks_owed            # the last batch's end left kicks (END_MORE, step 6)
    cdef Py_ssize_t since_wait      # frames taken since the last epoll_wait
    cdef int batches_since_wait     # batches since the last epoll_wait
    cdef uint8_t scratch[SEG_SCRATCH]

    def __cinit__(self):
        self.epfd = -1
        self.stopfd = -1
        self.nudgefd = -1
        memset(&self.slow, 0, sizeof(SlowHandoff))
        self.slow.efd = -1
        memset(&self.st, 0, sizeof(LoopStats))
        memset(&self.send_st, 0, sizeof(LoopStats))
        ts_uring_init(&self.uring.ring)
        self.uring.w = NULL
        self.uring.r = NULL
        self.uring.holes = NULL
        self.uring.refuse_reads = 0
        self.uring.refuse_slots = 0
        self.uring.cap = NULL

    def __init__(self, DatapathTables datapath not None, *, Py_ssize_t batch_size=256,
                 Py_ssize_t slot_size=65536 + 256, Py_ssize_t headroom=64,
                 int slow_queue=1024, Py_ssize_t slow_queue_bytes=1 << 20, slow_share=None,
                 backend=None, int poll_us=0, int tx_cost_limit_us=TX_COST_LIMIT_US,
                 int tx_cost_share_pct=TX_COST_SHARE_PCT):
        """``slow_queue`` entries and ``slow_queue_bytes`` bytes bound each of the slow
        handoff's two queues, ``slow_share`` the entries of one of them one namespace may
        hold (default: an eighth of ``slow_queue``); ``poll_us``: poll.pxi;
        ``tx_cost_limit_us``, ``tx_cost_share_pct``: tx_cost.pxi (the properties)."""
        cdef epoll_event ev
        if self.inited:
            raise RuntimeError("PacketLoop is already initialised")
        self.inited = True
        datapath._check_inited()
        if not 1 <= batch_size <= 4096:
            raise InvalidArgument(f"batch_size must be in 1..4096, not {batch_size}")
        if not 1 <= slow_queue <= 1 << 20:
            raise InvalidArgument(f"slow_queue must be in 1..{1 << 20}, not {slow_queue}")
        if not slot_size <= slow_queue_bytes <= 1 << 30:
            raise InvalidArgument(f"slow_queue_bytes must be in slot_size..{1 << 30}")
        share = max(1, slow_queue // 8) if slow_share is None else slow_share
        if not isinstance(share, int) or not 1 <= share <= slow_queue:
            raise InvalidArgument(f"slow_share must be in 1..slow_queue, not {slow_share!r}")
        if batch_size * slot_size >= 1 << 32:
            raise InvalidArgument("batch_size * slot_size must stay below 4 GiB (offsets are 32-bit)")
        pool = batch_size * slot_size
        self.arena = FrameArena(pool, (1 << 32) - page_up(pool) - ARENA_PAGE)
        self.poll_us = poll_us
        self.txcost.rng, self.txcost.burst_ns = 0x9E3779B9, TX_COST_BURST_NS
        self.tx_cost_limit_us = tx_cost_limit_us
        self.tx_cost_share_pct = tx_cost_share_pct
        try:
            self.batch = Batch(capacity=batch_size, slot_size=slot_size, headroom=headroom,
                               arena=self.arena)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        self.ring_ports = {}
        self.dp = datapath
        self.backend = open_backend(backend, batch_size, datapath.max_ports, &self.uring)
        self.tx = tx_uring if self.backend == "io_uring" else fd_write
        self.rx.buf, self.rx.slot_size, self.rx.headroom = self.batch.c_buf, slot_size, headroom
        self.rx.offset, self.rx.length = self.batch.c_offset, self.batch.c_length
        self.rx.port, self.rx.st = self.batch.c_port, &self.st
        self.rx.cap = self.uring.cap = &datapath.capring      # the loop's drops are captured
        if handoff_open(&self.slow, slow_queue, slow_queue_bytes, datapath.max_namespaces,
                        share, &self.st) < 0:
            raise MemoryError()
        self.slow.q[0].capture = self.slow.q[1].capture = &datapath.capring
        self.wakeups = {}
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.port_table = LoopPorts(datapath.max_ports, self.epfd)
        self.ps = &self.port_table.ps
        self.stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.stopfd < 0:
            raise OSError(errno, "eventfd failed")
        ev.events = EPOLLIN
        ev.data.u64 = <uint64_t>KIND_STOP << 32
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.stopfd, &ev) < 0:
            raise OSError(errno, "epoll_ctl(stop eventfd) failed")
        self.nudgefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.nudgefd < 0:
            raise OSError(errno, "eventfd failed")
        ev.data.u64 = <uint64_t>KIND_NUDGE << 32
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.nudgefd, &ev) < 0:
            raise OSError(errno, "epoll_ctl(nudge eventfd) failed")
        self.usable = True

    def close(self):
        """Release the epoll fd, the eventfds, the io_uring ring and the buffers now
        (see the top of fastpath/loop.pxi); a second call does nothing.  Refused with Busy
        while run() or serve() is running."""
        if self.closed:
            return
        if self.running:
            raise Busy("close() while the loop is running (stop() it first)")
        self.closed = True
        self.usable = False
        self._release()
        for ring in (self.ring_ports or {}).values():
            (<RingPort>ring).serving = 0
        self.ring_ports = None
        self.port_table = None
        self.batch = None
        self.arena = None
        self.dp = None
        self.wakeups = None

    cdef void _release(self) noexcept:
        """Free every C resource the loop owns; what is freed reads NULL / -1 after, so
        close() and __dealloc__ can both call it."""
        with nogil:
            uring_tx_close(&self.uring)     # waits for the kernel's teardown (uring.pxi)
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        for fd in (self.stopfd, self.nudgefd):
            if fd >= 0:
                close(fd)
        self.stopfd = self.nudgefd = -1
        handoff_close(&self.slow)
        self.ps = NULL
        self.ready_n = 0
        self.rx.buf = NULL

    def __dealloc__(self):
        self._release()

    cdef int _check_open(self, what) except -1:
        if not self.usable:
            if self.closed:
                raise ValueError(f"{what} on a closed PacketLoop")
            raise ValueError(f"{what} on a PacketLoop whose __init__ did not complete")
        return 0

    cdef _not_running(self, what):
        self._check_open(what)
        if self.running:
            raise Busy(f"{what} while the loop is running (call it from the loop's thread)")

    @property
    def poll_us(self):
        """Microseconds the loop polls after a busy batch before it sleeps (0: never)."""
        return self.poll.budget // 1000

    @poll_us.setter
    def poll_us(self, int us):
        if self.running:
            raise Busy("poll_us while run() is running (set it between runs)")
        if not 0 <= us <= POLL_US_MAX:
            raise InvalidArgument(f"poll_us must be in 0..{POLL_US_MAX}, not {us}")
        self.poll.budget = <int64_t>us * 1000

    @property
    def tx_cost_limit_us(self):
        """A port whose frames cost the packet thread more than this many microseconds each
        to write is held to ``tx_cost_share_pct`` of the thread's time (0: never;
        tx_cost.pxi)."""
        return self.txcost.limit_ns // 1000

    @tx_cost_limit_us.setter
    def tx_cost_limit_us(self, int us):
        if not 0 <= us <= TX_COST_LIMIT_US_MAX:
            raise InvalidArgument(f"tx_cost_limit_us must be in 0..{TX_COST_LIMIT_US_MAX}, "
                                  f"not {us}")
        self.txcost.limit_ns = <int64_t>us * 1000      # one aligned store: read per frame

    @property
    def tx_cost_share_pct(self):
        """The share of the packet thread's time a held port's writes may take, in %."""
        return self.txcost.rate_ppm // 10000

    @tx_cost_share_pct.setter
    def tx_cost_share_pct(self, int pct):
        if not 1 <= pct <= 100:
            raise InvalidArgument(f"tx_cost_share_pct must be in 1..100, not {pct}")
        self.txcost.rate_ppm = <int64_t>pct * 10000

    def _refuse_read_submits(self, int n):
        """Fault injection (tests): the next ``n`` submissions of TAP reads on the io_uring
        backend are refused, as the kernel may refuse one (uring_rx.pxi)."""
        self._not_running("_refuse_read_submits()")
        if self.uring.r == NULL:
            raise NotSupported(f"the {self.backend} backend reads without io_uring")
        self.uring.refuse_reads = n

    def _refuse_file_slots(self):
        """Fault injection (tests): ports added from now on get no slot of the io_uring
        ring's registered files, as on a kernel without the table or beyond RLIMIT_NOFILE;
        their requests name their fds (uring.pxi)."""
        self._not_running("_refuse_file_slots()")
        if self.uring.w == NULL:
            raise NotSupported(f"the {self.backend} backend has no io_uring ring")
        self.uring.refuse_slots = 1

    # ---- running -----------------------------------------------------------------------

    def run(self, int timeout_ms=-1):
        """Forward until a wake-up fd is readable, frames wait in the slow queue, stop()
        was called or ``timeout_ms`` passed (-1: no timeout; 0: one pass).  Returns the
        ready wake-up fds.  A signal interrupting the wait runs its Python handlers here
        (PEP 475): an exception they raise comes out of run(); otherwise the wait goes on
        (a handler that wants run() to return writes to a wake-up fd or calls stop())."""
        self._not_running("run()")
        if timeout_ms < -1:
            raise InvalidArgument(f"timeout_ms must be -1 or >= 0, not {timeout_ms}")
        if self.dp.updating_here():
            raise RuntimeError("run() inside datapath.update() would deadlock")
        cdef int64_t deadline = now_ns() + <int64_t>timeout_ms * 1000000 if timeout_ms > 0 else 0
        cdef bint interrupted
        self.running = True
        try:
            while True:
                with nogil:
                    interrupted = self._run(timeout_ms, deadline, False)
                if not interrupted:
                    break
                PyErr_CheckSignals()
        finally:
            poll_done(&self.poll, &self.st, False)
            self.running = False
        return [self.ready[i] for i in range(self.ready_n)]

    def serve(self):
        """Forward in the calling thread until stop(), without the GIL: meant for a thread
        of its own (see the top of fastpath/loop.pxi).  Signals are blocked in this thread
        while it serves (the process's other threads take them).  Wake-up fds are run()'s:
        refused here."""
        cdef sigset_t all_signals, previous
        self._not_running("serve()")
        if self.wakeups:
            raise InvalidArgument("serve() returns only on stop(): remove the wake-up fds "
                                  f"{sorted(self.wakeups)} (they are run()'s)")
        if self.dp.updating_here():
            raise RuntimeError("serve() inside datapath.update() would deadlock")
        self.running = self.serving = True
        try:
            with nogil:
                sigfillset(&all_signals)
                pthread_sigmask(SIG_BLOCK, &all_signals, &previous)
                self._run(-1, 0, True)
                pthread_sigmask(SIG_SETMASK, &previous, NULL)
        finally:
            self.running = self.serving = False

    def stop(self):
        """Make a running run() or serve() return promptly (from any thread)."""
        cdef uint64_t one = 1
        self._check_open("stop()")
        # With the GIL held, as close() runs: the eventfd cannot be closed (and its number
        # reused) between the check and the write.  The write never blocks (EFD_NONBLOCK).
        write(self.stopfd, &one, 8)

    cdef bint _run(self, int timeout_ms, int64_t deadline, bint serving) noexcept nogil:
        """The loop of run() and serve(); True when a signal interrupted epoll_wait in
        run() (EINTR: also what io_uring's task work can cause without any signal; serve()
        just waits again)."""
        cdef epoll_event ev[MAX_EVENTS]
        cdef int n, j
        cdef uint64_t tag, drain, batches
        cdef bint stopped = False, leaving
        self.ready_n = 0
        self.skip_wait = False
        while True:
            if self.skip_wait:          # a ring port holds frames: no epoll_wait (step 1)
                n = 0
                self.dp.lock_for_batch()
                self.st.ring_batches += 1
            else:
                n = self._wait(ev, timeout_ms, deadline)
                if n < 0:
                    if serving:
                        continue
                    return True
            for j in range(n):
                tag = ev[j].data.u64
                if tag >> 32 == KIND_PORT:
                    if ev[j].events & (EPOLLERR | EPOLLHUP):
                        self.ps.port[<int32_t>(tag & 0xFFFFFFFFULL)].error_seen = 1
                    ports_activate(self.ps, <int32_t>(tag & 0xFFFFFFFFULL))
                elif tag >> 32 == KIND_WAKEUP:
                    self.ready[self.ready_n] = <int>(tag & 0xFFFFFFFFULL)
                    self.ready_n += 1
                elif tag >> 32 == KIND_NUDGE:
                    read(self.nudgefd, &drain, 8)
                else:
                    read(self.stopfd, &drain, 8)
                    stopped = True
            if self.ps.active_n > 0 and not stopped:
                batches = self.st.batches
                self._cycle(serving)
                if self.st.batches != batches and self.ps.active_n == 0:
                    poll_begin(&self.poll, &self.st)
            elif self.ps.touched_n > 0 and not stopped:
                ports_end_batch(self.ps, &self.st, END_KICK)  # kick the waiting frames again
            leaving = stopped or not serving and (
                self.ready_n or handoff_pending(&self.slow) or timeout_ms == 0
                or timeout_ms > 0 and now_ns() >= deadline)
            self.skip_wait = (not leaving and self.ps.active_n > 0
                              and self.since_wait < self.batch.capacity
                              and self.batches_since_wait < RING_SKIP_MAX)
            if self.kicks_owed and not self.skip_wait:
                ports_end_batch(self.ps, &self.st, END_KICK)  # before waiting or returning
                self.kicks_owed = False
            if stopped:                 # (run() ends its episode when it returns)
                poll_done(&self.poll, &self.st, False)
            PyThread_release_lock(self.dp.lock)
            if leaving:
                return False

    cdef int _wait(self, epoll_event* ev, int timeout_ms, int64_t deadline) noexcept nogil:
        """Step 1's epoll_wait, then the batch lock: the number of events; -1 (lock not
        held) when it was interrupted."""
        cdef int n, wait
        cdef int64_t left
        if self.ps.active_n > 0 or timeout_ms == 0 or self.poll.end:
            wait = 0
        elif timeout_ms < 0:
            wait = -1
        else:
            left = deadline - now_ns()
            wait = 0 if left <= 0 else <int>((left + 999999) // 1000000)
        if self.ps.touched_n > 0 and (wait < 0 or wait > RING_RETRY_MS):
            wait = RING_RETRY_MS            # frames wait in a transmit ring
        n = epoll_wait(self.epfd, ev, MAX_EVENTS, wait)
        if n < 0:
            # EINTR: a signal, or task work the kernel runs on this thread (an io_uring
            # ring torn down after its close() interrupts the thread that created it
            # once).  Counted apart: not a wait the loop chose; run() lets Python run
            # the signal handlers and waits again, serve() (signals blocked) waits again.
            self.dp.lock_for_batch()
            self.st.epoll_interrupted += 1
            PyThread_release_lock(self.dp.lock)
            return -1
        self.dp.lock_for_batch()
        self.st.epoll_waits += 1
        self.since_wait = self.batches_since_wait = 0
        if wait != 0:
            self.st.waits += 1
        if self.poll.end and self.ps.active_n == 0:
            self.st.polls += 1
            if n > 0 or now_ns() >= self.poll.end:
                poll_done(&self.poll, &self.st, n > 0)
        return n

    cdef void _fill(self) noexcept nogil:
        """Step 2: read the active ports round-robin into the batch (on the io_uring
        backend through its ring: uring_rx.pxi)."""
        if self.uring.r != NULL:
            self.batch._count = uring_fill(&self.uring, self.ps, &self.rx, self.batch.capacity,
                                           &self.st)
            return
        cdef PortSet* ps = self.ps
        cdef Py_ssize_t count = 0, r, reads = 0
        cdef int j = ps.rr
        cdef int32_t p
        cdef Py_ssize_t cap = self.batch.capacity
        ps.emptied_n = 0
        while count < cap and ps.active_n > 0 and reads < FILL_READS_MAX * cap:
            if j >= ps.active_n:
                j = 0
            p = ps.active[j]
            r = ps.port[p].rx(&ps.port[p], p, &self.rx, count, cap - count)
            ports_touch(ps, &ps.port[p], p)
            if r < 0:
                if r == RX_FAILED:
                    port_failed(ps, p)
                elif ps.port[p].ready != NULL:
                    ps.emptied[ps.emptied_n] = p        # looked at again after the batch
                    ps.emptied_n += 1
                ps.rr = j
                ports_deactivate(ps, j)
                j = ps.rr
            else:
                count += r
                reads += r if r > 0 else 1      # a read that placed nothing dropped a frame
                j += 1
        ps.rr = j
        self.batch._count = count

    cdef void _cycle(self, bint serving) noexcept nogil:
        """Steps 2-5 (see the top); the caller holds the datapath's lock."""
        cdef Py_ssize_t i, k, end
        cdef uint8_t v
        cdef uint8_t* f
        cdef uint32_t n, wire
        cdef int32_t op
        cdef bint slow = False
        cdef bint room, more
        self._fill()
        if self.batch._count == 0:
            ports_end_batch(self.ps, &self.st, END_KICK)  # slots a ring kind dropped as it read
            self.kicks_owed = False
            return
        self.dp.process_locked(self.batch)
        self.st.batches += 1
        for i in range(self.batch._count):
            v = self.batch.c_verdict[i]
            f = self.batch.c_buf + self.batch.c_offset[i]
            n = self.batch.c_length[i]
            if v == VERDICT_FORWARD:
                self._out(f, n, self.batch.c_out_port[i], NULL)
            elif v == VERDICT_FANOUT:
                settle_csum(f, n, &self.st)
                wire = frame_wire_len(f, n)
                end = self.batch.c_fanout_first[i] + self.batch.c_fanout_n[i]
                for k in range(self.batch.c_fanout_first[i], end):
                    op = self.batch.c_fanout_port[k]
                    if unlikely(wire > self.dp.ports.mtu[op]):
                        self.st.tx_over_mtu += 1        # a bridged copy: dropped, as a bridge does
                        capture_drop(&self.dp.capring, op, DROP_TX_OVER_MTU,
                                     self.batch.c_fanout_eth + k * ETH_HLEN, f, n)
                        continue
                    self._out(f, n, op, self.batch.c_fanout_eth + k * ETH_HLEN)
            elif v == VERDICT_SLOWPATH:
                slow = True
        if self.uring.w != NULL:
            uring_flush(&self.uring, &self.st)     # before the next batch reuses the buffers
        if slow:
            self._to_slow_path(serving)             # copied out of the rings first
        self.since_wait += self.batch._count
        self.batches_since_wait += 1
        room = self.since_wait < self.batch.capacity and self.batches_since_wait < RING_SKIP_MAX
        more = room and ports_refill(self.ps)      # step 6
        ports_end_batch(self.ps, &self.st, END_MORE if more else END_KICK)
        self.kicks_owed = more                      # ring frames back, transmit rings kicked
        if room and not more:
            ports_refill(self.ps)                   # frames that came during the kicks
        self.batch._count = 0

    cdef void _to_slow_path(self, bint serving) noexcept nogil:
        """Step 5: the batch's SLOWPATH frames into the slow handoff, each within its
        sender's share of the slow path (slow_shares.pxi)."""
        cdef Py_ssize_t i
        cdef int32_t port, ns
        cdef uint8_t reason
        cdef int64_t now = now_ns()
        cdef ShareView* shares = self.dp.shares.view()
        cdef SlowQueue* q = handoff_begin(&self.slow)
        for i in range(self.batch._count):
            if self.batch.c_verdict[i] != VERDICT_SLOWPATH:
                continue
            port = self.batch.c_port[i]
            ns = self.dp.ports.ns[port]
            reason = self.batch.c_reason[i]
            if not share_admit(shares, ns, port, reason_share(reason), now):
                self.st.slow_refused += 1
                capture_drop(&self.dp.capring, port, DROP_SLOW_REFUSED, NULL,
                             self.batch.c_buf + self.batch.c_offset[i], self.batch.c_length[i])
                continue
            queue_slow(q, self.batch.c_buf + self.batch.c_offset[i], self.batch.c_length[i],
                       port, ns, reason, self.scratch, &self.st)
        handoff_end(&self.slow, serving)

    cdef inline void _out(self, uint8_t* f, uint32_t n, int32_t out, const uint8_t* eth) noexcept nogil:
        if out < 0 or out >= self.ps.n or self.ps.port[out].fd < 0:
            self.st.tx_no_port += 1
            capture_drop(&self.dp.capring, out, DROP_TX_NO_PORT, eth, f, n)
            return
        ports_touch(self.ps, &self.ps.port[out], out)
        send_out(&self.ps.port[out], f, n, eth, self.scratch, &self.st)
