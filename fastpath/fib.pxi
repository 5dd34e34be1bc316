# FibTable: the routes of every L2 scope in one address family -- per scope that has
# routes, a Dir24Fib (IPv4, dir24.pxi) or an Lpm6Fib (IPv6, lpm6.pxi); the view per scope
# id that process() reads (FibView / Lpm6View); and the next hops the routes point at
# (nexthops.pxi).  One instance per family, the same code: only the per-scope table and
# its view differ.  Prefixes and gateways are ints here (IPv6: 128-bit; gateway 0:
# on-link); the caller (Datapath) checks the arguments; a refused insert leaves routes
# and next hops as they were.


@cython.final
cdef class FibTable:
    cdef readonly int family
    cdef int size
    cdef void* views                # FibView / Lpm6View per scope id; all zero: no route
    cdef size_t view_size
    cdef dict fibs                  # scope -> Dir24Fib / Lpm6Fib
    cdef NextHopTable nexthops

    def __cinit__(self, int family, int size):
        if family != 4 and family != 6:
            raise InvalidArgument(f"family must be 4 or 6, not {family}")
        self.family, self.size = family, size
        self.view_size = sizeof(FibView) if family == 4 else sizeof(Lpm6View)
        self.views = calloc(size, self.view_size)
        if self.views == NULL:
            raise MemoryError()
        self.fibs = {}
        self.nexthops = NextHopTable(family, FIB_MAX_NEXTHOPS)

    def __dealloc__(self):
        free(self.views)

    cdef const FibView* view4(self) noexcept nogil:
        return <const FibView*>self.views

    cdef const Lpm6View* view6(self) noexcept nogil:
        return <const Lpm6View*>self.views

    cdef const void* hops(self) noexcept nogil:
        return self.nexthops.view()

    # ---- the per-scope table, by family ----------------------------------------------------

    cdef bint _get(self, fib, prefix, int plen, uint32_t* nh) except? False:
        if self.family == 4:
            return (<Dir24Fib>fib).get_route(prefix, plen, nh)
        return (<Lpm6Fib>fib).get_route(prefix >> 64, prefix & 0xFFFFFFFFFFFFFFFF, plen, nh)

    cdef int _insert(self, fib, prefix, int plen, uint32_t nh) except -1:
        if self.family == 4:
            return (<Dir24Fib>fib).insert(prefix, plen, nh)
        return (<Lpm6Fib>fib).insert(prefix >> 64, prefix & 0xFFFFFFFFFFFFFFFF, plen, nh)

    cdef int _remove(self, fib, prefix, int plen) except -1:
        if self.family == 4:
            return (<Dir24Fib>fib).remove(prefix, plen)
        return (<Lpm6Fib>fib).remove(prefix >> 64, prefix & 0xFFFFFFFFFFFFFFFF, plen)

    cdef void _publish(self, int scope, fib) noexcept:
        """Write the scope's view (all zero: no route) where process() reads it."""
        cdef char* at = <char*>self.views + <size_t>scope * self.view_size
        if fib is None:
            memset(at, 0, self.view_size)
        elif self.family == 4:
            (<FibView*>at)[0] = (<Dir24Fib>fib).view()
        else:
            (<Lpm6View*>at)[0] = (<Lpm6Fib>fib).view()

    # ---- routes ----------------------------------------------------------------------------

    cdef int add(self, int scope, prefix, int plen, int port_id, gateway) except -1:
        """Add or replace prefix/plen -> (port, gateway) in the scope."""
        cdef uint32_t old = 0, nh
        fib = self.fibs.get(scope)
        if fib is None:
            fib = self.fibs[scope] = Dir24Fib() if self.family == 4 else Lpm6Fib()
        had = self._get(fib, prefix, plen, &old)
        nh = self.nexthops.acquire(port_id, gateway)
        try:
            self._insert(fib, prefix, plen, nh)
        except BaseException:
            self.nexthops.release(nh)
            if len(fib) == 0:
                del self.fibs[scope]
            raise
        if had:
            self.nexthops.release(old)
        self._publish(scope, fib)
        return 0

    cdef bint remove(self, int scope, prefix, int plen) except? False:
        """Remove prefix/plen from the scope; False when it has no such route."""
        cdef uint32_t nh
        fib = self.fibs.get(scope)
        if fib is None or not self._get(fib, prefix, plen, &nh):
            return False
        self._remove(fib, prefix, plen)
        self.nexthops.release(nh)
        if len(fib) == 0:
            del self.fibs[scope]
            fib = None
        self._publish(scope, fib)
        return True

    cdef lookup(self, int scope, address):
        """Longest-prefix match: (port, gateway) or None."""
        cdef uint32_t e
        if self.family == 4:
            e = fib_entry_lookup(&self.view4()[scope], address) & FIB_NH_MASK
        else:
            e = lpm6_lookup(&self.view6()[scope], address >> 64, address & 0xFFFFFFFFFFFFFFFF)
        if e == 0:
            return None
        return (self.nexthops.port_of(e - 1), self.nexthops.gateway_of(e - 1))

    cdef list routes(self, scope):
        """[(prefix, plen, port, gateway)] of the scope, by plen then prefix."""
        fib = self.fibs.get(scope)
        if fib is None:
            return []
        return [(p, l, self.nexthops.port_of(nh), self.nexthops.gateway_of(nh))
                for p, l, nh in fib.routes_list()]

    cdef int forget_scope(self, int scope) except -1:
        """Drop every route of an L2 that goes."""
        fib = self.fibs.pop(scope, None)
        if fib is not None:
            for _, _, nh in fib.routes_list():
                self.nexthops.release(nh)
        self._publish(scope, None)
        return 0
