# The AF_PACKET port kind (port_io.pxi's seam): an interface served through an AF_PACKET
# socket with a TPACKET_V2 receive ring and a transmit ring, virtio-net headers
# (PACKET_VNET_HDR: GSO super-frames and partial checksums pass as on a vnet TAP) and
# PACKET_QDISC_BYPASS.  Needs CAP_NET_RAW only.
#
# Receive.  The kernel copies each frame into the next free ring slot, a 10-byte
# virtio_net_hdr right before it, and hands the slot over (TP_STATUS_USER).  afp_rx puts
# the frame in the batch where it lies (its offset = the ring's place in the FrameArena +
# the slot + tp_mac): no copy.  The header is moved 2 bytes down so it reads as the
# batch's 12-byte one (the slot has room before it: the kernel leaves >= 24 bytes between
# the sockaddr_ll and the header).  The slots stay the switch's until afp_end gives them
# back after the batch's writes.  Why V2 and not V3: a V3 block is handed over only when
# full or when its timer (>= 1 ms) fires, which an idle link pays in latency; V2 hands
# over each frame (and wakes epoll) at once.
#
# Slots are sized for the interface's MTU (2 KiB for 1500).  A larger frame -- a GSO
# super-frame of up to 64 KiB -- is cut short in its slot, and with PACKET_COPY_THRESH
# the kernel also queues it whole on the socket (TP_STATUS_COPY): afp_rx reads that one
# with recvmsg() into the batch pool.  So small frames cost no system call and a large
# one costs one, amortised over its 64 KiB (as a TAP read), and the rings stay small.
#
# Transmit.  afp_tx copies a frame (its virtio_net_hdr first) into the next free TX slot
# and marks it TP_STATUS_SEND_REQUEST; afp_end kicks the ring once per batch (send()) --
# or, while batches follow each other at once (END_MORE, port_io.pxi), once per
# RING_KICK_MIN frames and before the loop waits:
# with QDISC_BYPASS the kernel hands each frame to the driver at once, in ring order,
# until one is refused: its send buffer full (sock_alloc_send_skb: EAGAIN), the link
# without carrier or the driver's queue stopped (a veth whose peer's NAPI ring is full:
# ENOBUFS).  That frame and all after it stay SEND_REQUEST and nothing sends them but
# another kick.  So a kick moves ``tx_head`` past the slots the kernel took (the last
# one's status says whether it took all), and a port whose ring still holds frames tells
# the loop (afp_end's result): the loop kicks it again at each batch's end and at least
# every RING_RETRY_MS while it would sleep (tx_retries) -- once they have waited
# RING_RETRY_MS, about once per RING_RETRY_MS however many batches or frames come
# (afp_backed_off: a dead link costs no system call per frame).  When the kernel takes none for
# AFP_TX_STUCK_MS, they are taken back (their slots are the switch's while no send()
# runs) and dropped, counted and captured (tx_ring_stuck).  The header's
# hdr_len is set to the whole frame, so the kernel builds a linear skb: a TX-ring skb with
# the frame's tail left in the ring's pages would be copied again into fresh pages when
# it enters a veth's receive path (skb_copy_ubufs: a page allocated per 64-byte frame).
# The TX ring has a socket of its own, not the polled one: each sent skb's release wakes
# its socket's waiters (sock_def_write_space), and the loop's epoll must not be one.  A
# frame larger than a slot goes through a third, ring-less socket bound to the same
# interface (sendmsg), and only when the ring holds no frame the kernel has not taken
# (SENDING ones were handed to the driver, in order): else, after a second kick, it is
# dropped (write_eagain) -- never sent past them.  A full ring is a counted drop
# (write_eagain).
#
# VLAN-tagged frames arrive with the tag in the slot's metadata, not in the frame: they
# are dropped and counted (rx_vlan), as the fast path refuses tagged frames from a TAP.
from libc.errno cimport errno, EAGAIN, ENOBUFS
from fastpath.includes.afpacket cimport (
    send, recvmsg, sendmsg, msghdr, tpacket2_hdr, MSG_DONTWAIT, MSG_TRUNC, TP_STATUS_KERNEL,
    TP_STATUS_USER, TP_STATUS_COPY, TP_STATUS_VLAN_VALID, TP_STATUS_AVAILABLE,
    TP_STATUS_SEND_REQUEST, TP_STATUS_WRONG_FORMAT, TPACKET2_TX_DATA, VIRTIO_NET_HDR_LEN,
    load_acquire_u32, store_release_u32)

cdef enum:
    RING_BURST = 32             # frames one rx call takes (then the next port's turn)
    TX_STUCK_MS = 100           # AFP_TX_STUCK_MS: the kernel took none of the waiting frames


cdef struct PacketRing:
    int fd                      # the RX ring's socket (polled)
    int tx_fd                   # the TX ring's socket
    int big_fd                  # ring-less socket: frames larger than a TX slot
    uint8_t* rx                 # the RX ring, in the FrameArena
    uint8_t* tx                 # the TX ring
    uint32_t rx_base            # the RX ring's offset from the batch buffer
    uint32_t frame              # slot size (RX and TX)
    uint32_t rx_n, rx_next, rx_held, rx_holding   # slots; next to look at; first held; held
    uint32_t tx_n, tx_next, tx_room     # slots; next to fill; frame bytes a slot holds
    uint32_t tx_head, tx_queued         # the first slot the kernel has not taken; how many
    int64_t tx_since                    # frames wait since (ns; reset when some leave); 0: none
    int64_t tx_tried                    # when a kick last tried the waiting frames (ns)


cdef inline uint32_t ring_next(uint32_t i, uint32_t n) noexcept nogil:
    i += 1
    return 0 if i == n else i


cdef inline tpacket2_hdr* tx_slot(PacketRing* r, uint32_t i) noexcept nogil:
    return <tpacket2_hdr*>(r.tx + <size_t>i * r.frame)


cdef Py_ssize_t afp_rx_socket(PacketRing* r, int32_t port_id, const RxBatch* rx,
                              Py_ssize_t slot) noexcept nogil:
    """A frame too large for its ring slot: read it whole from the socket queue into the
    batch pool's slot ``slot``."""
    cdef uint32_t off = slot * rx.slot_size + rx.headroom
    cdef uint8_t* f = rx.buf + off
    cdef size_t fits = rx.slot_size - rx.headroom
    cdef iovec iov[2]
    cdef msghdr msg
    cdef ssize_t got
    memset(&msg, 0, sizeof(msg))
    iov[0].iov_base, iov[0].iov_len = f - VNET_HDR_LEN, VIRTIO_NET_HDR_LEN
    iov[1].iov_base, iov[1].iov_len = f, fits
    msg.msg_iov, msg.msg_iovlen = iov, 2
    got = recvmsg(r.fd, &msg, MSG_DONTWAIT)
    rx.st.rx_socket_frames += 1
    if got < <ssize_t>VIRTIO_NET_HDR_LEN:
        rx.st.read_errors += 1          # the copy the ring announced is not there
        return 0
    if msg.msg_flags & MSG_TRUNC:
        rx.st.reads += 1
        rx.st.rx_oversize += 1
        capture_drop(rx.cap, port_id, DROP_RX_OVERSIZE, NULL, f, <uint32_t>fits)
        return 0
    (f - 2)[0] = 0                      # num_buffers: the 12-byte header's last field
    (f - 1)[0] = 0
    return rx_accept(rx, port_id, True, slot, off, <size_t>got + 2, fits + VNET_HDR_LEN)


cdef Py_ssize_t afp_rx(LoopPort* p, int32_t port_id, const RxBatch* rx, Py_ssize_t slot,
                       Py_ssize_t room) noexcept nogil:
    """Put up to ``room`` (at most RING_BURST) ready slots' frames in the batch from
    ``slot`` on; they stay held until afp_end (see the top of this file)."""
    cdef PacketRing* r = <PacketRing*>p.kind
    cdef tpacket2_hdr* h
    cdef uint32_t status, idx, n
    cdef uint8_t* f
    cdef Py_ssize_t placed = 0, seen = 0
    if room > RING_BURST:
        room = RING_BURST
    while placed < room and r.rx_holding < r.rx_n:
        idx = r.rx_next
        h = <tpacket2_hdr*>(r.rx + <size_t>idx * r.frame)
        status = load_acquire_u32(&h.tp_status)
        if not status & TP_STATUS_USER:
            break
        r.rx_next = ring_next(idx, r.rx_n)
        r.rx_holding += 1
        seen += 1
        if status & TP_STATUS_COPY:
            placed += afp_rx_socket(r, port_id, rx, slot + placed)
        elif status & TP_STATUS_VLAN_VALID:
            rx.st.reads += 1
            rx.st.rx_vlan += 1
            capture_drop(rx.cap, port_id, DROP_RX_VLAN, NULL, <uint8_t*>h + h.tp_mac, h.tp_snaplen)
        elif h.tp_snaplen < h.tp_len:
            rx.st.reads += 1
            rx.st.rx_oversize += 1
            capture_drop(rx.cap, port_id, DROP_RX_OVERSIZE, NULL, <uint8_t*>h + h.tp_mac,
                         h.tp_snaplen)
        else:
            f = <uint8_t*>h + h.tp_mac
            memmove(f - VNET_HDR_LEN, f - VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_LEN)
            (f - 2)[0] = 0
            (f - 1)[0] = 0
            n = h.tp_snaplen + VNET_HDR_LEN
            placed += rx_accept(rx, port_id, True, slot + placed,
                                r.rx_base + idx * r.frame + h.tp_mac, n, n + 1)
    if seen == 0:
        return ring_empty(p, r.fd, rx.st)
    return placed


cdef bint afp_ready(LoopPort* p) noexcept nogil:
    """The receive ring's next slot holds a frame (the kind's ``ready``)."""
    cdef PacketRing* r = <PacketRing*>p.kind
    return r.rx_holding < r.rx_n and (load_acquire_u32(
        &(<tpacket2_hdr*>(r.rx + <size_t>r.rx_next * r.frame)).tp_status) & TP_STATUS_USER) != 0


cdef uint32_t afp_kick(PacketRing* r, TxSink* s) noexcept nogil:
    """Have the kernel send the queued TX slots; how many it took (see the top).  The
    kick is timed for the port's cost (tx_cost.pxi): the kernel hands each frame to the
    veth's other end, whose namespace's stack runs inside this send()."""
    cdef LoopStats* st = s.st
    cdef uint32_t before = r.tx_queued
    cdef int64_t t0 = now_ns()
    st.tx_submits += 1
    if r.tx_since:
        st.tx_retries += 1              # for frames an earlier kick left waiting
        r.tx_tried = t0
    if send(r.tx_fd, NULL, 0, MSG_DONTWAIT) < 0 and errno != EAGAIN and errno != ENOBUFS:
        st.write_errors += 1
    if load_acquire_u32(&tx_slot(r, (r.tx_next if r.tx_next else r.tx_n) - 1).tp_status) \
            != TP_STATUS_SEND_REQUEST:
        r.tx_head, r.tx_queued, r.tx_since = r.tx_next, 0, 0    # it took them all
    else:
        while load_acquire_u32(&tx_slot(r, r.tx_head).tp_status) != TP_STATUS_SEND_REQUEST:
            r.tx_head = ring_next(r.tx_head, r.tx_n)    # (it stops before the last one)
            r.tx_queued -= 1
    tx_cost_stop(s.policy, &s.cost, t0, before - r.tx_queued)
    return before - r.tx_queued


cdef bint afp_backed_off(PacketRing* r, LoopStats* st) noexcept nogil:
    """True (counted, tx_kicks_backed_off) when no kick should be made now: the kernel has
    refused the waiting frames for RING_RETRY_MS or more and a kick was tried less than
    3/4 of RING_RETRY_MS ago (the loop's 1 ms sleep always kicks).  So a link that stays
    dead -- a tenant took its end down while others send to it -- costs the loop about a
    system call a millisecond, not one a batch or one a frame."""
    cdef int64_t now, retry = <int64_t>RING_RETRY_MS * 1000000
    if not r.tx_since:
        return False
    now = now_ns()
    if now - r.tx_since >= retry and now - r.tx_tried < retry - retry // 4:
        st.tx_kicks_backed_off += 1
        return True
    return False


cdef void afp_drop_waiting(PacketRing* r, TxSink* s, LoopStats* st) noexcept nogil:
    """Take back the slots the kernel has not taken (no send() runs: they are ours) and
    drop their frames, counted and captured; the ring goes on from the first of them."""
    cdef tpacket2_hdr* h
    cdef uint32_t i = r.tx_head
    while r.tx_queued:
        h = tx_slot(r, i)
        st.tx_ring_stuck += 1
        capture_drop(s.cap, s.port, DROP_TX_RING_STUCK, NULL,
                     <uint8_t*>h + TPACKET2_TX_DATA + VIRTIO_NET_HDR_LEN,
                     h.tp_len - <uint32_t>VIRTIO_NET_HDR_LEN)
        store_release_u32(&h.tp_status, TP_STATUS_AVAILABLE)
        i = ring_next(i, r.tx_n)
        r.tx_queued -= 1
    r.tx_next, r.tx_since = r.tx_head, 0


cdef int afp_tx_big(PacketRing* r, TxSink* s, iovec* iov, int iovcnt, size_t n) noexcept nogil:
    """A frame larger than a TX slot: sendmsg() on the ring-less socket, once the kernel
    has taken every queued ring frame (see the top)."""
    cdef iovec out[5]
    cdef msghdr msg
    cdef int k, cnt = 2
    cdef int64_t t0
    cdef ssize_t sent
    cdef LoopStats* st = s.st
    if iovcnt > 3:
        st.write_errors += 1
        capture_drop_iov(s.cap, s.port, DROP_WRITE_ERRORS, iov, iovcnt, s.skip)
        return -1
    if r.tx_queued and not afp_backed_off(r, st):
        afp_kick(r, s)
        if r.tx_queued:
            afp_kick(r, s)
    if r.tx_queued:                     # it would pass them: dropped instead (see the top)
        st.write_eagain += 1
        capture_drop_iov(s.cap, s.port, DROP_WRITE_EAGAIN, iov, iovcnt, s.skip)
        return -1
    out[0].iov_base, out[0].iov_len = iov[0].iov_base, VIRTIO_NET_HDR_LEN
    out[1].iov_base = <uint8_t*>iov[0].iov_base + VNET_HDR_LEN
    out[1].iov_len = iov[0].iov_len - VNET_HDR_LEN
    for k in range(1, iovcnt):
        out[cnt] = iov[k]
        cnt += 1
    memset(&msg, 0, sizeof(msg))
    msg.msg_iov, msg.msg_iovlen = out, cnt
    st.tx_submits += 1
    t0 = now_ns()
    sent = sendmsg(r.big_fd, &msg, MSG_DONTWAIT)
    if sent < 0:
        if errno == EAGAIN or errno == ENOBUFS:
            st.write_eagain += 1
            capture_drop_iov(s.cap, s.port, DROP_WRITE_EAGAIN, iov, iovcnt, s.skip)
        else:
            st.write_errors += 1
            capture_drop_iov(s.cap, s.port, DROP_WRITE_ERRORS, iov, iovcnt, s.skip)
        return -1
    tx_cost_stop(s.policy, &s.cost, t0, 1)
    st.writes += 1
    st.frames_out += 1
    st.bytes_out += <uint64_t>sent
    return 0


cdef int afp_tx(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    """The kind's tx (a seg_sink): the frame, its 12-byte virtio-net header first, into
    the next TX slot with the 10-byte header the ring wants (see the top)."""
    cdef TxSink* s = <TxSink*>ctx
    cdef PacketRing* r = <PacketRing*>s.kind
    cdef tpacket2_hdr* h
    cdef uint8_t* d
    cdef size_t total = 0, n, used
    cdef uint32_t status
    cdef int k
    for k in range(iovcnt):
        total += iov[k].iov_len
    if iov[0].iov_len < VNET_HDR_LEN or total < VNET_HDR_LEN + ETH_HLEN:
        s.st.write_errors += 1
        capture_drop_iov(s.cap, s.port, DROP_WRITE_ERRORS, iov, iovcnt, s.skip)
        return -1
    n = total - (VNET_HDR_LEN - VIRTIO_NET_HDR_LEN)
    if n > r.tx_room:
        return afp_tx_big(r, s, iov, iovcnt, n)
    h = <tpacket2_hdr*>(r.tx + <size_t>r.tx_next * r.frame)
    status = load_acquire_u32(&h.tp_status)
    if (status != TP_STATUS_AVAILABLE and status != TP_STATUS_WRONG_FORMAT and r.tx_queued
            and not afp_backed_off(r, s.st)):
        afp_kick(r, s)
        status = load_acquire_u32(&h.tp_status)
    if status != TP_STATUS_AVAILABLE and status != TP_STATUS_WRONG_FORMAT:
        s.st.write_eagain += 1          # every slot is still being sent
        capture_drop_iov(s.cap, s.port, DROP_WRITE_EAGAIN, iov, iovcnt, s.skip)
        return -1
    d = <uint8_t*>h + TPACKET2_TX_DATA
    memcpy(d, iov[0].iov_base, VIRTIO_NET_HDR_LEN)
    d[2] = <uint8_t>(n - VIRTIO_NET_HDR_LEN)       # hdr_len: all of it linear (see the top)
    d[3] = <uint8_t>((n - VIRTIO_NET_HDR_LEN) >> 8)
    used = iov[0].iov_len - VNET_HDR_LEN
    memcpy(d + VIRTIO_NET_HDR_LEN, <uint8_t*>iov[0].iov_base + VNET_HDR_LEN, used)
    used += VIRTIO_NET_HDR_LEN
    for k in range(1, iovcnt):
        memcpy(d + used, iov[k].iov_base, iov[k].iov_len)
        used += iov[k].iov_len
    h.tp_len = <uint32_t>n
    store_release_u32(&h.tp_status, TP_STATUS_SEND_REQUEST)
    r.tx_next = ring_next(r.tx_next, r.tx_n)
    r.tx_queued += 1
    s.st.writes += 1
    s.st.frames_out += 1
    s.st.bytes_out += n
    if tx_cost_kick_alone(s.policy, &s.cost):
        afp_kick(r, s)                  # measured alone (tx_cost.pxi)
    return 0


cdef bint afp_end(LoopPort* p, LoopStats* st, int how) noexcept nogil:
    """After the batch: kick the TX ring, give the held RX slots back to the kernel.
    True when frames still wait in the TX ring (the loop calls again); ``how``: END_KICK,
    END_MORE (fewer than RING_KICK_MIN new frames wait for the next batch's end), or
    END_FINAL (the port leaves the loop: what the kernel does not take now is dropped).
    Frames the kernel keeps refusing are kicked about once per RING_RETRY_MS
    (afp_backed_off)."""
    cdef PacketRing* r = <PacketRing*>p.kind
    cdef tpacket2_hdr* h
    cdef int64_t now
    cdef bint kick = how != END_MORE or r.tx_queued >= RING_KICK_MIN or r.tx_since != 0
    cdef bint final = how == END_FINAL
    if r.tx_queued and not final and afp_backed_off(r, st):
        kick = False
    if r.tx_queued and not kick:
        if not r.tx_since:
            st.tx_kicks_deferred += 1   # the next batch's end kicks them
    elif r.tx_queued and afp_kick(r, &p.sink) and r.tx_queued:
        r.tx_since = 0                  # some left: the wait starts again
    if r.tx_queued and (kick or r.tx_since):
        now = now_ns()
        if final or (r.tx_since and now - r.tx_since >= <int64_t>TX_STUCK_MS * 1000000):
            afp_drop_waiting(r, &p.sink, st)
        elif not r.tx_since:
            r.tx_since = now
    while r.rx_holding:
        h = <tpacket2_hdr*>(r.rx + <size_t>r.rx_held * r.frame)
        store_release_u32(&h.tp_status, TP_STATUS_KERNEL)
        r.rx_held = ring_next(r.rx_held, r.rx_n)
        r.rx_holding -= 1
    return r.tx_queued != 0
