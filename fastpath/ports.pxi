# PortTable: per port id, the namespace it is attached to, the switch's MAC on it, the
# MAC of the endpoint behind it (learnt by process() from the frames the port sends, or
# set by the slow path), whether the switch serves it by DHCP, whether the endpoint is a
# DHCP server the L2 trusts, and the port's MTU (the largest IP packet its link carries:
# the TAP's MTU; process() hands a unicast frame larger up, too_big), as C arrays indexed
# by id; plus which ports each namespace has.  MACs are the 48-bit ints of the wire bytes
# (little-endian load, as process.pxi compares).


cdef enum:
    PORT_DEFAULT_MTU = 1500         # a TAP's, until the port says otherwise
    PORT_MIN_MTU = 68               # RFC 791's least (an IPv6 link needs 1280: the model checks)
    PORT_MAX_MTU = 65535


cdef struct PortView:
    const int32_t* ns           # -1: no such port
    const uint64_t* mac         # the switch's MAC on the port
    uint64_t* peer              # the endpoint's MAC (0: unknown); process() learns it
    const uint8_t* serve_dhcp   # 1: the switch answers DHCP there (client messages: slow path)
    const uint8_t* dhcp_server  # 1: DHCP server messages from it are let in (an L3's port)
    const uint16_t* mtu         # the largest IP packet out of the port


@cython.final
cdef class PortTable:
    cdef readonly int size
    cdef int32_t* ns
    cdef uint64_t* mac
    cdef uint64_t* peer
    cdef uint8_t* serve_dhcp
    cdef uint8_t* dhcp_server
    cdef uint16_t* mtu
    cdef dict of_ns                 # namespace -> set of its port ids

    def __cinit__(self, int size):
        cdef int k
        self.size = size
        self.ns = <int32_t*>malloc(size * sizeof(int32_t))
        self.mac = <uint64_t*>calloc(size, sizeof(uint64_t))
        self.peer = <uint64_t*>calloc(size, sizeof(uint64_t))
        self.serve_dhcp = <uint8_t*>calloc(size, sizeof(uint8_t))
        self.dhcp_server = <uint8_t*>calloc(size, sizeof(uint8_t))
        self.mtu = <uint16_t*>malloc(size * sizeof(uint16_t))
        if (self.ns == NULL or self.mac == NULL or self.peer == NULL or self.serve_dhcp == NULL
                or self.dhcp_server == NULL
                or self.mtu == NULL):
            raise MemoryError()
        for k in range(size):
            self.ns[k] = -1
            self.mtu[k] = PORT_DEFAULT_MTU
        self.of_ns = {}

    def __dealloc__(self):
        free(self.ns)
        free(self.mac)
        free(self.peer)
        free(self.serve_dhcp)
        free(self.dhcp_server)
        free(self.mtu)

    cdef PortView view(self) noexcept nogil:
        cdef PortView v
        v.ns, v.mac, v.peer, v.mtu = self.ns, self.mac, self.peer, self.mtu
        v.serve_dhcp, v.dhcp_server = self.serve_dhcp, self.dhcp_server
        return v

    cdef int check_mtu(self, mtu) except -1:
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not PORT_MIN_MTU <= mtu <= PORT_MAX_MTU:
            raise InvalidArgument(f"MTU {mtu!r} is not an int in {PORT_MIN_MTU}..{PORT_MAX_MTU}")
        return mtu

    cdef int check(self, port_id) except -1:
        if not isinstance(port_id, int) or not 0 <= port_id < self.size:
            raise InvalidArgument(f"port id {port_id!r} is not in 0..{self.size - 1}")
        return port_id

    cdef int existing(self, port_id) except -1:
        self.check(port_id)
        if self.ns[port_id] < 0:
            raise NotFound(f"port {port_id} does not exist")
        return port_id

    cdef ports_of(self, int ns_id):
        """The ports of a namespace, sorted by id."""
        return sorted(self.of_ns.get(ns_id, ()))

    cdef int attach(self, int port_id, int ns_id) except -1:
        """Attach a free port to ``ns_id`` (its peer unknown)."""
        self.ns[port_id] = ns_id
        self.peer[port_id] = 0
        self.of_ns.setdefault(ns_id, set()).add(port_id)
        return 0

    cdef int detach(self, int port_id) except -1:
        """Take the port from its namespace; returns that namespace."""
        cdef int ns_id = self.ns[port_id]
        self.of_ns[ns_id].discard(port_id)
        self.ns[port_id] = -1
        self.mac[port_id] = 0
        self.peer[port_id] = 0
        self.serve_dhcp[port_id] = 0
        self.dhcp_server[port_id] = 0
        self.mtu[port_id] = PORT_DEFAULT_MTU
        return ns_id

    cdef bytes_of(self, uint64_t m):
        return None if m == 0 else int(m).to_bytes(6, "little")


cdef inline bint over_mtu(const PortView* pv, int32_t op, uint32_t l3_len) noexcept nogil:
    """Is an IP packet of ``l3_len`` bytes (for a super-frame: one of its segments,
    segment_len) larger than port ``op``'s MTU?  The frame path's one MTU check, for
    both families."""
    return l3_len > pv.mtu[op]


cdef inline bint is_super_frame(const uint8_t* f, uint32_t off) noexcept nogil:
    """Does frame ``f`` (at ``off`` in the batch's pool) carry a GSO virtio-net header?
    The loop keeps every frame's header right before it (zeros from a plain port); a
    frame placed without that headroom (off < 12) has none."""
    return off >= VNET_HDR_LEN and f[1 - VNET_HDR_LEN] != VNET_GSO_NONE


cdef inline uint32_t segment_len(const uint8_t* f, uint32_t l3_len, uint32_t hdr_end) noexcept nogil:
    """The IP length of the largest segment of super-frame ``f`` (``l3_len`` bytes of IP
    packet): its headers up to ``hdr_end`` (from the IP header on) + gso_size."""
    cdef const uint8_t* h = f - VNET_HDR_LEN
    cdef uint32_t seg = hdr_end + ((<uint32_t>h[5] << 8) | h[4])
    return seg if seg < l3_len else l3_len
