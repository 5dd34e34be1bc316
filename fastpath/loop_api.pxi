# PacketLoop: the packet loop as Python uses it -- the ports and wake-ups it serves, the
# slow path's frames (slow_frames(), slow_fd), send() for the frames the slow path builds,
# stats().  The running is LoopEngine's (loop.pxi, whose top says which call may come from
# which thread).  What changes the ports takes the datapath's batch lock (through its
# handoff, datapath.pxi), so a serving loop sees a port change between two batches.


cdef class PacketLoop(LoopEngine):
    """Forward between ports -- TAP fds, ring ports (AfPacketPort, XdpPort) -- through a
    Datapath (see the top of fastpath/loop.pxi)."""
    cdef dict closing_stats          # stats() as close() left them

    def close(self):
        """LoopEngine.close(), after the ring ports still served are let go as
        remove_port() lets one go: a last kick, and what a transmit ring still holds is
        dropped, counted (tx_ring_stuck) and captured.  stats() answers after it with the
        counters as they were then."""
        if not self.closed and self.usable and not self.running:
            self._lock()
            try:
                ports_end_batch(self.ps, &self.st, END_FINAL)
                self.kicks_owed = False
            finally:
                self._unlock()
            self.closing_stats = self.stats()
        LoopEngine.close(self)

    # ---- ports and wake-ups --------------------------------------------------------------

    cdef _changing_ports(self, what):
        self._check_open(what)
        if self.running and not self.serving:
            raise Busy(f"{what} while run() is running (call it from the loop's thread)")
        if self.dp.updating_here():
            raise RuntimeError(f"{what} inside datapath.update() would deadlock")

    cdef int _lock(self) except -1:
        """The datapath's batch lock, as a control thread takes it (between batches)."""
        if self.dp.updating_here():
            raise RuntimeError("the packet loop's calls inside datapath.update() would deadlock")
        with nogil:
            self.dp.lock_for_control()
        return 0

    cdef void _unlock(self) noexcept:
        PyThread_release_lock(self.dp.lock)

    cdef _check_new_fd(self, fd, what):
        if not isinstance(fd, int) or fd < 0:
            raise InvalidArgument(f"{what} fd must be a non-negative int, not {fd!r}")
        if fd in self.wakeups:
            raise AlreadyExists(f"fd {fd} is already a wake-up fd")
        cdef int p = self.port_table.owner_of_fd(fd)
        if p >= 0:
            raise AlreadyExists(f"fd {fd} is already port {p}")

    def add_port(self, port_id, fd, vnet_hdr=False):
        """Forward frames of the non-blocking TAP ``fd`` as port ``port_id`` (``vnet_hdr``:
        the fd reads and writes a 12-byte virtio-net header before each frame); or, with
        a RingPort made for this loop (AfPacketPort, XdpPort) instead of ``fd``, serve
        that port (``vnet_hdr`` is then the kind's)."""
        cdef TxSink sink
        self._changing_ports("add_port()")
        self.port_table.check_id(port_id)
        if self.ps.port[port_id].fd >= 0:
            raise AlreadyExists(f"port {port_id} already has fd {self.ps.port[port_id].fd}")
        if isinstance(fd, RingPort):
            self._add_ring(port_id, fd)
            return
        self._check_new_fd(fd, "port")
        try:
            blocking = os.get_blocking(fd)
        except OSError as exc:
            raise InvalidArgument(f"port {port_id}: fd {fd}: {exc.strerror}") from None
        if blocking:
            raise InvalidArgument(f"port {port_id}: fd {fd} must be non-blocking (O_NONBLOCK)")
        memset(&sink, 0, sizeof(sink))
        sink.policy = &self.txcost
        sink.fd, sink.st, sink.uring, sink.kind = fd, &self.st, &self.uring, NULL
        sink.cap, sink.port = &self.dp.capring, port_id
        sink.skip = VNET_HDR_LEN if vnet_hdr else 0
        self._lock()
        try:
            sink.uring_fd = uring_file_add(&self.uring, port_id, fd)    # epoll: fd itself
            try:
                self.port_table.add(port_id, fd, bool(vnet_hdr), tap_rx, self.tx, sink)
            except BaseException:
                uring_file_remove(&self.uring, sink.uring_fd)
                raise
        finally:
            self._unlock()

    cdef _add_ring(self, port_id, RingPort ring):
        cdef TxSink sink
        ring.check_usable(self.arena)
        self._check_new_fd(ring.poll_fd, "port")
        memset(&sink, 0, sizeof(sink))
        sink.policy = &self.txcost
        sink.fd, sink.st, sink.uring, sink.kind = ring.poll_fd, &self.st, NULL, ring.state
        sink.uring_fd = ring.poll_fd            # never used: a ring kind has its own tx
        sink.cap, sink.port = &self.dp.capring, port_id
        sink.skip = VNET_HDR_LEN if ring.vnet else 0
        self._lock()
        try:
            self.port_table.add(port_id, ring.poll_fd, ring.vnet, ring.rx, ring.tx, sink,
                                ring.end, ring.ready)
        finally:
            self._unlock()
        ring.serving = 1
        self.ring_ports[port_id] = ring

    def remove_port(self, port_id):
        """Stop polling and writing port ``port_id`` (call it before closing the fd)."""
        self._changing_ports("remove_port()")
        port_id = self.port_table.check_id(port_id)
        cdef int uring_fd = self.ps.port[port_id].sink.uring_fd
        self._lock()
        try:
            self.port_table.remove(port_id, &self.st)
            uring_file_remove(&self.uring, uring_fd)    # the ring lets go of the file
        finally:
            self._unlock()
        ring = self.ring_ports.pop(port_id, None)
        if ring is not None:
            (<RingPort>ring).serving = 0

    def ports(self):
        """{port_id: {"fd", "vnet_hdr", "failed", "error", "ring", "registered"}}
        (what writing to each costs: ``tx_cost()``); a failed
        port gave a read error or EOF and is no longer polled (remove_port() and add_port()
        it again); ``error`` is that read's errno name (EBADFD: the TAP was deleted;
        ENETDOWN: a ring port's interface went down or away), "EOF", or None; ``ring``: a
        RingPort; ``registered``: the io_uring backend names its fd by a slot of the ring's
        registered files (uring.pxi)."""
        self._check_open("ports()")
        self._lock()
        try:
            return self.port_table.describe()
        finally:
            self._unlock()

    def tx_cost(self, port_id):
        """What writing to port ``port_id`` costs the packet thread (tx_cost.pxi): {"ns":
        the estimate per frame, "held": bool, "drops": frames dropped while held,
        "samples": measurements taken, "over": of them over the limit, "excess": ns
        taken beyond the limit and not yet paid back}; None
        for a port the loop does not serve.  Read without the batch lock (each figure is
        one aligned load), so asking never holds the packet thread up."""
        self._check_open("tx_cost()")
        port_id = self.port_table.check_id(port_id)
        cdef LoopPort* p = &self.ps.port[port_id]
        if p.fd < 0:
            return None
        return {"ns": p.sink.cost.ns, "held": tx_cost_held(&self.txcost, &p.sink.cost),
                "drops": p.sink.cost.drops, "samples": p.sink.cost.samples,
                "over": p.sink.cost.over, "excess": p.sink.cost.excess}

    def _tx_cost_extra(self, port_id, int ns, int every=1):
        """Fault injection (tests): every measurement of what writing to port ``port_id``
        costs reads ``ns`` more (tx_cost.pxi), as if its namespace's stack were that slow;
        with ``every=N`` only each N-th one (outliers)."""
        if every < 1:
            raise InvalidArgument(f"every must be at least 1, not {every}")
        self._check_open("_tx_cost_extra()")
        port_id = self.port_table.check_id(port_id)
        if self.ps.port[port_id].fd < 0:
            raise NotFound(f"port {port_id} is not in the loop")
        self._lock()
        try:
            self.ps.port[port_id].sink.cost.extra_ns = ns
            self.ps.port[port_id].sink.cost.extra_every = every if ns else 0
            self.ps.port[port_id].sink.cost.extra_seen = 0
        finally:
            self._unlock()

    def add_wakeup(self, fd):
        """Make run() return when ``fd`` is readable (it returns the ready fds)."""
        cdef epoll_event ev
        self._not_running("add_wakeup()")
        self._check_new_fd(fd, "wake-up")
        ev.events = EPOLLIN
        ev.data.u64 = (<uint64_t>KIND_WAKEUP << 32) | <uint32_t>fd
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
            e = errno
            raise InvalidArgument(f"wake-up: fd {fd} cannot be polled: {os.strerror(e)}")
        self.wakeups[fd] = True

    def remove_wakeup(self, fd):
        self._not_running("remove_wakeup()")
        if fd not in self.wakeups:
            raise NotFound(f"fd {fd!r} is not a wake-up fd")
        del self.wakeups[fd]
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, NULL)

    # ---- the slow path's side ------------------------------------------------------------

    @property
    def slow_fd(self):
        """An eventfd that a serving loop makes readable when frames wait for
        slow_frames() (poll it; slow_frames() empties it)."""
        self._check_open("slow_fd")
        return self.slow.efd

    def slow_frames(self):
        """The frames the fast path handed to the slow path since the last call:
        [(port_id, reason, bytes)] (Ethernet frames, no virtio-net header).  One thread at
        a time (another gets Busy)."""
        self._check_open("slow_frames()")
        if self.taking:
            raise Busy("slow_frames() is running in another thread (one consumer at a time)")
        self.taking = True
        try:
            return handoff_take(&self.slow)
        finally:
            self.taking = False

    def send(self, port_id, frame):
        """Write a frame the slow path built to ``port_id`` (a zero virtio-net header goes
        in front on a vnet port), at once, from any thread.  True when written; False when
        the write failed (a full queue or an error, counted in stats()).  A ring port's
        transmit ring is the packet thread's: the frame goes in between two batches, under
        the datapath's batch lock, and is kicked out at once (what the kernel refuses
        for now, the loop's thread kicks again)."""
        cdef int r
        cdef bint waiting = False
        cdef uint64_t one = 1
        self._check_open("send()")
        self.port_table.check_id(port_id)
        cdef LoopPort* p = &self.ps.port[<int>port_id]
        cdef int fd = p.fd
        cdef uint8_t code
        if fd < 0:
            raise NotFound(f"port {port_id} is not in the loop")
        cdef const uint8_t[::1] data = frame
        cdef Py_ssize_t n = data.shape[0]
        if not ETH_HLEN <= n <= self.rx.slot_size - self.rx.headroom:
            raise InvalidArgument(f"a frame is {ETH_HLEN}..{self.rx.slot_size - self.rx.headroom} "
                                  f"bytes, not {n}")
        if p.end != NULL:                   # a ring kind: its tx captures a failed write
            self._lock()
            r = port_send(p, &data[0], n, &self.send_st, &waiting) if p.fd >= 0 else -1
            if waiting:                     # the loop's thread retries them (loop.pxi)
                ports_touch(self.ps, p, port_id)
                write(self.nudgefd, &one, 8)
            self._unlock()
            if r != 0:
                return False
        elif fd_send(fd, p.vnet, &data[0], n, &self.send_st) != 0:  # whatever the backend
            code = DROP_WRITE_EAGAIN if errno == EAGAIN else DROP_WRITE_ERRORS
            if self.dp.capring.on:          # the ring is the packet thread's: under its lock
                self._lock()
                capture_drop(&self.dp.capring, port_id, code, NULL, &data[0], <uint32_t>n)
                self._unlock()
            return False
        self.send_st.sent += 1
        return True

    def stats(self):
        """The loop's counters (a snapshot), with the backend and the vnet drop reasons;
        after close(), those it had when it closed."""
        cdef LoopStats st
        cdef uint64_t* c = <uint64_t*>&st
        cdef const uint64_t* other = <const uint64_t*>&self.send_st
        cdef size_t k
        cdef int pending
        if self.closed and self.closing_stats is not None:
            return dict(self.closing_stats)
        self._check_open("stats()")
        self._lock()
        st = self.st
        self._unlock()
        for k in range(sizeof(LoopStats) // sizeof(uint64_t)):
            c[k] += other[k]
        with nogil:
            handoff_begin(&self.slow)
            pending = handoff_pending(&self.slow)
            handoff_end(&self.slow, False)
        out = {name: int(c[k]) for k, name in enumerate(STAT_NAMES)}
        for v in range(1, VNET_NREASONS):
            out[VNET_REASON_NAMES[v]] = int(st.vnet_drop[v])
        out["slow_pending"] = pending
        out["backend"] = self.backend
        return out
