# The TAP port kind (port_io.pxi): a non-blocking fd that reads and writes one Ethernet
# frame per call -- a TAP opened with IFF_TAP | IFF_NO_PI (and IFF_VNET_HDR: a 12-byte
# virtio-net header before each frame), or in tests a SOCK_SEQPACKET socket pair.
#   tap_rx    (the epoll backend's; io_uring reads TAPs through its ring: uring_rx.pxi)
#             one read() into the next batch slot: TAP reads do not batch (recvmmsg and
#             readv do not, PLATFORM.md), and one frame per port per round keeps a busy
#             port from starving the others.  A port is read until its first EAGAIN
#             (counted: ``read_empty``).  Skipping that read where it can be predicted (a
#             port whose activations give one frame each, left to level-triggered epoll)
#             was measured for issue 18 and dropped: it saved reads but cut batches short,
#             and cost more epoll_waits, submissions and CPU per GB than it saved (docs/io.md);
#   fd_write  one write()/writev() per frame: the "epoll" write backend (the io_uring one
#             is uring.pxi); a failed write is a counted drop, copied to a capture of the
#             port's drops (capture.pxi);
#   fd_send   a frame the slow path built, written at once whatever the backend.


cdef uint8_t ZERO_VNET_HDR[VNET_HDR_LEN]      # static: all zero


cdef inline Py_ssize_t tap_read_result(LoopPort* p, int32_t port_id, const RxBatch* rx,
                                        Py_ssize_t slot, uint32_t off, ssize_t res,
                                        size_t fits) noexcept nogil:
    """What one read of a TAP into batch slot ``slot`` (its frame at pool offset ``off``)
    gave, ``res`` being the bytes read or -errno: 1 = a frame, 0 = nothing usable (a
    counted drop, or EINTR), RX_EMPTY, or RX_FAILED (p.failed says why).  Both backends'
    reads end here (tap_rx, uring_rx.pxi), so they count alike."""
    if res > 0:
        return rx_accept(rx, port_id, p.vnet, slot, off, <size_t>res, fits)
    if res == -EAGAIN:
        rx.st.read_empty += 1
        return RX_EMPTY
    if res == -EINTR:
        return 0
    if res == 0:
        rx.st.read_eof += 1                # a TAP never reads 0 bytes; a closed socket does
        p.failed = PORT_EOF
    else:
        rx.st.read_errors += 1
        p.failed = <int>-res
    return RX_FAILED


cdef Py_ssize_t tap_rx(LoopPort* p, int32_t port_id, const RxBatch* rx, Py_ssize_t slot,
                       Py_ssize_t room) noexcept nogil:
    """Read one frame of the TAP into batch slot ``slot`` (tap_read_result says what
    comes back)."""
    cdef uint32_t off = slot * rx.slot_size + rx.headroom
    cdef uint8_t* f = rx.buf + off
    cdef size_t fits = rx.slot_size - rx.headroom + (VNET_HDR_LEN if p.vnet else 0)
    cdef ssize_t r = read(p.fd, (f - VNET_HDR_LEN) if p.vnet else f, fits)
    return tap_read_result(p, port_id, rx, slot, off, r if r >= 0 else -errno, fits)


cdef int fd_write(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """One write()/writev() of a frame to the sink's fd (a seg_sink); a full queue
    (EAGAIN) or any other error is a counted drop."""
    cdef TxSink* s = <TxSink*>ctx
    cdef ssize_t r
    cdef uint8_t code
    s.st.tx_submits += 1
    while True:
        if iovcnt == 1:
            r = write(s.fd, iov[0].iov_base, iov[0].iov_len)
        else:
            r = writev(s.fd, iov, iovcnt)
        if r >= 0 or errno != EINTR:
            break
    if r < 0:
        if errno == EAGAIN:
            s.st.write_eagain += 1
            code = DROP_WRITE_EAGAIN
        else:
            s.st.write_errors += 1
            code = DROP_WRITE_ERRORS
        if s.cap != NULL:
            capture_drop_iov(s.cap, s.port, code, iov, iovcnt, s.skip)
        return -1
    s.st.writes += 1
    s.st.frames_out += 1
    s.st.bytes_out += <uint64_t>r
    return 0


cdef inline int frame_iov(iovec* iov, bint vnet, const uint8_t* frame, Py_ssize_t n) noexcept:
    """A frame the slow path built as iovecs (a zero virtio-net header in front on a vnet
    port): how many."""
    cdef int cnt = 0
    if vnet:
        iov[0].iov_base, iov[0].iov_len = ZERO_VNET_HDR, VNET_HDR_LEN
        cnt = 1
    iov[cnt].iov_base, iov[cnt].iov_len = <void*>frame, n
    return cnt + 1


cdef int fd_send(int fd, bint vnet, const uint8_t* frame, Py_ssize_t n, LoopStats* st) noexcept:
    """Write one frame (a zero virtio-net header in front on a vnet port) at once: 0, or
    -1 for a counted failed write."""
    cdef TxSink sink
    cdef iovec iov[2]
    sink.fd, sink.uring_fd, sink.st, sink.uring, sink.kind = fd, fd, st, NULL, NULL
    sink.cap = NULL                     # PacketLoop.send() captures a failed one
    return fd_write(&sink, iov, frame_iov(iov, vnet, frame, n))


cdef int port_send(LoopPort* p, const uint8_t* frame, Py_ssize_t n, LoopStats* st,
                   bint* waiting) noexcept:
    """The same through a ring kind's tx, then its end (the kick): 0 or -1 (counted);
    ``waiting``: frames still wait in its transmit ring (port_io.pxi)."""
    cdef iovec iov[2]
    cdef int r = p.tx(&p.sink, iov, frame_iov(iov, p.vnet, frame, n))
    waiting[0] = p.end(p, st, END_KICK)
    return r
