# DemuxTable: (L2 scope, destination address) -> who gets the frame.  An AddrHash of one
# address family (IPv6 is a second instance, issue 15), whose value is one of:
#   plen << DEMUX_PLEN_SHIFT | owner id     an address a namespace of the scope owns, with
#                                           the prefix length of its subnet
#   DEMUX_GROUP | listener list id          a directed broadcast address (listeners.pxi)
#   DEMUX_MCAST | multicast group id        a multicast group of the scope (mcast.pxi)
# process() looks the source up (source rule; the sender's subnet from its prefix length)
# and the destination (delivery) with hash4_find(); ``v & DEMUX_OWNER`` is the owner, or
# never a namespace id for a broadcast or group.  The control API below refuses what
# would make an entry ambiguous.

cdef extern from *:
    """
    #define TS_DEMUX_GROUP ((uint64_t)1 << 32)
    #define TS_DEMUX_MCAST (TS_DEMUX_GROUP | ((uint64_t)1 << 33))
    #define TS_DEMUX_OWNER (((uint64_t)1 << 34) - 1)
    """
    const uint64_t DEMUX_GROUP "TS_DEMUX_GROUP"     # value: directed broadcast -> listener list
    const uint64_t DEMUX_MCAST "TS_DEMUX_MCAST"     # value: multicast group -> McastGroup
    const uint64_t DEMUX_OWNER "TS_DEMUX_OWNER"     # the owner id (with the two flags above)

cdef enum:
    DEMUX_PLEN_SHIFT = 40                           # an owned address's prefix length


@cython.final
cdef class DemuxTable(AddrHash):

    cdef int owner(self, int scope, address) except? -2:
        """The namespace owning (scope, address), or -1 (also for a broadcast or group)."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            return <int>(v & DEMUX_OWNER)
        return -1

    cdef int prefix(self, int scope, address) except? -2:
        """The prefix length of an owned address, or -1."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            return <int>(v >> DEMUX_PLEN_SHIFT)
        return -1

    cdef int add_owner(self, int scope, address, int ns, int plen) except -1:
        """(scope, address) is owned by ``ns`` on a subnet of prefix length ``plen``;
        AddressInUse when it is someone else's.  1 for a new address, else 0."""
        cdef uint64_t v
        if self.lookup(scope, address, &v):
            if v & DEMUX_GROUP:
                raise AddressInUse(f"{addr_str(self.family, address)} is a broadcast address "
                                   f"of scope {scope}")
            if v & DEMUX_OWNER != <uint64_t>ns:
                raise AddressInUse(f"{addr_str(self.family, address)} is owned by namespace "
                                   f"{v & DEMUX_OWNER} in scope {scope}")
            self.store(scope, address, ns | (<uint64_t>plen << DEMUX_PLEN_SHIFT))
            return 0
        self.store(scope, address, ns | (<uint64_t>plen << DEMUX_PLEN_SHIFT))
        return 1

    cdef int remove_owner(self, int scope, address) except -1:
        """Forget an owned address; returns its owner.  NotFound when it is not one."""
        cdef uint64_t v
        if not self.lookup(scope, address, &v) or v & DEMUX_GROUP:
            raise NotFound(f"{addr_str(self.family, address)} is not an address of scope {scope}")
        self.remove(scope, address)
        return <int>(v & DEMUX_OWNER)

    cdef int check_free(self, int scope, address) except -1:
        """AddressInUse when a namespace owns (scope, address): it cannot be a broadcast."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            raise AddressInUse(f"{addr_str(self.family, address)} is owned by namespace "
                               f"{v & DEMUX_OWNER} in scope {scope}")
        return 0

    cdef int set_listeners(self, int scope, address, int32_t list_id) except -1:
        """Frames to (scope, address) fan out to listener list ``list_id``."""
        self.check_free(scope, address)
        return self.store(scope, address, DEMUX_GROUP | <uint32_t>list_id)

    cdef int set_group(self, int scope, address, int32_t group_id) except -1:
        """Frames to multicast (scope, address) go to McastGroup ``group_id``."""
        return self.store(scope, address, DEMUX_MCAST | <uint32_t>group_id)
