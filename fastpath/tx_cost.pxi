# What writing to a port costs the packet thread, and the hold that bounds it.
#
# A write to a TAP, or a kick of a veth end's transmit ring, runs the receiving kernel
# namespace's stack inside the switch's packet thread: its tc filters, its netfilter rules,
# every packet socket's filter, the delivery to every socket of a multicast group.  A
# tenant sets all of that up in its own namespace, so a tenant decides what each frame
# written to it costs the switch: 20,000 tc filters make it ~1.5 ms, and an accomplice
# sending it 10,000 frames a second then holds the thread for everyone (the victims'
# median ping went from 0.16 to 72 ms; docs/security.md).
#
# So the loop measures each port's cost per frame, and holds a port whose frames cost
# more than ``limit_ns`` each to ``rate_ppm`` of the thread's time: a token bucket in
# nanoseconds, at most ``burst_ns`` deep, charged the estimate as a frame is admitted and
# corrected to what the frame really cost once it is measured.  Frames beyond it are
# dropped, counted (tx_cost_held, per port tx_cost_drops) and captured, and the other
# ports' frames no longer wait behind them.  A port under the limit -- an honest stack
# costs 5-17 us a frame here, the receiving process woken on another CPU included -- is
# never charged: one comparison per frame.
#
# Measuring.  A TAP port's writes are timed one in TX_COST_GAP_MIN..+GAP_SPREAD (a random
# gap, so a tenant cannot tell which of its frames are timed): the write is made at once
# (fd_write) and the clock read around it.  On the io_uring backend the other writes are
# queued and made together; a timed write must not pass one queued to the same port, so
# the queued writes are submitted first (uring_flush).  (Timing only a batch's first
# write to the port instead let a tenant choose which of its frames were timed: a cheap
# one first, an expensive one after it, and none of the expensive ones ever was.)  A
# ring kind's transmit kick is timed every time, for all the frames it sends.  The
# estimate is a moving average (1/8 per measurement) of the cost per frame, each
# measurement counting at most 4x the estimate plus TX_COST_CLAMP_NS.  A port whose
# measurement is over the limit is *watched*: each of its next TX_COST_WATCH_RUN TAP
# writes is timed (a ring kind's frames are kicked one by one after TX_COST_KICK_RUN
# kicks over it in a row), so the estimate of a port that costs too much every time
# crosses the limit within about six frames, and every frame of a port that is
# expensive now and then is measured (Excess, below).  A held port's frames are each
# measured alone (a TAP's written at once, a ring kind's kicked at once): what each
# costs is paid from its bucket, and its hold lifts as soon as its writes are cheap
# again (and what it took beyond the limit is paid back: Excess, below).
#
# Lone outliers.  A measurement over the limit after TX_COST_QUIET_RUN or more under it
# counts at most the limit in the estimate: such outliers alone never lift it past the
# limit.  An honest write is over 100 us in 1-2 % of measurements here (the softirq it
# runs may carry other frames' work; the hypervisor may take the CPU), and more often
# during an attack: the thread runs the attacker's stack for hundreds of microseconds
# of CPU, and the kernel then gives the CPU away at the end of the next system call,
# often a victim's write or kick.  During the slow-stack attack over veth 3-10 % of the
# victims' kicks were over the limit, mostly one at a time; counted in full (4x + 50 us)
# they held a victim once in five runs.  (Kicking a ring port's frames one by one after
# a single one over cost honest TCP over veth 2 %.  Measuring watched ports in the
# thread's CPU time was tried and left out: it misses the part of an attacker's work the
# kernel defers to ksoftirqd, which takes the thread's CPU all the same, and costs a
# system call each time.)
#
# Excess.  The estimate, clamped, answers "does each frame cost too much?"; a tenant that
# makes only one frame in five, or in fifty, expensive (filters only some frames walk)
# slips under it while the thread pays the true average.  So each measurement also adds
# what it took beyond the limit -- in full, unclamped -- to the port's ``excess``, and
# takes off what it took under it (ns - limit x frames); while the port is not held
# the excess also drains with time at the held share (rate_ppm).  The watch makes the
# sum whole: once a frame is over the limit, each of the next TX_COST_WATCH_RUN is
# measured, so frames expensive one in up to that many are all counted.  A port whose
# excess passes TX_COST_EXCESS_NS is held like one whose estimate is over the limit:
# beyond the limit a port may take no more of the thread than a held one is given.  A
# held port's excess drains only through its cheap frames, so a tenant that keeps its
# average over the limit stays held, and one that turns cheap is let go after about
# excess / (limit - cost) measured frames (the excess is kept under 2x
# TX_COST_EXCESS_NS).  Honest outliers, victims' included, drain faster than they come
# (one of 20 ms is needed to hold a port on its own, and is let go ~220 frames later).
# An estimate over the limit holds a port only while its excess is over
# TX_COST_EXCESS_EST_NS too: a port expensive every time is held as fast as before (each
# frame adds a millisecond or more), while a victim whose writes are measured one by one
# after an outlier (the watch) and whose estimate crosses the limit after a few of them
# in a row -- during the sparse-stack attack on a TAP, with an excess of 0 -- is not.
# What this does not bound: a tenant whose frames average at most the limit takes up to
# the limit per frame its accomplices send (docs/security.md).
from libc.stdint cimport int64_t, uint32_t, uint64_t
from fastpath.includes.system cimport now_ns

cdef enum:
    TX_COST_LIMIT_US = 100      # defaults: PacketLoop(tx_cost_limit_us=, tx_cost_share_pct=)
    TX_COST_SHARE_PCT = 10
    TX_COST_LIMIT_US_MAX = 1000000
    TX_COST_GAP_MIN = 8         # frames between two timed writes of a TAP port: 8..23
    TX_COST_GAP_SPREAD = 16
    TX_COST_CLAMP_NS = 50000    # a sample counts at most 4 x the estimate + this
    TX_COST_BURST_NS = 1000000  # a held port's writes: at most 1 ms at once
    TX_COST_KICK_RUN = 2        # a ring kind's kicks over the limit in a row that have it
                                # kick each frame alone
    TX_COST_QUIET_RUN = 4       # measurements under the limit in a row that make the next
                                # one over it a lone outlier
    TX_COST_EXCESS_NS = 20000000    # a port whose excess is over this is held (20 ms)
    TX_COST_EXCESS_EST_NS = 5000000     # one whose estimate is over the limit, once its
                                        # excess is over this (5 ms)
    TX_COST_WATCH_RUN = 32      # measurements after one over the limit that are all taken


cdef struct TxCostPolicy:       # the loop's, one for all its ports
    int64_t limit_ns            # frames costing more than this each are held; 0: never
    int64_t rate_ppm            # a held port's share of the thread's time, per million
    int64_t burst_ns            # its bucket's depth
    uint32_t rng                # xorshift32 state: the gaps between timed writes

cdef struct TxCost:             # a port's (TxSink.cost)
    int64_t ns                  # estimated cost of one frame
    int64_t credit              # a held port's bucket, ns (may go below 0: a debt)
    int64_t credit_at           # when it was last filled (0: never)
    int64_t excess              # measured time beyond the limit not yet paid back, ns
    int64_t excess_at           # when it was last measured (0: never)
    uint64_t queued             # UringTx.flushes + 1 when a write was last queued (io_uring):
                                # one is pending while that is still so
    uint64_t timed_batch        # the batch that last timed a write
    uint64_t drops              # frames dropped while held
    uint64_t samples            # measurements taken
    uint64_t over               # of them, over the limit
    int64_t extra_ns            # added to every ``extra_every``-th measurement
    uint32_t extra_every        # (PacketLoop._tx_cost_extra: tests); 0: none
    uint32_t extra_seen
    uint32_t sample_in          # frames until the next timed write
    uint8_t high                # measurements over the limit in a row
    uint8_t quiet               # measurements under it in a row (saturating)
    uint8_t watch               # measurements left to take one by one (TX_COST_WATCH_RUN)


cdef inline bint tx_cost_held(const TxCostPolicy* pol, const TxCost* c) noexcept nogil:
    """Its frames cost too much: its excess says so, or its estimate does and its frames
    really took that much beyond the limit (a victim's estimate may cross it after a
    few outliers while its cheap frames have paid them back: see Excess at the top)."""
    return pol.limit_ns != 0 and (c.excess > TX_COST_EXCESS_NS or (
        c.ns > pol.limit_ns and c.excess > TX_COST_EXCESS_EST_NS))


cdef inline bint tx_cost_watched(const TxCostPolicy* pol, const TxCost* c) noexcept nogil:
    """Each TAP write to the port is timed: it is held, or one of its last
    TX_COST_WATCH_RUN measurements cost too much."""
    return c.watch != 0 or tx_cost_held(pol, c)


cdef inline bint tx_cost_kick_alone(const TxCostPolicy* pol, const TxCost* c) noexcept nogil:
    """A ring kind kicks each frame to the port alone: it is held, or its last
    TX_COST_KICK_RUN kicks cost too much (an honest kick is over the limit now and then:
    the softirq it runs may carry other frames' work)."""
    return c.high >= TX_COST_KICK_RUN or tx_cost_held(pol, c)


cdef inline uint32_t tx_cost_gap(TxCostPolicy* pol, const TxCost* c) noexcept nogil:
    """Frames until the next timed write: none for a watched port."""
    cdef uint32_t x = pol.rng
    if tx_cost_watched(pol, c):
        return 0
    x ^= x << 13
    x ^= x >> 17
    x ^= x << 5
    pol.rng = x
    return TX_COST_GAP_MIN + (x & (TX_COST_GAP_SPREAD - 1))


cdef inline int64_t tx_cost_extra(TxCost* c) noexcept nogil:
    """What the fault hook adds to this measurement."""
    if c.extra_every == 0:
        return 0
    c.extra_seen += 1
    return c.extra_ns if c.extra_seen % c.extra_every == 0 else 0


cdef inline void tx_cost_stop(const TxCostPolicy* pol, TxCost* c, int64_t t0,
                              uint32_t frames) noexcept nogil:
    """A write or kick of ``frames`` frames that began at ``t0`` (now_ns) is done."""
    cdef int64_t now = now_ns()
    tx_cost_note(pol, c, now - t0 + tx_cost_extra(c), frames, now)


cdef inline void tx_cost_excess(const TxCostPolicy* pol, TxCost* c, int64_t ns,
                                uint32_t frames, int64_t now, bint held) noexcept nogil:
    """Into the excess (see the top): what ``frames`` frames took beyond the limit, less
    what they took under it; first, unless the port is ``held``, the drain since the last."""
    cdef int64_t dt = now - c.excess_at
    if c.excess_at == 0 or dt < 0:
        dt = 0
    elif dt > 1000000000:
        dt = 1000000000                 # more than drains the most it may hold
    if not held:
        c.excess -= dt * pol.rate_ppm // 1000000
    c.excess_at = now
    c.excess += ns - pol.limit_ns * frames
    if c.excess < 0:
        c.excess = 0
    elif c.excess > 2 * TX_COST_EXCESS_NS:
        c.excess = 2 * TX_COST_EXCESS_NS


cdef inline void tx_cost_note(const TxCostPolicy* pol, TxCost* c, int64_t ns,
                              uint32_t frames, int64_t now) noexcept nogil:
    """A write (or kick) of ``frames`` frames took ``ns`` (done at ``now``): into the
    estimate and the excess; a held port's bucket pays what they cost beyond the
    estimate its admission charged."""
    cdef int64_t per, top
    cdef bint held = tx_cost_held(pol, c)
    cdef bint lone = c.quiet >= TX_COST_QUIET_RUN and not held
    if frames == 0 or ns < 0:
        return
    per = ns // frames
    if held:
        c.credit -= ns - c.ns * frames
    if pol.limit_ns != 0:
        tx_cost_excess(pol, c, ns, frames, now, held)
    if pol.limit_ns != 0 and per > pol.limit_ns:
        c.over += 1
        c.quiet = 0
        c.watch = TX_COST_WATCH_RUN
        if c.high < 255:
            c.high += 1
    else:
        c.high = 0
        if c.quiet < 255:
            c.quiet += 1
        if c.watch != 0:
            c.watch -= 1
    top = c.ns * 4 + TX_COST_CLAMP_NS
    if lone and pol.limit_ns != 0 and top > pol.limit_ns:
        top = pol.limit_ns              # a lone outlier (see the top)
    if per > top:
        per = top
    c.ns += (per - c.ns) // 8
    c.samples += 1


cdef inline bint tx_cost_admit(const TxCostPolicy* pol, TxCost* c, int64_t now) noexcept nogil:
    """A held port: may one more frame be written at ``now``?  Its estimate is charged."""
    cdef int64_t dt = now - c.credit_at
    if c.credit_at == 0 or dt > 1000000000:
        dt = 1000000000
    c.credit += dt * pol.rate_ppm // 1000000
    if c.credit > pol.burst_ns:
        c.credit = pol.burst_ns
    c.credit_at = now
    if c.credit < 0:
        return False
    c.credit -= c.ns
    return True
