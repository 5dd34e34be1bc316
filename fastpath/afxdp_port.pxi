# XdpPort: an AF_XDP port's set-up and tear-down (its per-frame side is afxdp.pxi).
# Set-up is a sequence of steps, each undone when a later one fails: no BPF map,
# program, link, socket, ring mapping or UMEM is left behind; ``_fault`` names a step to
# fail on purpose (the fault-injection tests).  The program is attached through a BPF
# link, so it leaves the interface when the port closes or the process dies.
from posix.mman cimport munmap, MAP_POPULATE, MAP_PRIVATE, MAP_ANONYMOUS
from libc.stdlib cimport malloc, free
from libc.errno cimport EOPNOTSUPP, EINVAL, EBUSY
import time
from fastpath.includes.xdp cimport (
    xdp_umem_reg, xdp_mmap_offsets, xdp_ring_offset, sockaddr_xdp, xdp_statistics, AF_XDP,
    SOL_XDP, XDP_MMAP_OFFSETS, XDP_RX_RING, XDP_TX_RING, XDP_UMEM_REG, XDP_UMEM_FILL_RING,
    XDP_UMEM_COMPLETION_RING, XDP_STATISTICS, XDP_PGOFF_RX_RING, XDP_PGOFF_TX_RING,
    XDP_UMEM_PGOFF_FILL_RING, XDP_UMEM_PGOFF_COMPLETION_RING, XDP_COPY, XDP_ZEROCOPY,
    XDP_USE_NEED_WAKEUP, XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE, ts_xskmap_create,
    ts_xdp_redirect_prog, ts_xskmap_set, ts_xdp_link)

XDP_SETUP_STEPS = ("map", "program", "socket", "umem", "rings", "mmap", "bind",
                   "map_update", "link")
XDP_MODES = ("native", "generic")

cdef enum:
    XSK_CHUNK = 4096            # UMEM chunk: a page (frames up to 4096 - 256 bytes)
    XSK_LOG = 4096
    XSK_BIND_TRIES = 50

XDP_CHUNK_SIZE = XSK_CHUNK      # bytes of UMEM per frame, for Python
XSK_BIND_WAIT_S = 0.02          # the kernel frees a closed socket's queue in deferred work


cdef int map_ring(ts_xsk_ring* r, int fd, xdp_ring_offset* off, uint32_t n, size_t entry,
                  long long pgoff) noexcept nogil:
    r.map_len = <size_t>off.desc + n * entry
    r.map = mmap(NULL, r.map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff)
    if r.map == MAP_FAILED:
        r.map = NULL
        return -1
    r.producer = <uint32_t*>(<uint8_t*>r.map + off.producer)
    r.consumer = <uint32_t*>(<uint8_t*>r.map + off.consumer)
    r.flags = <uint32_t*>(<uint8_t*>r.map + off.flags)
    r.desc = <uint8_t*>r.map + off.desc
    r.mask = n - 1
    return 0


def xdp_unavailable():
    """None when this process can make AF_XDP ports here; else why not (privileges: a BPF
    map and the XDP program need CAP_BPF; or a kernel without AF_XDP)."""
    cdef int map_fd = ts_xskmap_create(1), prog_fd = -1, fd
    if map_fd < 0:
        return f"creating a BPF map: {os.strerror(-map_fd)} (AF_XDP ports need CAP_BPF and CAP_NET_ADMIN)"
    prog_fd = ts_xdp_redirect_prog(map_fd, NULL, 0)
    close(map_fd)
    if prog_fd < 0:
        return f"loading the XDP program: {os.strerror(-prog_fd)} (needs CAP_BPF, Linux >= 5.9)"
    close(prog_fd)
    fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)
    if fd < 0:
        return f"socket(AF_XDP): {os.strerror(errno)} (a kernel without CONFIG_XDP_SOCKETS, or no CAP_NET_RAW)"
    close(fd)
    return None


@cython.final
cdef class XdpPort(RingPort):
    """Interface ``ifindex`` -- of the network namespace of the thread that makes this --
    served through an XDP socket on receive queue ``queue``, its UMEM in ``loop``'s
    address space (afxdp.pxi).  ``mode``: "native" or "generic" XDP (None: native where
    the driver has it, else generic); ``zerocopy``: True requires it, False refuses it,
    None tries it and falls back to copy mode (veth has copy mode only).  ``frames``:
    UMEM chunks for each direction (a power of two)."""
    cdef XskState x
    cdef int map_fd, prog_fd, link_fd
    cdef Py_ssize_t arena_off
    cdef size_t arena_len
    cdef readonly str mode
    cdef readonly bint zerocopy
    cdef readonly int queue, frames

    def __cinit__(self):
        self.x.fd = self.map_fd = self.prog_fd = self.link_fd = -1
        self.arena_off = -1

    def __init__(self, PacketLoop loop not None, int ifindex, *, int queue=0, mode=None,
                 zerocopy=None, int frames=1024, _fault=None):
        if self.ifindex:
            raise RuntimeError("XdpPort is already initialised")
        loop._check_open("XdpPort()")
        if ifindex <= 0 or not 0 <= queue < 1024:
            raise InvalidArgument(f"ifindex must be positive and queue in 0..1023, not {ifindex}, {queue}")
        if mode is not None and mode not in XDP_MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(XDP_MODES)} or None, not {mode!r}")
        if not 64 <= frames <= 1 << 15 or frames & (frames - 1):
            raise InvalidArgument(f"frames must be a power of two in 64..32768, not {frames}")
        if _fault is not None and _fault not in XDP_SETUP_STEPS:
            raise InvalidArgument(f"_fault must be one of {', '.join(XDP_SETUP_STEPS)}")
        self.ifindex, self.queue, self.frames = ifindex, queue, frames
        self.arena = loop.arena
        try:
            self._open(mode, zerocopy, _fault)
        except BaseException:
            self._release()
            raise
        self.state, self.poll_fd, self.vnet = &self.x, self.x.fd, False
        self.rx, self.tx, self.end, self.ready = xsk_rx, xsk_tx, xsk_end, xsk_ready

    cdef int _step(self, str step, int err, fault, str what) except -1:
        """``err``: 0, or the errno of the step (negative or positive)."""
        if step == fault:
            raise ring_error(f"{what} (injected fault)", EIO)
        if err:
            raise ring_error(what, err if err > 0 else -err)
        return 0

    cdef int _open(self, mode, zerocopy, fault) except -1:
        cdef XskState* x = &self.x
        cdef char log[XSK_LOG]
        cdef xdp_umem_reg reg
        cdef xdp_mmap_offsets off
        cdef socklen_t size = sizeof(off)
        cdef sockaddr_xdp sxdp
        cdef uint32_t k, n = self.frames
        cdef int err
        where = f"AF_XDP port on ifindex {self.ifindex} queue {self.queue}"
        self.map_fd = ts_xskmap_create(self.queue + 1)
        self._step("map", min(self.map_fd, 0), fault,
                   f"{where}: creating its XSKMAP (it needs CAP_BPF and CAP_NET_ADMIN)")
        log[0] = 0
        self.prog_fd = ts_xdp_redirect_prog(self.map_fd, log, XSK_LOG)
        self._step("program", min(self.prog_fd, 0), fault,
                   f"{where}: loading the XDP program: {log.decode(errors='replace').strip()}")
        x.fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)
        self._step("socket", errno if x.fd < 0 else 0, fault, f"{where}: socket(AF_XDP)")
        x.chunk = XSK_CHUNK
        self.arena_len = <size_t>2 * n * XSK_CHUNK
        if fault == "umem":
            self._step("umem", 0, fault, f"{where}: UMEM")
        self.arena_off = self.arena.take(self.arena_len, where)
        x.umem = self.arena.base + self.arena_off
        x.umem_base = <uint32_t>self.arena_off
        err = 0
        if mmap(x.umem, self.arena_len, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0) == MAP_FAILED:
            err = errno
        else:
            memset(&reg, 0, sizeof(reg))
            reg.addr, reg.len, reg.chunk_size = <uint64_t>x.umem, self.arena_len, XSK_CHUNK
            if setsockopt(x.fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) < 0:
                err = errno
        self._step("umem", err, fault, f"{where}: registering {self.arena_len >> 20} MiB of UMEM")
        err = 0
        for opt in (XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING):
            if not err and setopt(x.fd, SOL_XDP, opt, n) < 0:
                err = errno
        self._step("rings", err, fault, f"{where}: ring sizes")
        err = errno if getsockopt(x.fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &size) < 0 else 0
        if not err and (map_ring(&x.fill, x.fd, &off.fr, n, 8, XDP_UMEM_PGOFF_FILL_RING) < 0
                        or map_ring(&x.comp, x.fd, &off.cr, n, 8, XDP_UMEM_PGOFF_COMPLETION_RING) < 0
                        or map_ring(&x.rx, x.fd, &off.rx, n, sizeof(xdp_desc), XDP_PGOFF_RX_RING) < 0
                        or map_ring(&x.tx, x.fd, &off.tx, n, sizeof(xdp_desc), XDP_PGOFF_TX_RING) < 0):
            err = errno
        self._step("mmap", err, fault, f"{where}: mapping its rings")
        x.tx_free = <uint64_t*>malloc(n * sizeof(uint64_t))
        if x.tx_free == NULL:
            raise MemoryError()
        for k in range(n):
            ts_xsk_addr(&x.fill, k)[0] = <uint64_t>k * XSK_CHUNK
            x.tx_free[k] = <uint64_t>(n + k) * XSK_CHUNK
        x.tx_free_n = n
        x.fill.cached = n
        ts_xsk_store(x.fill.producer, n)
        memset(&sxdp, 0, sizeof(sxdp))
        sxdp.sxdp_family, sxdp.sxdp_ifindex, sxdp.sxdp_queue_id = AF_XDP, self.ifindex, self.queue
        for tries in range(XSK_BIND_TRIES):
            err = EOPNOTSUPP
            if zerocopy is None or zerocopy:
                sxdp.sxdp_flags = XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP
                err = errno if bind(x.fd, <sockaddr*>&sxdp, sizeof(sxdp)) < 0 else 0
                self.zerocopy = err == 0
            if err and not zerocopy and (zerocopy is not None or err in (EOPNOTSUPP, EINVAL)):
                sxdp.sxdp_flags = XDP_COPY | XDP_USE_NEED_WAKEUP
                err = errno if bind(x.fd, <sockaddr*>&sxdp, sizeof(sxdp)) < 0 else 0
            if err != EBUSY:
                break
            time.sleep(XSK_BIND_WAIT_S)     # a socket closed on this queue lets it go later
        self._step("bind", err, fault, f"{where}: bind ({'zero-copy' if zerocopy else 'copy'} "
                   f"mode; is there such an interface in this network namespace?)")
        self._step("map_update", min(ts_xskmap_set(self.map_fd, self.queue, x.fd), 0), fault,
                   f"{where}: putting the socket in the XSKMAP")
        err = 0
        for m in ((mode,) if mode else XDP_MODES):
            self.link_fd = ts_xdp_link(self.prog_fd, self.ifindex,
                                       XDP_FLAGS_DRV_MODE if m == "native" else XDP_FLAGS_SKB_MODE)
            err = min(self.link_fd, 0)
            if not err:
                self.mode = m
                break
        self._step("link", err, fault, f"{where}: attaching the XDP program "
                   f"({mode or 'native, then generic'}; a BPF link needs Linux >= 5.9)")
        return 0

    cdef void _release(self) noexcept:
        """Detach the program (close its link), close the program, map and socket,
        unmap the rings, give the UMEM's range back; may run twice."""
        cdef ts_xsk_ring* rings[4]
        cdef int k
        for fd in (self.link_fd, self.prog_fd, self.map_fd):
            if fd >= 0:
                close(fd)
        self.link_fd = self.prog_fd = self.map_fd = -1
        rings[0], rings[1], rings[2], rings[3] = &self.x.fill, &self.x.comp, &self.x.rx, &self.x.tx
        for k in range(4):
            if rings[k].map != NULL:
                munmap(rings[k].map, rings[k].map_len)
                rings[k].map = NULL
        if self.x.fd >= 0:
            close(self.x.fd)
            self.x.fd = -1
        if self.arena_off >= 0:
            self.arena.give(self.arena_off, self.arena_len)
            self.arena_off = -1
        free(self.x.tx_free)
        self.x.tx_free = NULL
        self.x.umem = NULL
        self.poll_fd = -1

    def close(self):
        """Detach and release everything now (refused while a loop serves the port)."""
        self.check_not_serving("close()")
        self._release()

    def __dealloc__(self):
        self._release()

    @property
    def closed(self):
        return self.x.fd < 0

    def kernel_stats(self):
        """The socket's XDP_STATISTICS: frames dropped (no room, bad descriptors, ...)."""
        cdef xdp_statistics xs
        cdef socklen_t size = sizeof(xs)
        if self.x.fd < 0 or getsockopt(self.x.fd, SOL_XDP, XDP_STATISTICS, &xs, &size) < 0:
            return {}
        return {"rx_dropped": xs.rx_dropped, "rx_invalid_descs": xs.rx_invalid_descs,
                "tx_invalid_descs": xs.tx_invalid_descs, "rx_ring_full": xs.rx_ring_full,
                "rx_fill_ring_empty": xs.rx_fill_ring_empty_descs}

    def info(self):
        return {"kind": "afxdp", "ifindex": self.ifindex, "queue": self.queue,
                "mode": self.mode, "zerocopy": bool(self.zerocopy),
                "chunk_size": XSK_CHUNK, "frames": self.frames, "closed": self.closed}
