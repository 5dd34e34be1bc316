# AfPacketPort: an AF_PACKET ring port's set-up and tear-down (its per-frame side is
# afpacket.pxi).  Set-up is a sequence of steps, each undone when a later one fails, so
# a failure leaves no socket, ring or mapping behind; ``_fault`` names a step to fail on
# purpose (the fault-injection tests).
from posix.unistd cimport close
from posix.mman cimport mmap, munmap, MAP_FAILED, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_FIXED
from fastpath.includes.afpacket cimport (
    socket, setsockopt, getsockopt, bind, socklen_t, sockaddr, sockaddr_ll, tpacket_req,
    tpacket_stats, htons, AF_PACKET, SOCK_RAW, SOCK_NONBLOCK, SOCK_CLOEXEC, SO_RCVBUF,
    SO_RCVBUFFORCE, SO_SNDBUFFORCE, SOL_PACKET, ETH_P_ALL, PACKET_RX_RING, PACKET_TX_RING, PACKET_VERSION,
    PACKET_VNET_HDR, PACKET_QDISC_BYPASS, PACKET_IGNORE_OUTGOING, PACKET_COPY_THRESH,
    PACKET_LOSS, PACKET_STATISTICS, TPACKET_V2, TPACKET2_TX_DATA)
from libc.errno cimport EPERM, EACCES, ENODEV, ENXIO, EAFNOSUPPORT, ENOPROTOOPT, EIO

AFP_TX_STUCK_MS = TX_STUCK_MS        # afpacket.pxi
AFP_SETUP_STEPS = ("socket", "options", "rx_ring", "arena", "mmap", "bind", "tx_socket",
                   "tx_ring", "big_socket")

cdef enum:
    AFP_RCVBUF = 8 << 20        # the socket queue that holds super-frames (see afpacket.pxi)
    AFP_RING_HEADROOM = 128     # slot bytes before a frame: tpacket2_hdr, sockaddr_ll, header
    AFP_SMALL_BLOCK = 1 << 16   # block size of rings with 2 or 4 KiB slots


def afp_slot_size(int mtu):
    """The ring slot size for frames of an ``mtu``-byte link (Ethernet and a VLAN tag
    on top): 2 KiB up to MTU 1946, then 4 KiB, then whole pages."""
    need = AFP_RING_HEADROOM + mtu + ETH_HLEN + 4
    for size in (2048, 4096):
        if need <= size:
            return size
    return page_up(need)


def afp_slots_per_block(int frame):
    """Slots of ``frame`` bytes in one ring block: as many as fill 64 KiB, at least one.
    A block holds whole slots and nothing else, so slot k lies at k * frame (afpacket.pxi
    indexes them so) whatever the slot size -- 12 KiB slots (MTU 9000) make 60 KiB blocks."""
    return max(1, AFP_SMALL_BLOCK // frame)


def afp_round(int n, int per_block):
    """``n`` rounded up to a whole number of blocks (C division: no negative operand)."""
    return (n + per_block - 1) // per_block * per_block


def ring_error(what, int err):
    """The error for a failed ring step (``err``: its errno), in the core's classes."""
    text = f"{what}: {os.strerror(err)}"
    if err in (EPERM, EACCES):
        return PermissionDenied(text)
    if err in (ENODEV, ENXIO):
        return NotFound(text)
    if err in (EAFNOSUPPORT, ENOPROTOOPT):
        return NotSupported(text)
    return TapswitchError(text)


cdef inline int setopt(int fd, int level, int name, int value) noexcept nogil:
    return setsockopt(fd, level, name, &value, sizeof(int))


@cython.final
cdef class AfPacketPort(RingPort):
    """Interface ``ifindex`` -- of the network namespace of the thread that makes this --
    served through AF_PACKET rings mapped into ``loop``'s address space (afpacket.pxi).
    Slots are sized for ``mtu``; ``rx_frames`` and ``tx_frames`` slots per ring (multiples
    of the slots per block, afp_slots_per_block; default about 1024 and 512).  Needs CAP_NET_RAW (CAP_NET_ADMIN lets the socket
    queue for super-frames grow past net.core.rmem_max)."""
    cdef PacketRing r
    cdef Py_ssize_t arena_off
    cdef size_t arena_len, tx_len
    cdef readonly int mtu, frame_size, rx_frames, tx_frames
    cdef uint64_t k_packets, k_drops

    def __cinit__(self):
        self.r.fd = self.r.tx_fd = self.r.big_fd = -1
        self.arena_off = -1

    def __init__(self, PacketLoop loop not None, int ifindex, *, int mtu=1500,
                 rx_frames=None, tx_frames=None, _fault=None):
        if self.ifindex:
            raise RuntimeError("AfPacketPort is already initialised")
        loop._check_open("AfPacketPort()")
        if ifindex <= 0:
            raise InvalidArgument(f"ifindex must be positive, not {ifindex}")
        if not 68 <= mtu <= 65535:
            raise InvalidArgument(f"mtu must be in 68..65535, not {mtu}")
        if _fault is not None and _fault not in AFP_SETUP_STEPS:
            raise InvalidArgument(f"_fault must be one of {', '.join(AFP_SETUP_STEPS)}")
        frame = afp_slot_size(mtu)
        per_block = afp_slots_per_block(frame)
        rx_frames = afp_round(1024, per_block) if rx_frames is None else rx_frames
        tx_frames = afp_round(512, per_block) if tx_frames is None else tx_frames
        for what, n in (("rx_frames", rx_frames), ("tx_frames", tx_frames)):
            if not isinstance(n, int):
                raise InvalidArgument(f"{what} must be an int, not {n!r}")
            if not per_block <= n <= 1 << 16 or n % per_block:
                raise InvalidArgument(f"{what} must be a multiple of {per_block} in "
                                      f"{per_block}..65536, not {n}")
        self.ifindex, self.mtu, self.frame_size = ifindex, mtu, frame
        self.rx_frames, self.tx_frames = rx_frames, tx_frames
        self.arena = loop.arena
        try:
            self._open(_fault)
        except BaseException:
            self._release()
            raise
        self.state, self.poll_fd, self.vnet = &self.r, self.r.fd, True
        self.rx, self.tx, self.end, self.ready = afp_rx, afp_tx, afp_end, afp_ready

    cdef int _step(self, str step, bint failed, fault, str what) except -1:
        if step == fault:
            raise ring_error(f"{what} (injected fault)", EIO)
        if failed:
            raise ring_error(what, errno)
        return 0

    cdef int _open(self, fault) except -1:
        cdef PacketRing* r = &self.r
        cdef tpacket_req req
        cdef sockaddr_ll sll
        cdef uint32_t frame = self.frame_size
        cdef uint32_t block = frame * afp_slots_per_block(frame)   # no gap between blocks
        cdef void* m
        where = f"AF_PACKET port on ifindex {self.ifindex}"
        r.fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        self._step("socket", r.fd < 0, fault,
                   f"{where}: socket(AF_PACKET) (it needs CAP_NET_RAW)")
        failed = (setopt(r.fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2) < 0
                  or setopt(r.fd, SOL_PACKET, PACKET_VNET_HDR, 1) < 0
                  or setopt(r.fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1) < 0
                  or setopt(r.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1) < 0
                  or setopt(r.fd, SOL_PACKET, PACKET_COPY_THRESH, 1) < 0
                  or setopt(r.fd, SOL_PACKET, PACKET_LOSS, 1) < 0)
        if not failed and setopt(r.fd, SOL_SOCKET, SO_RCVBUFFORCE, AFP_RCVBUF) < 0:
            failed = setopt(r.fd, SOL_SOCKET, SO_RCVBUF, AFP_RCVBUF) < 0
        self._step("options", failed, fault, f"{where}: socket options")
        req.tp_block_size, req.tp_frame_size = block, frame
        req.tp_frame_nr, req.tp_block_nr = self.rx_frames, self.rx_frames * frame // block
        self._step("rx_ring", setsockopt(r.fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0,
                   fault, f"{where}: PACKET_RX_RING of {self.rx_frames} x {frame} bytes")
        if fault == "arena":
            self._step("arena", False, fault, f"{where}: ring room")
        self.arena_len = <size_t>self.rx_frames * frame
        self.arena_off = self.arena.take(self.arena_len, where)
        r.rx = self.arena.base + self.arena_off
        failed = mmap(r.rx, self.arena_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                      r.fd, 0) == MAP_FAILED
        self._step("mmap", failed, fault, f"{where}: mmap of the RX ring")
        r.rx_base = <uint32_t>self.arena_off
        r.frame, r.rx_n, r.tx_n = frame, self.rx_frames, self.tx_frames
        r.tx_room = frame - <uint32_t>TPACKET2_TX_DATA
        memset(&sll, 0, sizeof(sll))
        sll.sll_family, sll.sll_protocol, sll.sll_ifindex = AF_PACKET, htons(ETH_P_ALL), self.ifindex
        self._step("bind", bind(r.fd, <sockaddr*>&sll, sizeof(sll)) < 0, fault,
                   f"{where}: bind (is there such an interface in this network namespace?)")
        sll.sll_protocol = 0                # the other two send only: nothing is queued on them
        r.tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        failed = (r.tx_fd < 0 or setopt(r.tx_fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2) < 0
                  or setopt(r.tx_fd, SOL_PACKET, PACKET_VNET_HDR, 1) < 0
                  or setopt(r.tx_fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1) < 0
                  or setopt(r.tx_fd, SOL_PACKET, PACKET_LOSS, 1) < 0
                  or bind(r.tx_fd, <sockaddr*>&sll, sizeof(sll)) < 0)
        self._step("tx_socket", failed, fault, f"{where}: the transmit ring's socket")
        req.tp_frame_nr, req.tp_block_nr = self.tx_frames, self.tx_frames * frame // block
        failed = setsockopt(r.tx_fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0
        if not failed:
            self.tx_len = <size_t>self.tx_frames * frame
            m = mmap(NULL, self.tx_len, PROT_READ | PROT_WRITE, MAP_SHARED, r.tx_fd, 0)
            failed = m == MAP_FAILED
            r.tx = NULL if failed else <uint8_t*>m
        self._step("tx_ring", failed, fault, f"{where}: PACKET_TX_RING of {self.tx_frames} x "
                   f"{frame} bytes")
        r.big_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        failed = (r.big_fd < 0 or setopt(r.big_fd, SOL_PACKET, PACKET_VNET_HDR, 1) < 0
                  or setopt(r.big_fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1) < 0
                  or bind(r.big_fd, <sockaddr*>&sll, sizeof(sll)) < 0)
        self._step("big_socket", failed, fault, f"{where}: the socket for large frames")
        return 0

    cdef void _release(self) noexcept:
        """Unmap the rings (the arena's reservation back over the RX ring) and close the
        sockets; what is released reads NULL / -1 after, so it may run twice."""
        if self.arena_off >= 0:
            self.arena.give(self.arena_off, self.arena_len)
            self.arena_off = -1
        if self.r.tx != NULL:
            munmap(self.r.tx, self.tx_len)
        self.r.rx = self.r.tx = NULL
        for fd in (self.r.fd, self.r.tx_fd, self.r.big_fd):
            if fd >= 0:
                close(fd)
        self.r.fd = self.r.tx_fd = self.r.big_fd = -1
        self.poll_fd = -1

    def close(self):
        """Release the rings and sockets now (refused while a loop serves the port)."""
        self.check_not_serving("close()")
        self._release()

    def __dealloc__(self):
        self._release()

    @property
    def closed(self):
        return self.r.fd < 0

    def kernel_stats(self):
        """{"packets", "drops"}: frames the kernel put in the RX ring, and those it dropped
        because the ring was full, since the port was made (PACKET_STATISTICS)."""
        cdef tpacket_stats ks
        cdef socklen_t size = sizeof(ks)
        if self.r.fd >= 0 and getsockopt(self.r.fd, SOL_PACKET, PACKET_STATISTICS, &ks, &size) == 0:
            self.k_packets += ks.tp_packets     # the kernel resets them on each read
            self.k_drops += ks.tp_drops
        return {"packets": self.k_packets, "drops": self.k_drops}

    def tx_waiting(self):
        """Frames in the transmit ring that the kernel has not taken yet (slots still
        TP_STATUS_SEND_REQUEST).  For tests: read it while no loop runs the port."""
        cdef uint32_t k, n = 0
        if self.r.tx == NULL:
            return 0
        for k in range(self.r.tx_n):
            if (<tpacket2_hdr*>(self.r.tx + <size_t>k * self.r.frame)).tp_status == TP_STATUS_SEND_REQUEST:
                n += 1
        return n

    def _set_tx_sndbuf(self, int size):
        """For tests: the transmit ring socket's send buffer (SO_SNDBUFFORCE; the kernel
        doubles ``size`` and keeps a minimum of a few KiB), so that a kick can find it full."""
        if self.r.tx_fd < 0:
            raise ValueError("AfPacketPort is closed")
        if setopt(self.r.tx_fd, SOL_SOCKET, SO_SNDBUFFORCE, size) < 0:
            raise ring_error("SO_SNDBUFFORCE on the transmit ring's socket", errno)

    def info(self):
        return {"kind": "afpacket", "ifindex": self.ifindex, "mtu": self.mtu,
                "slot_size": self.frame_size, "rx_slots": self.rx_frames,
                "tx_slots": self.tx_frames, "closed": self.closed}
