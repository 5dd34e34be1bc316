# The packet loop's polling after a busy batch (``poll_us``; loop.pxi's _run).
#
# After a batch that forwarded frames, the loop may go on polling (epoll_wait with
# timeout 0) for up to ``budget`` ns before it blocks: a frame that comes meanwhile costs
# its sender no wake-up and the loop no sleep.  An idle loop never polls (an episode only
# begins after a busy batch).  An episode in which the scheduler gave the loop's CPU to
# another task (an involuntary context switch of the loop's thread) for a long stretch
# -- POLL_STOLEN_NS or more of the episode's time not on the loop's CPU -- says the
# core is shared with a task that runs (a busy tenant: polling would take the CPU from
# it): polling is off for POLL_BACKOFF_NS.  A short preemption is a task that woke,
# ran briefly and slept again -- a tenant answering a request on the switch's core, a
# kernel worker, the daemon's own threads -- and costs polling nothing: it got the core
# at once.  (Until session 9 any preemption turned polling off for a second, which left
# a packet thread on a core of its own polling a few percent of the time.)
from libc.stdint cimport int64_t
from fastpath.includes.system cimport now_ns, thread_cpu_ns, thread_preemptions

cdef enum:
    POLL_US_MAX = 1000
    POLL_STOLEN_NS = 250000         # another task held the loop's core this long: shared,
    POLL_BACKOFF_NS = 1000000000    # so no polling for 1 s


cdef struct PollState:
    int64_t budget                  # ns to poll after a busy batch (0: off)
    int64_t off_until               # monotonic ns: no polling before (the core was shared)
    int64_t end                     # polling until then (0: not polling); kept across an
    int64_t start                   # EINTR of the wait (io_uring's task work)
    int64_t preempted               # the thread's preemptions when the episode began
    int64_t cpu                     # the thread's CPU time then (ns)


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
        p.cpu = thread_cpu_ns()
        st.poll_episodes += 1


cdef inline void poll_done(PollState* p, LoopStats* st, bint hit) noexcept nogil:
    """End the episode, if one runs (frames came, the budget ran out, or run() returns):
    count it, and back off if another task held the CPU for long meanwhile."""
    cdef int64_t t
    if not p.end:
        return
    t = now_ns()
    p.end = 0
    st.poll_ns += <uint64_t>(t - p.start)
    if hit:
        st.poll_hits += 1
    if p.preempted >= 0 and thread_preemptions() > p.preempted \
            and (t - p.start) - (thread_cpu_ns() - p.cpu) >= POLL_STOLEN_NS:
        st.poll_shared += 1
        p.off_until = t + POLL_BACKOFF_NS
