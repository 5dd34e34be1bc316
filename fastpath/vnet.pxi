# The virtio-net header of TAP ports opened with IFF_VNET_HDR: checking what a port
# reads, and making a frame fit for a port *without* the header (complete the L4
# checksum the sender left partial; cut a GSO super-frame into segments in software).
#
# Policy (docs: issue 5 point 1).  A frame read from a vnet port keeps its header in the
# batch's headroom (buf[offset - 12 : offset]), its checksum claim (DATA_VALID) cleared at
# the trust boundary (vnet_drop_claims, as it is read).  Out to a vnet port it goes with
# that header: the receiving kernel segments and checksums it.  Out to a port
# without the header:
#   - flags NEEDS_CSUM: the checksum at csum_start + csum_offset is completed in place;
#   - gso_type TCPV4, TCPV6 or UDP_L4 (IPv4 or IPv6; ECN bit with TCP): the frame is cut
#     into gso_size segments (software GSO, no payload copy: each segment is written as
#     Ethernet header + rebuilt L3/L4 header + a slice of the original payload);
#   - gso_type UDP (UFO, long deprecated, never sent by current kernels): refused.
# Header checks (a refused header is a counted drop, the frame never reaches process()):
# unknown flag bits, unknown gso_type, ECN without TCP, csum_start/csum_offset beyond the
# frame or csum_start before the end of the Ethernet and IPv4 header / IPv6 extension
# chain (completing the checksum would rewrite what process() checked: addresses, TTL,
# the next-header chain; csum_field_ok), hdr_len beyond the frame, GSO without
# NEEDS_CSUM or with gso_size 0, GSO on a frame that is not the IPv4/IPv6 TCP/UDP packet
# its gso_type says (IPv4 fragments, IPv6 fragments and routing headers with segments
# left included; other IPv6 extension headers are kept in every segment), or whose L4
# header is not at csum_start; and a super-frame that would need more than
# VNET_MAX_SEGMENTS (fastpath/reasons.py) segments (its payload over gso_size, rounded up), so the work one
# frame can cause is bounded (issue 14 item 11: a gso_size of 1 made 65,000 writes of
# one frame).  256 segments is 64 KiB at a gso_size of 256; a kernel's TCP sends
# 1,448 (45 segments) or more.
#
# Header layout (TUNSETVNETHDRSZ=12, little-endian on x86): flags u8, gso_type u8,
# hdr_len u16, gso_size u16, csum_start u16, csum_offset u16, num_buffers u16 (a TAP
# neither fills nor reads num_buffers).
from libc.string cimport memcpy, memset
from posix.uio cimport iovec

cdef enum:
    VNET_HDR_LEN = 12
    VNET_F_NEEDS_CSUM = 1
    VNET_F_DATA_VALID = 2
    VNET_GSO_NONE = 0
    VNET_GSO_TCPV4 = 1
    VNET_GSO_UDP = 3            # UFO: refused
    VNET_GSO_TCPV6 = 4
    VNET_GSO_UDP_L4 = 5         # USO; Debian's Linux 6.1 headers lack it
    VNET_GSO_ECN = 0x80
    IPPROTO_TCP_ = 6
    IPPROTO_UDP_ = 17
    SEG_SCRATCH = 512           # rebuilt L3+L4 header of one segment (<= 40 + 256 + 60)

# Why a header was refused: VNET_OK, VNET_SHORT, ... (the loop's vnet drop counters) are
# generated from VNET_REFUSALS of fastpath/reasons.py, as are their names.
VNET_REASON_NAMES = VNET_REFUSAL_NAMES


cdef struct GsoInfo:
    uint32_t l4             # offset of the TCP/UDP header in the frame
    uint32_t hl             # offset of the payload (end of the L4 header)
    uint32_t end            # end of the IP packet (Ethernet padding excluded)
    bint v6, tcp


cdef inline uint16_t le16(const uint8_t* p) noexcept nogil:
    return <uint16_t>p[0] | (<uint16_t>p[1] << 8)


cdef inline uint16_t be16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline void put_be16(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = (v >> 8) & 0xFF
    p[1] = v & 0xFF


cdef inline uint8_t gso_parse(const uint8_t* f, uint32_t n, uint8_t gso, GsoInfo* g) noexcept nogil:
    """Locate the headers of a GSO frame of type ``gso`` (ECN bit cleared)."""
    cdef uint32_t ihl, tot, plen, l4h
    cdef uint16_t et
    cdef uint8_t proto
    cdef Ip6Upper u
    if n < ETH_HLEN + 20:
        return VNET_BAD_GSO
    et = be16(f + 12)
    g.tcp = gso != VNET_GSO_UDP_L4
    if et == ETHERTYPE_IPV4 and gso != VNET_GSO_TCPV6:
        if f[14] >> 4 != 4:
            return VNET_BAD_GSO
        ihl = (f[14] & 0xF) * 4
        tot = be16(f + 16)
        if ihl < 20 or tot < ihl or ETH_HLEN + tot > n or be16(f + 20) & 0x3FFF:
            return VNET_BAD_GSO        # short, lying length, or a fragment
        proto = f[23]
        g.v6 = False
        g.l4 = ETH_HLEN + ihl
        g.end = ETH_HLEN + tot
    elif et == ETHERTYPE_IPV6 and gso != VNET_GSO_TCPV4:
        if n < ETH_HLEN + IPV6_HLEN or f[14] >> 4 != 6:
            return VNET_BAD_GSO
        plen = be16(f + 18)
        if ETH_HLEN + IPV6_HLEN + plen > n:
            return VNET_BAD_GSO
        # extension headers are kept in every segment; a fragment, or a routing header
        # whose destination is not the final one (the pseudo-header's), is refused
        if not ipv6_walk(f + ETH_HLEN, IPV6_HLEN + plen, &u) or u.fragment or u.routed:
            return VNET_BAD_GSO
        proto = <uint8_t>u.proto
        g.v6 = True
        g.l4 = ETH_HLEN + u.off
        g.end = ETH_HLEN + IPV6_HLEN + plen
    else:
        return VNET_BAD_GSO
    if proto != (IPPROTO_TCP_ if g.tcp else IPPROTO_UDP_):
        return VNET_BAD_GSO
    if g.tcp:
        if g.l4 + 20 > g.end:
            return VNET_BAD_GSO
        l4h = (f[g.l4 + 12] >> 4) * 4
        if l4h < 20:
            return VNET_BAD_GSO
    else:
        l4h = 8
    g.hl = g.l4 + l4h
    if g.hl > g.end:
        return VNET_BAD_GSO
    return VNET_OK


cdef inline bint csum_field_ok(const uint8_t* f, uint32_t n, uint32_t cstart, uint32_t coff) noexcept nogil:
    """May a NEEDS_CSUM header of frame ``f`` have its checksum at cstart + coff?  It is
    completed after process() decided, so it must not rewrite what process() read: the
    Ethernet header; for IPv4 the IP header; for IPv6 the fixed header and the whole
    extension chain (its next-header fields name the upper layer), and for ICMPv6 the
    message type (the field must be ICMPv6's own, at offset 2: an echo completed into a
    router advertisement would reach another tenant)."""
    cdef uint16_t et
    cdef Ip6Upper u
    cdef uint32_t end
    if cstart + coff + 2 > n or cstart < ETH_HLEN:
        return False
    if n <= ETH_HLEN:
        return True
    et = be16(f + 12)
    if et == ETHERTYPE_IPV4:
        return cstart >= ETH_HLEN + (f[ETH_HLEN] & 0xFu) * 4
    if et == ETHERTYPE_IPV6:
        if n < ETH_HLEN + IPV6_HLEN:
            return False
        end = IPV6_HLEN + be16(f + 18)
        if ETH_HLEN + end > n or not ipv6_walk(f + ETH_HLEN, end, &u):
            return False
        if u.proto == NH_ICMPV6:
            return cstart == ETH_HLEN + u.off and coff == 2
        return cstart >= ETH_HLEN + u.off
    return True


cdef inline uint8_t vnet_check(const uint8_t* h, const uint8_t* f, uint32_t n) noexcept nogil:
    """VNET_OK, or why the header ``h`` of frame ``f`` (``n`` bytes) is refused."""
    cdef uint8_t flags = h[0], gso = h[1] & ~VNET_GSO_ECN
    cdef uint32_t cstart = le16(h + 6), coff = le16(h + 8)
    cdef GsoInfo g
    if flags & ~(VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID):
        return VNET_BAD_FLAGS
    if gso != VNET_GSO_NONE and gso != VNET_GSO_TCPV4 and gso != VNET_GSO_TCPV6 \
            and gso != VNET_GSO_UDP_L4:
        return VNET_BAD_GSO_TYPE
    if h[1] & VNET_GSO_ECN and gso != VNET_GSO_TCPV4 and gso != VNET_GSO_TCPV6:
        return VNET_BAD_GSO_TYPE
    if flags & VNET_F_NEEDS_CSUM and not csum_field_ok(f, n, cstart, coff):
        return VNET_BAD_CSUM
    if le16(h + 2) > n:
        return VNET_BAD_HDR_LEN
    if gso == VNET_GSO_NONE:
        return VNET_OK
    if not flags & VNET_F_NEEDS_CSUM or le16(h + 4) == 0:
        return VNET_BAD_GSO
    if gso_parse(f, n, gso, &g) != VNET_OK:
        return VNET_BAD_GSO
    if cstart != g.l4 or coff != (16 if g.tcp else 6):
        return VNET_BAD_GSO
    if (g.end - g.hl + le16(h + 4) - 1) // le16(h + 4) > VNET_MAX_SEGMENTS:
        return VNET_TOO_MANY_SEGMENTS
    return VNET_OK


cdef inline void vnet_drop_claims(uint8_t* h) noexcept nogil:
    """Clear what the sender's kernel claims about a frame's checksum (DATA_VALID: "the
    checksum was verified") in a header the switch accepted: a claim holds for the port
    it came in on, never for the frame another tenant gets (issue 14 item 12).  A partial
    checksum (NEEDS_CSUM) stays a request: completed in software for a plain port, by the
    receiving kernel for a vnet port."""
    h[0] &= ~VNET_F_DATA_VALID


cdef inline void vnet_complete_csum(uint8_t* f, uint32_t n, uint8_t* h) noexcept nogil:
    """Finish a NEEDS_CSUM frame: the field holds the pseudo-header sum; add the rest."""
    cdef uint32_t start = le16(h + 6), at = start + le16(h + 8)
    cdef uint16_t c = ~csum_bytes(f + start, n - start) & 0xFFFF
    if c == 0:
        c = 0xFFFF              # as the kernel does (CSUM_MANGLED_0): 0 means "none" in UDP
    put_be16(f + at, c)
    h[0] &= ~VNET_F_NEEDS_CSUM


# Where segments go: a function that takes one segment as iovecs (Ethernet header,
# L3+L4 header, payload slice -- possibly empty) and returns 0 when it was taken.  The
# sink must copy all iovecs but the last before it returns (the header scratch is reused
# for the next segment); the last one points into the frame and stays valid.
ctypedef int (*seg_sink)(void* ctx, iovec* iov, int iovcnt) noexcept nogil


cdef inline Py_ssize_t gso_segment(const uint8_t* eth, const uint8_t* f, uint32_t n,
                                   const uint8_t* h, uint8_t* scratch,
                                   seg_sink sink, void* ctx) noexcept nogil:
    """Cut the GSO frame ``f`` (header ``h``, already checked) into segments of gso_size
    payload bytes, each with Ethernet header ``eth`` (14 bytes; the frame's own or a
    fan-out copy's).  Returns the number of segments the sink took, -1 if malformed."""
    cdef GsoInfo g
    cdef uint32_t mss = le16(h + 4), hdrlen, payload, nseg, k, seglen, l4len, seq, seq_k, s
    cdef uint32_t l4, ip_id
    cdef uint8_t* ip = scratch
    cdef uint8_t* th
    cdef uint16_t c
    cdef uint8_t proto
    cdef Py_ssize_t taken = 0
    cdef iovec iov[3]
    if mss == 0 or gso_parse(f, n, h[1] & ~VNET_GSO_ECN, &g) != VNET_OK:
        return -1
    hdrlen = g.hl - ETH_HLEN
    if hdrlen > SEG_SCRATCH:
        return -1
    payload = g.end - g.hl
    nseg = (payload + mss - 1) // mss if payload else 1
    l4 = g.l4 - ETH_HLEN
    th = scratch + l4
    proto = IPPROTO_TCP_ if g.tcp else IPPROTO_UDP_
    seq = (<uint32_t>be16(f + g.l4 + 4) << 16) | be16(f + g.l4 + 6) if g.tcp else 0
    ip_id = be16(f + ETH_HLEN + 4) if not g.v6 else 0
    iov[0].iov_base = <void*>eth
    iov[0].iov_len = ETH_HLEN
    iov[1].iov_base = scratch
    iov[1].iov_len = hdrlen
    for k in range(nseg):
        seglen = payload - k * mss
        if seglen > mss:
            seglen = mss
        memcpy(scratch, f + ETH_HLEN, hdrlen)
        l4len = g.hl - g.l4 + seglen
        if g.v6:
            put_be16(ip + 4, hdrlen - IPV6_HLEN + seglen)   # extension headers included
            s = csum_bytes(ip + 8, 32)                      # source + destination
        else:
            put_be16(ip + 2, hdrlen + seglen)
            put_be16(ip + 4, (ip_id + k) & 0xFFFF)
            ip[10] = 0
            ip[11] = 0
            put_be16(ip + 10, ~csum_bytes(ip, l4) & 0xFFFF)
            s = csum_bytes(ip + 12, 8)
        s += l4len + proto
        if g.tcp:
            seq_k = seq + k * mss
            th[4] = (seq_k >> 24) & 0xFF
            th[5] = (seq_k >> 16) & 0xFF
            th[6] = (seq_k >> 8) & 0xFF
            th[7] = seq_k & 0xFF
            if k + 1 < nseg:
                th[13] &= ~0x09                              # FIN, PSH: last segment only
            if k > 0:
                th[13] &= ~0x80                              # CWR: first segment only
            th[16] = 0
            th[17] = 0
        else:
            put_be16(th + 4, l4len)
            th[6] = 0
            th[7] = 0
        s += csum_bytes(th, g.hl - g.l4) + csum_bytes(f + g.hl + k * mss, seglen)
        c = ~csum_fold(s) & 0xFFFF
        if c == 0 and not g.tcp:
            c = 0xFFFF
        put_be16(th + (16 if g.tcp else 6), c)
        iov[2].iov_base = <void*>(f + g.hl + k * mss)
        iov[2].iov_len = seglen
        if sink(ctx, iov, 3) == 0:      # always 3: a sink may keep the last iovec (uring.pxi)
            taken += 1
    return taken


# ---- Python helpers (tests, tools): the same code on bytes --------------------------------

cdef int _collect_segment(void* ctx, iovec* iov, int iovcnt) noexcept nogil:
    with gil:
        (<list>ctx).append(b"".join([(<char*>iov[j].iov_base)[:iov[j].iov_len]
                                     for j in range(iovcnt)]))
    return 0


def vnet_validate(const uint8_t[::1] header, const uint8_t[::1] frame):
    """Why a port would refuse ``header`` + ``frame``: a name from VNET_REASON_NAMES
    ("ok" when accepted)."""
    if header.shape[0] != VNET_HDR_LEN:
        raise ValueError(f"a virtio-net header is {VNET_HDR_LEN} bytes, not {header.shape[0]}")
    if frame.shape[0] == 0:
        return VNET_REASON_NAMES[VNET_BAD_CSUM if header[0] & VNET_F_NEEDS_CSUM else VNET_OK]
    return VNET_REASON_NAMES[vnet_check(&header[0], &frame[0], frame.shape[0])]


def vnet_to_plain(header, frame):
    """The frames a port *without* the header gets for ``header`` + ``frame``: the frame
    with its checksum completed, or its segments.  ValueError for a refused header."""
    h = bytearray(header)
    f = bytearray(frame)
    why = vnet_validate(bytes(h), bytes(f))
    if why != "ok":
        raise ValueError(why)
    cdef uint8_t[::1] hv = h
    cdef uint8_t[::1] fv = f
    cdef uint8_t scratch[SEG_SCRATCH]
    out = []
    if h[1] & ~VNET_GSO_ECN != VNET_GSO_NONE:
        if gso_segment(&fv[0], &fv[0], len(f), &hv[0], scratch, _collect_segment, <void*>out) < 0:
            raise ValueError("vnet_bad_gso")
        return out
    if h[0] & VNET_F_NEEDS_CSUM:
        vnet_complete_csum(&fv[0], len(f), &hv[0])
    return [bytes(f)]
