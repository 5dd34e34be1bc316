# ListenerLists: who a broadcast goes to.  List id s < size (a namespace id space) is
# scope s's "every L3 namespace" list (IPv6 link-scope multicast); id size + s is scope
# s's DHCP servers (its L3s whose port is marked as one: where a DHCP client's broadcast
# from 0.0.0.0 goes); ids from 2 * size on are directed-broadcast lists, one per (scope,
# broadcast address), found through the demux (DEMUX_GROUP | id): the L3s on that
# subnet, also what an IPv4 limited broadcast or link-local multicast from the subnet
# reaches.  process() walks a list's members and sends a copy to each member's L3 port
# (an L2 member has none), never to the sender.
#
# Each list is its own C array of member ids, sorted, changed in place under the batch
# lock: an L3 that comes or goes, or whose port's DHCP-server mark changes, is one
# insertion or removal in its scope's list (a binary search and a memmove), a
# directed-broadcast list is rewritten from its members.  A change costs that list,
# never the others.  Memory: the array of lists grows by
# doubling, each list as its members do; every allocation happens before what it serves
# changes, so a MemoryError leaves the lists as they were.


cdef struct ListenerList:
    int32_t* members            # sorted; cap entries, n used
    int32_t n, cap


cdef struct ListenerView:
    const ListenerList* lists   # by list id
    int32_t n                   # list ids 0..n-1
    int32_t dhcp                # scope s's DHCP servers: list id dhcp + s


@cython.final
cdef class ListenerLists:
    cdef int size
    cdef ListenerList* lists
    cdef int32_t cap
    cdef dict bcast                 # (scope, address) -> list id
    cdef dict of_scope              # scope -> set of its directed-broadcast addresses
    cdef dict of_ns                 # namespace -> set of the (scope, address) it listens on
    cdef list free_ids
    cdef int next_id

    def __cinit__(self, int size):
        self.size = size
        self.bcast, self.of_scope, self.of_ns = {}, {}, {}
        self.free_ids, self.next_id = [], 2 * size
        self.grow(2 * size)

    def __dealloc__(self):
        cdef int32_t k
        if self.lists != NULL:
            for k in range(self.cap):
                free(self.lists[k].members)
            free(self.lists)

    cdef ListenerView view(self) noexcept nogil:
        cdef ListenerView v
        v.lists, v.n, v.dhcp = self.lists, self.cap, self.size
        return v

    cdef int grow(self, int32_t need) except -1:
        """Room for list ids 0..need-1."""
        cdef int32_t cap
        cdef ListenerList* grown
        if need <= self.cap:
            return 0
        cap = max(need, self.cap * 2)
        grown = <ListenerList*>realloc(self.lists, <size_t>cap * sizeof(ListenerList))
        if grown == NULL:
            raise MemoryError("listener lists")
        memset(&grown[self.cap], 0, <size_t>(cap - self.cap) * sizeof(ListenerList))
        self.lists, self.cap = grown, cap
        return 0

    cdef int reserve(self, int32_t list_id, int32_t n) except -1:
        """Room for ``n`` members in list ``list_id``."""
        cdef ListenerList* l = &self.lists[list_id]
        cdef int32_t* grown
        cdef int32_t cap
        if n > l.cap:
            cap = max(4, n, l.cap * 2)
            grown = <int32_t*>realloc(l.members, <size_t>cap * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError("listener list members")
            l.members, l.cap = grown, cap
        return 0

    cdef int32_t find(self, int32_t list_id, int32_t ns) noexcept:
        """Where ``ns`` is, or would go, in the sorted list."""
        cdef ListenerList* l = &self.lists[list_id]
        cdef int32_t lo = 0, hi = l.n, mid
        while lo < hi:
            mid = (lo + hi) // 2
            if l.members[mid] < ns:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef int insert(self, int32_t list_id, int32_t ns) except -1:
        """``ns`` joins list ``list_id`` (once)."""
        cdef ListenerList* l = &self.lists[list_id]
        self.reserve(list_id, l.n + 1)
        cdef int32_t at = self.find(list_id, ns)
        if at < l.n and l.members[at] == ns:
            return 0
        memmove(&l.members[at + 1], &l.members[at], (l.n - at) * sizeof(int32_t))
        l.members[at] = ns
        l.n += 1
        return 0

    cdef int erase(self, int32_t list_id, int32_t ns) except -1:
        """``ns`` leaves list ``list_id`` (if in it)."""
        cdef ListenerList* l = &self.lists[list_id]
        cdef int32_t at = self.find(list_id, ns)
        if at < l.n and l.members[at] == ns:
            memmove(&l.members[at], &l.members[at + 1], (l.n - at - 1) * sizeof(int32_t))
            l.n -= 1
        return 0

    # ---- a scope's every-L3 list and its DHCP servers -------------------------------------

    cdef int reserve_l3(self, int scope) except -1:
        """Room for one more L3 in the scope's list (add_l3 cannot fail then)."""
        return self.reserve(scope, self.lists[scope].n + 1)

    cdef int reserve_dhcp(self, int scope) except -1:
        """Room for one more DHCP server in the scope's list (set_dhcp cannot fail then)."""
        return self.reserve(self.size + scope, self.lists[self.size + scope].n + 1)

    cdef int add_l3(self, int scope, int ns) except -1:
        """L3 ``ns`` joins its scope's list (each L3 once)."""
        return self.insert(scope, ns)

    cdef int remove_l3(self, int scope, int ns) except -1:
        """L3 ``ns`` leaves its scope's lists (the DHCP servers' too)."""
        self.erase(scope, ns)
        return self.erase(self.size + scope, ns)

    cdef int set_dhcp(self, int scope, int ns, bint server) except -1:
        """L3 ``ns``'s port is (``server``) or is not a DHCP server of its scope."""
        if server:
            return self.insert(self.size + scope, ns)
        return self.erase(self.size + scope, ns)

    cdef int forget_scope(self, int scope) except -1:
        """An L2 that goes: its every-L3 and DHCP-server lists empty."""
        self.lists[scope].n = 0
        self.lists[self.size + scope].n = 0
        return 0

    # ---- directed-broadcast lists ----------------------------------------------------------

    cdef int set(self, int scope, address, tuple members) except -1:
        """The directed broadcast (scope, address) reaches ``members`` (sorted, distinct);
        returns its list id."""
        cdef int32_t list_id, k
        key = (scope, address)
        old = self.bcast.get(key)
        if old is not None:
            list_id = old
        else:
            list_id = self.free_ids[len(self.free_ids) - 1] if self.free_ids else self.next_id
            self.grow(list_id + 1)
        self.reserve(list_id, len(members))          # may raise: nothing changed yet
        if old is None:
            if self.free_ids:
                self.free_ids.pop()
            else:
                self.next_id += 1
            self.bcast[key] = list_id
            self.of_scope.setdefault(scope, set()).add(address)
        before = frozenset(self.members_of(list_id))
        after = frozenset(members)
        for n in before - after:
            self._unlisten(n, key)
        for n in after - before:
            self.of_ns.setdefault(n, set()).add(key)
        cdef ListenerList* l = &self.lists[list_id]
        for k in range(len(members)):
            l.members[k] = members[k]
        l.n = len(members)
        return list_id

    cdef int drop(self, int scope, address) except -1:
        """Forget the list of (scope, address) (present: the caller checked)."""
        key = (scope, address)
        list_id = self.bcast.pop(key)
        for n in self.members_of(list_id):
            self._unlisten(n, key)
        self.lists[<int32_t>list_id].n = 0
        self.free_ids.append(list_id)
        addresses = self.of_scope[scope]
        addresses.discard(address)
        if not addresses:
            del self.of_scope[scope]
        return 0

    cdef _unlisten(self, int ns, key):
        keys = self.of_ns[ns]
        keys.discard(key)
        if not keys:
            del self.of_ns[ns]

    cdef list members_of(self, int32_t list_id):
        cdef ListenerList* l = &self.lists[list_id]
        return [l.members[k] for k in range(l.n)]

    cdef lookup(self, scope, address):
        list_id = self.bcast.get((scope, address))
        return None if list_id is None else self.members_of(list_id)

    cdef list addresses_of(self, int scope):
        return list(self.of_scope.get(scope, ()))

    cdef int forget_member(self, int ns_id) except -1:
        """A namespace that goes leaves every directed-broadcast list it listens on."""
        cdef int32_t list_id, at
        cdef ListenerList* l
        for key in self.of_ns.pop(ns_id, ()):
            list_id = self.bcast[key]
            l = &self.lists[list_id]
            at = self.find(list_id, ns_id)
            memmove(&l.members[at], &l.members[at + 1], (l.n - at - 1) * sizeof(int32_t))
            l.n -= 1
        return 0
