# DemuxTable: (L2 scope, destination address) -> who gets the frame.  An AddrHash of one
# address family (the IPv6 table is a second instance), whose value is one of:
#   owner namespace id | prefix length << 40   an address a namespace of the scope owns
#   DEMUX_GROUP | listener list id          a directed broadcast address (listeners.pxi, IPv4)
#   DEMUX_MCAST | multicast group id        a multicast group of the scope (mcast.pxi)
# process() looks the source up (source rule; the sender's subnet) and the destination
# (delivery) with hash4_find() / hash6_find(); the control API below refuses what would
# make an entry ambiguous.
#
# The prefix length (``demux_plen``) is the length of the owner's subnet on that address
# (IPv4 1..32; IPv6 0..128, 128 = none given): two namespaces of one subnet talk as on one
# link, so process() / process6.pxi hand such a frame over with its TTL / hop limit as it
# came (switching) and decrement it only between subnets (routing); an IPv4 sender's
# limited broadcast and link-local multicast reach its subnet only (process.pxi).

cdef extern from *:
    """
    #define TS_DEMUX_GROUP ((uint64_t)1 << 32)
    #define TS_DEMUX_MCAST (TS_DEMUX_GROUP | ((uint64_t)1 << 33))
    """
    const uint64_t DEMUX_GROUP "TS_DEMUX_GROUP"     # value: directed broadcast -> listener list
    const uint64_t DEMUX_MCAST "TS_DEMUX_MCAST"     # value: multicast group -> McastGroup

cdef enum:
    DEMUX_PLEN_SHIFT = 40           # an owner's prefix length (its subnet), in the value


cdef inline uint32_t demux_plen(uint64_t v) noexcept nogil:
    """The prefix length of an owner entry (IPv4 1..32, IPv6 0..128)."""
    return <uint32_t>(v >> DEMUX_PLEN_SHIFT) & 0xFF


@cython.final
cdef class DemuxTable(AddrHash):

    cdef int owner(self, int scope, address) except? -2:
        """The namespace owning (scope, address), or -1 (also for a broadcast or group)."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            return <int32_t>v
        return -1

    cdef int onlink(self, int scope, address) except? -2:
        """The prefix length of an owned (scope, address), or -1."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            return demux_plen(v)
        return -1

    cdef int add_owner(self, int scope, address, int ns, int plen=0) except -1:
        """(scope, address) is owned by ``ns`` (on a subnet of prefix length ``plen``); 1 when
        the address is new to it.  AddressInUse when it is someone else's."""
        cdef uint64_t v, want = <uint32_t>ns | (<uint64_t>plen << DEMUX_PLEN_SHIFT)
        if self.lookup(scope, address, &v):
            if v & DEMUX_GROUP:
                raise AddressInUse(f"{addr_str(self.family, address)} is a broadcast address "
                                   f"of scope {scope}")
            if <int32_t>v != ns:
                raise AddressInUse(f"{addr_str(self.family, address)} is owned by namespace "
                                   f"{<int32_t>v} in scope {scope}")
            if v != want:
                self.store(scope, address, want)
            return 0
        self.store(scope, address, want)
        return 1

    cdef int remove_owner(self, int scope, address) except -1:
        """Forget an owned address; returns its owner.  NotFound when it is not one."""
        cdef uint64_t v
        if not self.lookup(scope, address, &v) or v & DEMUX_GROUP:
            raise NotFound(f"{addr_str(self.family, address)} is not an address of scope {scope}")
        self.remove(scope, address)
        return <int32_t>v

    cdef int check_free(self, int scope, address) except -1:
        """AddressInUse when a namespace owns (scope, address): it cannot be a broadcast."""
        cdef uint64_t v
        if self.lookup(scope, address, &v) and not v & DEMUX_GROUP:
            raise AddressInUse(f"{addr_str(self.family, address)} is owned by namespace "
                               f"{<int32_t>v} in scope {scope}")
        return 0

    cdef int set_listeners(self, int scope, address, int32_t list_id) except -1:
        """Frames to (scope, address) fan out to listener list ``list_id``."""
        self.check_free(scope, address)
        return self.store(scope, address, DEMUX_GROUP | <uint32_t>list_id)

    cdef int set_group(self, int scope, address, int32_t group_id) except -1:
        """Frames to multicast (scope, address) go to McastGroup ``group_id``."""
        return self.store(scope, address, DEMUX_MCAST | <uint32_t>group_id)
