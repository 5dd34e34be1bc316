# McastGroups: the multicast groups of every scope (issue 6).  A group of a scope is a
# McastGroup, found through the demux (DEMUX_MCAST | id): the egress ports of its members
# resolved whenever the members or their ports change, so a frame costs one demux probe
# plus one copy per port; and its counters.  Membership is kept as (scope, group address)
# -> (id, member namespaces) and, per namespace, the groups it is in.
#
# Memory: the McastGroup array grows by doubling (realloc) and a freed id is reused; each
# group's port array grows as its membership does.  Every allocation happens before the
# entry it serves changes, so a MemoryError leaves the groups as they were.


cdef struct McastGroup:
    int32_t* ports      # malloc'd, cap entries; n used (member order, then port id)
    int32_t n, cap
    uint64_t rx_packets # frames sent to the group in its scope
    uint64_t rx_bytes
    uint64_t copies     # copies put in fan-out lists (overflowed ones not included)


def group_order(key):
    """(scope, address) keys of both families in one order: IPv4 (ints) before IPv6
    (IPv6Address), each numerically (the two types do not compare with each other)."""
    return key[0], not isinstance(key[1], int), int(key[1])


@cython.final
cdef class McastGroups:
    cdef McastGroup* groups
    cdef int32_t cap, next_id
    cdef list free_ids
    cdef dict members               # (scope, group address) -> (id, tuple of member namespaces)
    cdef dict of_ns                 # namespace -> set of the (scope, group) it is a member of
    cdef dict of_scope              # scope -> set of its (scope, group) keys

    def __cinit__(self):
        self.groups = NULL
        self.cap = self.next_id = 0
        self.free_ids, self.members, self.of_ns, self.of_scope = [], {}, {}, {}

    def __dealloc__(self):
        cdef int32_t g
        if self.groups != NULL:
            for g in range(self.cap):
                free(self.groups[g].ports)
            free(self.groups)

    cdef McastGroup* view(self) noexcept nogil:
        return self.groups

    cdef lookup(self, key):
        """The member namespaces (sorted) of the group, or None."""
        entry = self.members.get(key)
        return None if entry is None else list(entry[1])

    cdef int32_t new_id(self) except -1:
        """A free group, zeroed (counters start at 0); its entry is made by set()."""
        cdef int32_t gid, cap
        cdef McastGroup* grown
        if self.free_ids:
            gid = self.free_ids.pop()
        else:
            if self.next_id >= self.cap:
                if self.cap >= 1 << 30:
                    raise MemoryError("multicast group table full")
                cap = max(64, self.cap * 2)
                grown = <McastGroup*>realloc(self.groups, <size_t>cap * sizeof(McastGroup))
                if grown == NULL:
                    raise MemoryError("multicast group table")
                memset(&grown[self.cap], 0, <size_t>(cap - self.cap) * sizeof(McastGroup))
                self.groups, self.cap = grown, cap
            gid = self.next_id
            self.next_id += 1
        self.groups[gid].n = 0
        self.groups[gid].rx_packets = self.groups[gid].rx_bytes = self.groups[gid].copies = 0
        return gid

    cdef int release_id(self, int32_t gid) except -1:
        """Give back an id from new_id() that no entry came to use."""
        self.free_ids.append(gid)
        return 0

    cdef int set(self, key, int32_t gid, members, ports) except -1:
        """Group ``key`` (id ``gid``) has ``members`` going out of ``ports``.  MemoryError
        leaves the group as it was."""
        old = self.members.get(key)
        old_members = () if old is None else old[1]
        self.resize(gid, len(ports))
        if old is None:
            self.of_scope.setdefault(key[0], set()).add(key)
        self.members[key] = (gid, members)
        self.write_ports(gid, ports)
        for n in old_members:
            if n not in members:
                self.of_ns[n].discard(key)
        for n in members:
            self.of_ns.setdefault(n, set()).add(key)
        return 0

    cdef int32_t drop(self, key) except -1:
        """Forget the group; returns its id (the caller removes the demux entry)."""
        gid, members = self.members.pop(key)
        for n in members:
            self.of_ns.get(n, set()).discard(key)
        keys = self.of_scope[key[0]]
        keys.discard(key)
        if not keys:
            del self.of_scope[key[0]]
        self.groups[<int32_t>gid].n = 0
        self.release_id(gid)
        return gid

    cdef list keys_of_scope(self, int scope):
        return list(self.of_scope.get(scope, ()))

    cdef list keys_of(self, int ns_id):
        """The groups a namespace is a member of, in order."""
        return sorted(self.of_ns.get(ns_id, ()), key=group_order)

    cdef int forget_member(self, int ns_id) except -1:
        """A namespace that goes leaves its groups (the caller resolves their ports)."""
        for key in sorted(self.of_ns.pop(ns_id, ()), key=group_order):
            gid, members = self.members[key]
            self.members[key] = (gid, tuple(m for m in members if m != ns_id))
        return 0

    cdef int reserve_for(self, int ns_id) except -1:
        """Room for one more port in each group of ns_id (a port change cannot fail halfway)."""
        cdef int32_t gid
        for key in self.of_ns.get(ns_id, ()):
            gid = self.members[key][0]
            self.resize(gid, self.groups[gid].n + 1)
        return 0

    cdef int resize(self, int32_t gid, Py_ssize_t n) except -1:
        """Room for ``n`` ports in group ``gid``."""
        cdef McastGroup* g = &self.groups[gid]
        cdef int32_t* grown
        cdef int32_t cap
        if n > g.cap:
            cap = max(4, n, g.cap * 2)
            grown = <int32_t*>realloc(g.ports, <size_t>cap * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError("multicast group members")
            g.ports, g.cap = grown, cap
        return 0

    cdef int write_ports(self, int32_t gid, ports) except -1:
        """The group's egress ports (room made by resize())."""
        cdef McastGroup* g = &self.groups[gid]
        cdef int32_t k
        for k in range(len(ports)):
            g.ports[k] = ports[k]
        g.n = len(ports)
        return 0

    cdef dict counters(self, keys=None):
        """The counters of the groups ``keys`` (None: all) that exist."""
        cdef McastGroup* g
        out = {}
        for key in (self.members if keys is None else keys):
            entry = self.members.get(key)
            if entry is None:
                continue
            g = &self.groups[<int32_t>entry[0]]
            out[key] = {"rx_packets": int(g.rx_packets), "rx_bytes": int(g.rx_bytes),
                        "copies": int(g.copies)}
        return out
