# ListenerLists: who a broadcast goes to.  List id s < size (a namespace id space) is
# scope s's "every L3 namespace" list (IPv6 link-scope multicast); id size + s is scope
# s's DHCP servers (its L3s whose port is marked as one: where a DHCP client's broadcast
# from 0.0.0.0 goes, ``dhcp_list``); ids from 2 * size on are directed-broadcast lists,
# one per (scope, broadcast address), found through the demux (DEMUX_GROUP | id): the
# L3s on that subnet, also what an IPv4 limited broadcast or link-local multicast from
# the subnet reaches.
# process() walks a list's members and sends a copy to each member's L3 port (an L2
# member has none), never to the sender.
#
# The lists are kept as Python sets / tuples and flattened into three C arrays (first,
# length, members) when an update block ends with a change (rebuild(): the one place that
# allocates; the old arrays are freed only after the new ones are in place).


cdef struct ListenerView:
    const int32_t* first        # list id -> index of its first member in members
    const int32_t* length       # list id -> number of members
    const int32_t* members
    int32_t n                   # list ids 0..n-1
    int32_t dhcp                # scope s's DHCP servers: list id dhcp + s


@cython.final
cdef class ListenerLists:
    cdef int size
    cdef ListenerView v
    cdef dict bcast                 # (scope, address) -> (list id, tuple of namespaces)
    cdef list free_ids
    cdef int next_id
    cdef bint dirty

    def __cinit__(self, int size):
        self.size = size
        self.bcast, self.free_ids, self.next_id = {}, [], 2 * size
        self.dirty = True

    def __dealloc__(self):
        free(<void*>self.v.first)
        free(<void*>self.v.length)
        free(<void*>self.v.members)

    cdef ListenerView view(self) noexcept nogil:
        return self.v

    cdef int set(self, int scope, address, members) except -1:
        """The directed broadcast (scope, address) reaches ``members``; returns its list id."""
        old = self.bcast.get((scope, address))
        if old is not None:
            list_id = old[0]
        elif self.free_ids:
            list_id = self.free_ids.pop()
        else:
            list_id = self.next_id
            self.next_id += 1
        self.bcast[(scope, address)] = (list_id, tuple(members))
        self.dirty = True
        return list_id

    cdef int drop(self, int scope, address) except -1:
        """Forget the list of (scope, address) (present: the caller checked)."""
        list_id, _ = self.bcast.pop((scope, address))
        self.free_ids.append(list_id)
        self.dirty = True
        return 0

    cdef lookup(self, scope, address):
        entry = self.bcast.get((scope, address))
        return None if entry is None else list(entry[1])

    cdef list addresses_of(self, int scope):
        return [a for s, a in self.bcast if s == scope]

    cdef int forget_member(self, int ns_id) except -1:
        """A namespace that goes leaves every list it listens on."""
        for key, (list_id, members) in list(self.bcast.items()):
            if ns_id in members:
                self.bcast[key] = (list_id, tuple(m for m in members if m != ns_id))
        self.dirty = True
        return 0

    cdef int rebuild(self, dict children, dict dhcp_servers) except -1:
        """Flatten the lists (``children``: scope -> its L3 namespaces; ``dhcp_servers``:
        scope -> those whose port is a DHCP server) into the arrays."""
        cdef int32_t n = max(self.next_id, 2 * self.size), k
        lists = [(scope, sorted(l3s)) for scope, l3s in children.items()]
        lists += [(self.size + scope, sorted(l3s)) for scope, l3s in dhcp_servers.items()]
        lists += [(list_id, members) for list_id, members in self.bcast.values()]
        total = sum(len(m) for _, m in lists)
        cdef int32_t* first = <int32_t*>calloc(n, sizeof(int32_t))
        cdef int32_t* length = <int32_t*>calloc(n, sizeof(int32_t))
        cdef int32_t* pool = <int32_t*>malloc((total + 1) * sizeof(int32_t))
        if first == NULL or length == NULL or pool == NULL:
            free(first)
            free(length)
            free(pool)
            raise MemoryError("listener lists")
        k = 0
        for list_id, members in lists:
            first[list_id], length[list_id] = k, len(members)
            for m in members:
                pool[k] = m
                k += 1
        free(<void*>self.v.first)
        free(<void*>self.v.length)
        free(<void*>self.v.members)
        self.v.first, self.v.length, self.v.members, self.v.n = first, length, pool, n
        self.v.dhcp = self.size
        self.dirty = False
        return 0
