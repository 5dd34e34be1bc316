# NamespaceTable: per namespace id, what process() needs -- its L2 scope, whether it is
# an L3, an L3's port, and per L2 scope the generation that route-cache entries are
# filled under and whether it lets directed broadcasts in from other subnets -- as C
# arrays indexed by id, plus the bookkeeping the control API refuses by (an L2's L3
# children, how many addresses a namespace owns).
#
# Generations: Datapath bumps the generation of every scope whose routes, neighbours,
# addresses or ports changed when an update block ends; a route-cache entry is used only
# while its generation is the scope's (route_cache.pxi).  0 is never a generation (an
# empty cache entry holds 0), so a wrapped counter restarts at 1 and the caller clears
# the route cache.


cdef struct NsView:
    const int32_t* scope        # -1: no such namespace
    const uint8_t* l3
    const int32_t* port         # an L3's port, else -1
    const uint32_t* gen         # per L2 scope
    const uint8_t* directed     # per L2 scope: 1 lets routed directed broadcasts in (RFC 2644)


@cython.final
cdef class NamespaceTable:
    cdef readonly int size
    cdef int32_t* scope
    cdef uint8_t* l3
    cdef int32_t* port
    cdef uint32_t* gen
    cdef uint8_t* directed
    cdef dict children              # L2 scope -> set of its L3 namespaces
    cdef dict n_addresses           # namespace -> number of addresses it owns

    def __cinit__(self, int size):
        cdef int k
        self.size = size
        self.scope = <int32_t*>malloc(size * sizeof(int32_t))
        self.l3 = <uint8_t*>calloc(size, sizeof(uint8_t))
        self.port = <int32_t*>malloc(size * sizeof(int32_t))
        self.gen = <uint32_t*>malloc(size * sizeof(uint32_t))
        self.directed = <uint8_t*>calloc(size, sizeof(uint8_t))
        if (self.scope == NULL or self.l3 == NULL or self.port == NULL or self.gen == NULL
                or self.directed == NULL):
            raise MemoryError()
        for k in range(size):
            self.scope[k] = -1
            self.port[k] = -1
            self.gen[k] = 1
        self.children, self.n_addresses = {}, {}

    def __dealloc__(self):
        free(self.scope)
        free(self.l3)
        free(self.port)
        free(self.gen)
        free(self.directed)

    cdef NsView view(self) noexcept nogil:
        cdef NsView v
        v.scope, v.l3, v.port, v.gen = self.scope, self.l3, self.port, self.gen
        v.directed = self.directed
        return v

    # ---- checks (each raises, naming the id, or returns it) -------------------------------

    cdef int check(self, ns_id, what="namespace") except -1:
        if not isinstance(ns_id, int) or not 0 <= ns_id < self.size:
            raise InvalidArgument(f"{what} id {ns_id!r} is not in 0..{self.size - 1}")
        return ns_id

    cdef int existing(self, ns_id, what="namespace") except -1:
        self.check(ns_id, what)
        if self.scope[ns_id] < 0:
            raise NotFound(f"{what} {ns_id} does not exist")
        return ns_id

    cdef int check_scope(self, scope_id) except -1:
        """An existing L2 namespace (the scope of table entries)."""
        self.existing(scope_id, "scope")
        if self.l3[scope_id]:
            raise InvalidArgument(f"scope {scope_id} is an L3 namespace, not an L2")
        return scope_id

    cdef int in_scope(self, ns_id, int scope_id) except -1:
        """An existing namespace of scope ``scope_id``."""
        self.existing(ns_id)
        if self.scope[ns_id] != scope_id:
            raise InvalidArgument(f"namespace {ns_id} is not in scope {scope_id}")
        return ns_id

    # ---- changes --------------------------------------------------------------------------

    cdef bint same(self, int ns_id, int scope_id, bint is_l3) noexcept:
        return self.scope[ns_id] == scope_id and self.l3[ns_id] == is_l3

    cdef int create(self, int ns_id, int scope_id, bint is_l3) except -1:
        self.scope[ns_id] = scope_id
        self.l3[ns_id] = is_l3
        self.port[ns_id] = -1
        if is_l3:
            self.children.setdefault(scope_id, set()).add(ns_id)
        return 0

    cdef int forget(self, int ns_id) except -1:
        if self.l3[ns_id]:
            self.children[self.scope[ns_id]].discard(ns_id)
        else:
            self.children.pop(ns_id, None)
        self.n_addresses.pop(ns_id, None)
        self.scope[ns_id] = -1
        self.l3[ns_id] = 0
        self.port[ns_id] = -1
        self.directed[ns_id] = 0
        return 0

    cdef l3_children(self, int scope_id):
        """The L3 namespaces of an L2 (a set; empty for an L3)."""
        return self.children.get(scope_id, ())

    cdef int count_address(self, int ns_id, int delta) except -1:
        self.n_addresses[ns_id] = self.n_addresses.get(ns_id, 0) + delta
        return 0

    cdef bint bump(self, int scope_id) noexcept:
        """Advance the scope's generation; True when it wrapped (clear the route cache)."""
        self.gen[scope_id] += 1
        if self.gen[scope_id] == 0:
            self.gen[scope_id] = 1
            return True
        return False
