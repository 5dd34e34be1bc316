# libc / POSIX bits of the fast path that Cython's own declarations do not give as such:
# the monotonic clock, sched_yield (the lock handoff), the thread's signal mask (serve()),
# the thread's preemptions and CPU time (polling, poll.pxi).
from libc.stdint cimport int64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID
from posix.resource cimport getrusage, rusage


cdef inline int64_t now_ns() noexcept nogil:
    """The monotonic clock in nanoseconds (the packet loop's timeouts)."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t thread_cpu_ns() noexcept nogil:
    """The CPU time this thread has run, in nanoseconds (polling, poll.pxi)."""
    cdef timespec ts
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef extern from "<sys/resource.h>" nogil:
    enum: RUSAGE_THREAD             # _GNU_SOURCE (Python.h defines it)


cdef inline int64_t thread_preemptions() noexcept nogil:
    """How often the scheduler took this thread's CPU for another task (involuntary
    context switches); -1 if it cannot be read."""
    cdef rusage ru
    if getrusage(RUSAGE_THREAD, &ru) != 0:
        return -1
    return ru.ru_nivcsw


cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "<signal.h>" nogil:
    ctypedef struct sigset_t:
        pass
    int sigfillset(sigset_t* s)
    int pthread_sigmask(int how, const sigset_t* s, sigset_t* old)
    enum:
        SIG_BLOCK
        SIG_SETMASK
