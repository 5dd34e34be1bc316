# NeighbourTable: (L2 scope, next-hop address) -> MAC, what a routed frame is sent to.
# An AddrHash of one address family (IPv6 is a second instance, issue 15); the MAC is the
# 48-bit int of the wire bytes (little-endian load, as process.pxi compares MACs).
# process() reads it with hash4_find() when a route's next hop is not in the sender's
# route cache; the slow path fills it as it resolves neighbours.


@cython.final
cdef class NeighbourTable(AddrHash):

    cdef int set(self, int scope, address, uint64_t mac) except -1:
        return self.store(scope, address, mac)

    cdef mac_of(self, int scope, address):
        """The neighbour's MAC as 6 bytes, or None."""
        cdef uint64_t v
        if self.lookup(scope, address, &v):
            return int(v).to_bytes(6, "little")
        return None
