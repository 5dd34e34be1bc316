# FibTable: the IPv4 routes of every L2 scope -- a Dir24Fib per scope that has routes
# (dir24.pxi), the FibView per scope id that process() reads, and the next hops the
# routes point at (nexthops.pxi).  The caller (Datapath) checks the arguments; a refused
# insert leaves routes and next hops as they were.


@cython.final
cdef class FibTable:
    cdef int size
    cdef FibView* views             # per scope id; all zero: no route
    cdef dict fibs                  # scope -> Dir24Fib
    cdef NextHopTable nexthops

    def __cinit__(self, int size):
        self.size = size
        self.views = <FibView*>calloc(size, sizeof(FibView))
        if self.views == NULL:
            raise MemoryError()
        self.fibs = {}
        self.nexthops = NextHopTable(4, FIB_MAX_NEXTHOPS)

    def __dealloc__(self):
        free(self.views)

    cdef const FibView* view(self) noexcept nogil:
        return self.views

    cdef const NextHop4* hops(self) noexcept nogil:
        return <const NextHop4*>self.nexthops.view()

    cdef int add(self, int scope, uint32_t prefix, int plen, int port_id, uint32_t gateway) except -1:
        """Add or replace prefix/plen -> (port, gateway) in the scope."""
        cdef uint32_t old = 0, nh
        cdef Dir24Fib fib = self.fibs.get(scope)
        if fib is None:
            fib = self.fibs[scope] = Dir24Fib()
        had = fib.get_route(prefix, plen, &old)
        nh = self.nexthops.acquire(port_id, gateway)
        try:
            fib.insert(prefix, plen, nh)
        except BaseException:
            self.nexthops.release(nh)
            if len(fib) == 0:
                del self.fibs[scope]
            raise
        if had:
            self.nexthops.release(old)
        self.views[scope] = fib.view()
        return 0

    cdef bint remove(self, int scope, uint32_t prefix, int plen) except? False:
        """Remove prefix/plen from the scope; False when it has no such route."""
        cdef uint32_t nh
        cdef Dir24Fib fib = self.fibs.get(scope)
        if fib is None or not fib.get_route(prefix, plen, &nh):
            return False
        fib.remove(prefix, plen)
        self.nexthops.release(nh)
        if len(fib) == 0:
            del self.fibs[scope]
        self.views[scope] = fib.view()
        return True

    cdef lookup(self, int scope, uint32_t ip):
        """Longest-prefix match: (port, gateway) or None."""
        cdef uint32_t e = fib_entry_lookup(&self.views[scope], ip)
        cdef const NextHop4* hop
        if e == 0:
            return None
        hop = &self.hops()[(e & FIB_NH_MASK) - 1]
        return (int(hop.port), int(hop.gw))

    cdef list routes(self, scope):
        """[(prefix, plen, port, gateway)] of the scope, by plen then prefix."""
        fib = self.fibs.get(scope)
        if fib is None:
            return []
        return [(p, l, self.nexthops.port_of(nh), self.nexthops.gateway_of(nh))
                for p, l, nh in (<Dir24Fib>fib).routes_list()]

    cdef int forget_scope(self, int scope) except -1:
        """Drop every route of an L2 that goes."""
        fib = self.fibs.pop(scope, None)
        if fib is not None:
            for _, _, nh in (<Dir24Fib>fib).routes_list():
                self.nexthops.release(nh)
        memset(&self.views[scope], 0, sizeof(FibView))
        return 0
