# DatapathTables: the forwarding tables composed, the update lock and generations, the
# batch function's entry and the counters.  Each table is its own unit owning its C memory
# (namespaces.pxi, ports.pxi, demux.pxi, fib.pxi, route_cache.pxi, neighbours.pxi,
# listeners.pxi, mcast.pxi, counters.pxi), the address-keyed ones (demux, neighbours,
# FIB, route cache) once per family; process() hands process.pxi a DpTables snapshot
# of their C views under the batch lock.  Datapath (datapath_api.pxi) adds the control
# API on top: the checked writes and the rules that span tables.
#
# Every write happens inside ``with datapath.update():``, which holds the lock process()
# takes for a whole batch; leaving the block bumps the generation of every scope whose
# routes, neighbours, addresses or ports changed, so route-cache entries filled before are
# never used again.
#
# The lock's handoff.  A packet loop serving in its own thread (loop.pxi, serve()) takes
# the lock for each batch cycle and gives it back between cycles; a lock does not queue
# its waiters, so a busy loop would take it again at once and a control thread waiting
# for it (an update, a port change, a peer MAC) could wait for ever.  A control thread
# therefore says it waits (``waiters``, lock_for_control) and the loop, before its next
# cycle, yields the CPU until the waiter holds the lock (lock_for_batch), at most
# HANDOFF_SPIN_NS: forwarding waits at most one control step plus that.
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock,
                               WAIT_LOCK, NOWAIT_LOCK, PyThread_get_thread_ident)
from fastpath.includes.compiler cimport TS_ATOMIC_ADD, TS_ATOMIC_LOAD
from fastpath.includes.system cimport now_ns, sched_yield

cdef enum:
    HANDOFF_SPIN_NS = 2000000     # the longest the packet loop yields to a waiting control thread


cdef class _UpdateContext:
    cdef DatapathTables dp

    def __enter__(self):
        self.dp._begin_update()
        return self.dp

    def __exit__(self, *exc):
        self.dp._end_update()
        return False


cdef class DatapathTables:
    """The forwarding tables and the batch function (see process.pxi); Datapath's base."""
    cdef readonly int max_namespaces, max_ports, route_cache_size
    cdef PyThread_type_lock lock
    cdef int waiters                # control threads waiting for the lock (see the top)
    cdef bint updating
    cdef unsigned long updater      # the thread inside update() (when updating)
    cdef NamespaceTable ns
    cdef PortTable ports
    cdef DemuxTable demux           # (scope, IPv4) -> owner | broadcast list | group
    cdef NeighbourTable neigh       # (scope, IPv4) -> MAC
    cdef FibTable fib
    cdef RouteCache rcache
    cdef DemuxTable demux6          # the IPv6 instances: (scope, IPv6) -> owner | group
    cdef NeighbourTable neigh6
    cdef FibTable fib6
    cdef RouteCache rcache6
    cdef ListenerLists lists
    cdef McastGroups mcast
    cdef Counters ctr
    cdef SlowShares shares          # each namespace's share of the slow path (the loop asks)
    cdef set dirty_scopes
    cdef bint dirty_all
    cdef CaptureRing capring       # the switch-side capture (capture.pxi); off: one branch

    def __cinit__(self):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        capture_close(&self.capring)
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    def __init__(self, *, int max_namespaces=4096, int max_ports=1024, int route_cache_size=256):
        if self.ns is not None:
            raise RuntimeError("Datapath is already initialised")
        if not 1 <= max_namespaces <= 1 << 24:
            raise InvalidArgument(f"max_namespaces must be in 1..{1 << 24}")
        if not 1 <= max_ports <= 0xFFFF:
            raise InvalidArgument("max_ports must be in 1..65535")
        self.rcache = RouteCache(4, max_namespaces, route_cache_size)
        self.rcache6 = RouteCache(6, max_namespaces, route_cache_size)
        self.max_namespaces, self.max_ports = max_namespaces, max_ports
        self.route_cache_size = route_cache_size
        self.ports = PortTable(max_ports)
        self.demux, self.neigh = DemuxTable(4), NeighbourTable(4)
        self.demux6, self.neigh6 = DemuxTable(6), NeighbourTable(6)
        self.fib, self.fib6 = FibTable(4, max_namespaces), FibTable(6, max_namespaces)
        self.lists, self.mcast = ListenerLists(max_namespaces), McastGroups()
        self.ctr = Counters(max_namespaces, max_ports)
        self.shares = SlowShares(max_namespaces, max_ports)
        self.dirty_scopes, self.dirty_all = set(), False
        self.ns = NamespaceTable(max_namespaces)     # last: __init__ has completed

    # ---- the update lock ------------------------------------------------------------

    def update(self):
        """``with dp.update():`` -- hold the batch lock while writing tables."""
        return _make_ctx(self)

    def _begin_update(self):
        if self.updating_here():
            raise RuntimeError("datapath.update() blocks do not nest")
        self._check_inited()
        with nogil:
            self.lock_for_control()
        self.updating = True
        self.updater = PyThread_get_thread_ident()

    def _end_update(self):
        cdef int s
        try:
            for s in (range(self.max_namespaces) if self.dirty_all else self.dirty_scopes):
                if self.ns.bump(s):             # wrapped: forget every cache entry
                    self.rcache.clear()
                    self.rcache6.clear()
            self.dirty_scopes, self.dirty_all = set(), False
        finally:
            self.updating = False
            PyThread_release_lock(self.lock)

    cdef bint updating_here(self) noexcept:
        """This thread is inside ``update()``: taking the lock again would deadlock."""
        return self.updating and self.updater == PyThread_get_thread_ident()

    cdef void lock_for_control(self) noexcept nogil:
        """Take the lock from a control thread: a serving loop lets it in between two
        cycles (see the top)."""
        if PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            return
        TS_ATOMIC_ADD(&self.waiters, 1)
        PyThread_acquire_lock(self.lock, WAIT_LOCK)
        TS_ATOMIC_ADD(&self.waiters, -1)

    cdef void lock_for_batch(self) noexcept nogil:
        """Take the lock for a batch cycle, after a waiting control thread (at most
        HANDOFF_SPIN_NS of yielding to it)."""
        cdef int64_t until
        if TS_ATOMIC_LOAD(&self.waiters) > 0:
            until = now_ns() + HANDOFF_SPIN_NS
            while TS_ATOMIC_LOAD(&self.waiters) > 0 and now_ns() < until:
                sched_yield()
        PyThread_acquire_lock(self.lock, WAIT_LOCK)

    cdef int _check_inited(self) except -1:
        if self.ns is None:
            raise ValueError("a Datapath whose __init__ did not complete")
        return 0

    cdef _writing(self):
        if not self.updating:
            raise RuntimeError("table writes must happen inside `with datapath.update():`")

    cdef _dirty(self, int scope):
        """The scope's routes, neighbours, addresses or ports changed (see the top)."""
        self.dirty_scopes.add(scope)

    # ---- the batch function -----------------------------------------------------------------

    def process(self, Batch batch not None):
        """Decide every frame of ``batch`` (see batch.pxi for what is filled in)."""
        self._process(batch)

    cdef int _process(self, Batch batch) except -1:
        """Python-side entry (GIL held on entry; released while frames are decided)."""
        if self.updating_here():
            raise RuntimeError("process() inside datapath.update() would deadlock")
        self._check_inited()
        if batch.span > batch.pool_size:
            _check_in_pool(batch)
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            with nogil:
                self.lock_for_control()
        try:
            if batch._count > 16:
                with nogil:
                    self.process_locked(batch)
            else:
                self.process_locked(batch)
        finally:
            PyThread_release_lock(self.lock)
        return 0

    cdef void process_locked(self, Batch batch) noexcept nogil:
        """Decide every frame of ``batch``; the caller holds ``self.lock``.  The packet
        loop (loop.pxi) calls this between its reads and writes without the GIL; its
        frames may lie anywhere in the batch's span (the rings of its ports)."""
        cdef DpTables t
        cdef BatchView bv
        t.max_ns, t.max_ports = self.max_namespaces, self.max_ports
        t.ipv6 = decide6
        t.ns, t.ports = self.ns.view(), self.ports.view()
        t.demux, t.neigh = self.demux.view(), self.neigh.view()
        t.fib, t.nh, t.rc = self.fib.view4(), <const NextHop4*>self.fib.hops(), self.rcache.view()
        t.demux6, t.neigh6 = self.demux6.view(), self.neigh6.view()
        t.fib6, t.nh6, t.rc6 = self.fib6.view6(), <const NextHop6*>self.fib6.hops(), self.rcache6.view()
        t.lists, t.mgroups, t.ctr = self.lists.view(), self.mcast.view(), self.ctr.view()
        bv.buf, bv.pool_size, bv.count = batch.c_buf, batch.span, batch._count
        bv.offset, bv.length, bv.port = batch.c_offset, batch.c_length, batch.c_port
        bv.verdict, bv.reason, bv.out_port = batch.c_verdict, batch.c_reason, batch.c_out_port
        bv.fanout_first, bv.fanout_n = batch.c_fanout_first, batch.c_fanout_n
        bv.fanout_port, bv.fanout_frame = batch.c_fanout_port, batch.c_fanout_frame
        bv.fanout_eth, bv.max_fanout = batch.c_fanout_eth, batch.max_fanout
        if self.capring.on:
            capture_received(&self.capring, batch)
        process_batch(&t, &bv)
        batch.fanout_count = bv.fanout_count
        if self.capring.on:
            capture_decided(&self.capring, batch)

    # ---- the switch-side capture (capture.pxi) ------------------------------------------

    def capture_select(self, selection, *, int entries=8192, Py_ssize_t size=8 << 20):
        """Capture, from now, for ``{port_id: flags}`` (CAPTURE_RECEIVED | CAPTURE_SENT |
        CAPTURE_DROPPED) the frames of those ports; empty: capture off, the ring freed.
        The ring (``entries`` copies, ``size`` bytes) is allocated when capture starts."""
        self._check_inited()
        wanted = {}
        for port, flags in dict(selection).items():
            if not 0 <= port < self.max_ports:
                raise InvalidArgument(f"port {port} is not in 0..{self.max_ports - 1}")
            if not 0 < flags <= (CAP_RX | CAP_TX | CAP_DROP):
                raise InvalidArgument(f"capture flags {flags} of port {port}")
            wanted[port] = flags
        if wanted and self.capring.arena == NULL:
            if not (1 <= entries <= 1 << 20 and CAP_SNAP <= size <= 1 << 30):
                raise InvalidArgument(f"a capture ring of {entries} entries, {size} bytes")
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
            try:
                if capture_open(&self.capring, self.max_ports, entries, size) != 0:
                    capture_close(&self.capring)
                    raise MemoryError("capture ring")
            finally:
                PyThread_release_lock(self.lock)
        if self.capring.arena == NULL:
            return
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        memset(self.capring.want, 0, self.max_ports)
        for port, flags in wanted.items():
            self.capring.want[<int>port] = <uint8_t>flags
        self.capring.on = bool(wanted)
        if not wanted:
            capture_close(&self.capring)
        PyThread_release_lock(self.lock)

    def capture_take(self):
        """The copies since the last call: [(port, CAPTURE_* direction, reason code,
        wall-clock ns, original length, bytes)] (bytes: at most 65535 of the frame)."""
        if self.capring.arena == NULL:
            return []
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            return capture_take(&self.capring)
        finally:
            PyThread_release_lock(self.lock)

    def capture_stats(self):
        """{"on", "copied", "overflow"} of the current ring (a new ring starts at 0)."""
        return {"on": bool(self.capring.on), "copied": int(self.capring.copied),
                "overflow": int(self.capring.overflow)}

    # ---- counters --------------------------------------------------------------------------

    def counters(self, namespaces=None, ports=None, groups=None):
        """{"reasons": {name: n}, "ports": {id: {...}}, "namespaces": {id: {..., "reasons": {...}}},
        "groups": {(scope, group ip): {"rx_packets", "rx_bytes", "copies"}}}.
        Reasons count both drops and slow-path hand-offs (verdicts.reason_verdict tells which);
        namespace reasons are charged to the sending namespace, as are its frames refused
        over its share of the slow path ("slow_refused": {share: n}).  ``namespaces``, ``ports``
        and ``groups`` (ids, ids, (scope, group) keys) read only those (None: all), so a
        read costs its answer; ids that do not exist are left out.  Read while the loop
        runs: each counter whole, the set not of one instant."""
        if namespaces is None:
            namespaces = range(self.max_namespaces)
        if ports is None:
            ports = range(self.max_ports)
        return {"reasons": self.ctr.reasons(),
                "ports": {p: self.ctr.port_traffic(p) for p in ports
                          if 0 <= p < self.max_ports and self.ports.ns[p] >= 0},
                "namespaces": {n: {**self.ctr.ns_traffic(n), "slow_refused": self.shares.refused(n)}
                               for n in namespaces
                               if 0 <= n < self.max_namespaces and self.ns.scope[n] >= 0},
                "groups": self.mcast.counters(groups)}

    def group_keys(self, scope_id):
        """The (scope, group) keys of the scope's multicast groups."""
        return self.mcast.keys_of_scope(scope_id)


cdef int _check_in_pool(Batch batch) except -1:
    """A batch handed in from Python is decided only where Python could have put its
    frames: in the pool (a packet loop's batch also spans its ports' rings, which the
    loop alone fills)."""
    cdef Py_ssize_t i
    for i in range(batch._count):
        if <uint64_t>batch.c_offset[i] + batch.c_length[i] > <uint64_t>batch.pool_size:
            raise InvalidArgument(f"frame {i} lies outside the batch's pool")
    return 0


def _make_ctx(DatapathTables dp):
    cdef _UpdateContext c = _UpdateContext.__new__(_UpdateContext)
    c.dp = dp
    return c
