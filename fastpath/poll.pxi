# The packet loop's polling after a busy batch (``poll_us``; loop.pxi's _run).
#
# After a batch that forwarded frames, the loop may go on polling (epoll_wait with
# timeout 0) for up to ``budget`` ns before it blocks: a frame that comes meanwhile costs
# its sender no wake-up and the loop no sleep.  An idle loop never polls (an episode only
# begins after a busy batch).  An episode in which the scheduler gave the loop's CPU to
# another task (an involuntary context switch of the loop's thread) pauses polling for
# POLL_PAUSE_NS: that task wanted the core, let it run.  When that happens more than
# POLL_SHARED_MAX times within POLL_WINDOW_NS, the core is shared with a busy task (a
# tenant: polling would take the CPU from it) and polling is off for POLL_BACKOFF_NS.
# So a core of the switch's own that a kernel worker or the daemon's other threads visit
# now and then keeps its polling (before, one visit turned it off for a second, and a
# packet thread on a core of its own lost most of what polling saves), while a busy
# tenant on the loop's core gets it back after a handful of short episodes.
from libc.stdint cimport int64_t
from fastpath.includes.system cimport now_ns, thread_preemptions

cdef enum:
    POLL_US_MAX = 1000
    POLL_PAUSE_NS = 1000000         # no polling for 1 ms after an episode cut short,
    POLL_SHARED_MAX = 4             # for 1 s when more than 4 were
    POLL_WINDOW_NS = 100000000      # within 100 ms
    POLL_BACKOFF_NS = 1000000000

cdef struct PollState:
    int64_t budget                  # ns to poll after a busy batch (0: off)
    int64_t off_until               # monotonic ns: no polling before (the core was shared)
    int64_t end                     # polling until then (0: not polling); kept across an
    int64_t start                   # EINTR of the wait (io_uring's task work)
    int64_t preempted               # the thread's preemptions when the episode began
    int64_t window                  # when the episodes cut short being counted began (ns)
    int shared                      # episodes cut short since then


cdef inline void poll_begin(PollState* p, LoopStats* st) noexcept nogil:
    """A batch forwarded frames and no port is known to hold more: poll, unless polling
    is off or backed off."""
    cdef int64_t t
    if not p.budget or p.end:
        return
    t = now_ns()
    if t >= p.off_until:
        p.end, p.start = t + p.budget, t
        p.preempted = thread_preemptions()
        st.poll_episodes += 1


cdef inline void poll_done(PollState* p, LoopStats* st, bint hit) noexcept nogil:
    """End the episode, if one runs (frames came, the budget ran out, or run() returns):
    count it, and back off if another task took the CPU meanwhile."""
    cdef int64_t t
    if not p.end:
        return
    t = now_ns()
    p.end = 0
    st.poll_ns += <uint64_t>(t - p.start)
    if hit:
        st.poll_hits += 1
    if p.preempted >= 0 and thread_preemptions() > p.preempted:
        st.poll_shared += 1
        if t - p.window > POLL_WINDOW_NS:
            p.window, p.shared = t, 0
        p.shared += 1
        if p.shared > POLL_SHARED_MAX:
            p.off_until = t + POLL_BACKOFF_NS
            p.shared = 0
        else:
            p.off_until = t + POLL_PAUSE_NS
