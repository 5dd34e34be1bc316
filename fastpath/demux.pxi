# DemuxTable: (L2 scope, destination address) -> who gets the frame.  An AddrHash of one
# address family (IPv6 is a second instance, issue 15), whose value is one of:
#   owner namespace id                      an address a namespace of the scope owns
#   DEMUX_GROUP | listener list id          a directed broadcast address (listeners.pxi)
#   DEMUX_MCAST | multicast group id        a multicast group of the scope (mcast.pxi)
# process() looks the source up (source rule) and the destination (delivery) with
# hash4_find(); the control API below refuses what would make an entry ambiguous.

cdef extern from *:
    """
    #define TS_DEMUX_GROUP ((uint64_t)1 << 32)
    #define TS_DEMUX_MCAST (TS_DEMUX_GROUP | ((uint64_t)1 << 33))
    """
    const uint64_t DEMUX_GROUP "TS_DEMUX_GROUP"     # value: directed broadcast -> listener list
    const uint64_t DEMUX_MCAST "TS_DEMUX_MCAST"     # value: multicast group -> McastGroup


@cython.final
cdef class DemuxTable(AddrHash):

    cdef int owner(self, int scope, address) except? -2:
        """The namespace owning (scope, address), or -1 (also for a broadcast or group)."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            return <int>v
        return -1

    cdef int add_owner(self, int scope, address, int ns) except -1:
        """(scope, address) is owned by ``ns``; AddressInUse when it is someone else's."""
        cdef uint64_t v
        if self.lookup(scope, address, &v):
            if v == <uint64_t>ns:
                return 0
            if v & DEMUX_GROUP:
                raise AddressInUse(f"{addr_str(self.family, address)} is a broadcast address "
                                   f"of scope {scope}")
            raise AddressInUse(f"{addr_str(self.family, address)} is owned by namespace {v} "
                               f"in scope {scope}")
        self.store(scope, address, ns)
        return 1

    cdef int remove_owner(self, int scope, address) except -1:
        """Forget an owned address; returns its owner.  NotFound when it is not one."""
        cdef uint64_t v
        if not self.lookup(scope, address, &v) or v & DEMUX_GROUP:
            raise NotFound(f"{addr_str(self.family, address)} is not an address of scope {scope}")
        self.remove(scope, address)
        return <int>v

    cdef int check_free(self, int scope, address) except -1:
        """AddressInUse when a namespace owns (scope, address): it cannot be a broadcast."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            raise AddressInUse(f"{addr_str(self.family, address)} is owned by namespace {v} "
                               f"in scope {scope}")
        return 0

    cdef int set_listeners(self, int scope, address, int32_t list_id) except -1:
        """Frames to (scope, address) fan out to listener list ``list_id``."""
        self.check_free(scope, address)
        return self.store(scope, address, DEMUX_GROUP | <uint32_t>list_id)

    cdef int set_group(self, int scope, address, int32_t group_id) except -1:
        """Frames to multicast (scope, address) go to McastGroup ``group_id``."""
        return self.store(scope, address, DEMUX_MCAST | <uint32_t>group_id)
