"""Helpers for the packet-loop tests: a small datapath world and socket pairs that
stand in for TAP fds (SOCK_SEQPACKET keeps frame boundaries: one read, one frame)."""
import socket
import struct


import fastpath
from fastpath import verdicts

BACKENDS = fastpath.io_backends()       # each loop test runs on every backend built here

SCOPE = 0
TENANTS = {1: "10.0.0.1", 2: "10.0.0.2", 3: "10.0.0.3"}   # namespace = port id
SWITCH_IP = "10.0.0.254"


def ip(dotted):
    return int.from_bytes(socket.inet_aton(dotted), "big")


def mac(k):
    return bytes([0x02, 0, 0, 0, 0, k])


def peer_mac(port):
    """The MAC of the endpoint behind port ``port``."""
    return bytes([0x02, 0xEE, 0, 0, 0, port])


def mac_str(m):
    return ":".join(f"{b:02x}" for b in m)


def world(max_ports=16, implementation=None):
    """One L2 (ns 0, owning SWITCH_IP), L3 tenants 1..3 on ports 1..3, peers known; all on
    10.0.0.0/24 (its broadcast 10.0.0.255 reaches the tenants).  ``implementation``: the
    datapath class (default the compiled core's; ReferenceDatapath: the oracle)."""
    dp = (implementation or fastpath.Datapath)(max_namespaces=16, max_ports=max_ports,
                                               route_cache_size=16)
    with dp.update():
        dp.set_namespace(SCOPE, SCOPE, False)
        dp.add_address(SCOPE, ip(SWITCH_IP), SCOPE, 24)
        for ns, addr in TENANTS.items():
            dp.set_namespace(ns, SCOPE, True)
            dp.set_port(ns, ns, mac(ns))
            dp.add_address(SCOPE, ip(addr), ns, 24)
        dp.set_broadcast(SCOPE, ip("10.0.0.255"), list(TENANTS))
    for ns in TENANTS:
        dp.set_peer_mac(ns, peer_mac(ns))
    return dp


class KernelSide:
    """The kernel's side of a link a loop port serves, as a test drives it: frames go in
    and come out through ``self.peer``, a non-blocking socket."""

    peer: socket.socket

    def inject(self, data):
        self.peer.send(data)

    def drain(self):
        """Every frame waiting on this side, in order."""
        out = []
        while True:
            try:
                out.append(self.peer.recv(1 << 17))
            except BlockingIOError:
                return out


class FakeTap(KernelSide):
    """A socket pair: ``loop_fd`` goes to the loop, ``peer`` is the kernel's side."""

    def __init__(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        a.setblocking(False)
        b.setblocking(False)
        self.loop_sock, self.peer = a, b
        self.loop_fd = a.fileno()

    def close(self):
        self.loop_sock.close()
        self.peer.close()


def udp_frame(src_port, dst_ip, payload=b"x" * 32, *, ttl=64, dst_mac=None, sport=1000, dport=2000):
    """An IPv4/UDP frame that tenant ``src_port`` sends to ``dst_ip`` through the switch
    (struct-built: correct IPv4 and UDP checksums)."""
    src = socket.inet_aton(TENANTS[src_port])
    dst = socket.inet_aton(dst_ip)
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0x4000, ttl, 17, 0, src, dst)
    iph = iph[:10] + struct.pack("!H", checksum(iph)) + iph[12:]
    return (dst_mac or mac(src_port)) + peer_mac(src_port) + b"\x08\x00" + iph + udp


def arp_request(src_port, target_ip):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, peer_mac(src_port),
                       socket.inet_aton(TENANTS[src_port]), bytes(6), socket.inet_aton(target_ip))
    return b"\xff" * 6 + peer_mac(src_port) + b"\x08\x06" + body


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def expected(frames, headers=None, implementation=None):
    """What Datapath.process() (``implementation``'s: world()) on a fresh world() makes of
    [(port, bytes)] (``headers``: {i: the virtio-net header frame i came with}, a
    super-frame's gso_size decides whether it fits its port's MTU): ({out_port: [bytes]},
    [slow-path (port, reason, bytes)]), the loop's oracle."""
    dp = world(implementation=implementation)
    b = fastpath.Batch(capacity=max(1, len(frames)), slot_size=65536 + 256)
    b.load(frames)
    for i, header in (headers or {}).items():
        b.buf[int(b.offset[i]) - len(header):int(b.offset[i])] = bytearray(header)
    dp.process(b)
    out, slow = {}, []
    for i, (verdict, reason, port, copies) in enumerate(b.results()):
        if verdict == verdicts.VERDICT_FORWARD:
            out.setdefault(port, []).append(b.frame(i))
        for p, data in copies:
            out.setdefault(p, []).append(data)
        if verdict == verdicts.VERDICT_SLOWPATH:
            slow.append((frames[i][0], reason, b.frame(i)))
    return out, slow


# ---- virtio-net header helpers --------------------------------------------------------

NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4, GSO_ECN = 0, 1, 3, 4, 5, 0x80


def vnet_hdr(flags=0, gso_type=GSO_NONE, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def _l3(frame):
    """(is_v6, l4 offset, proto, pseudo-header bytes without the length)."""
    if frame[12:14] == b"\x86\xdd":
        return True, 54, frame[20], frame[22:54]
    ihl = (frame[14] & 0xF) * 4
    return False, 14 + ihl, frame[23], frame[26:34]


def _pseudo(frame, l4len):
    v6, l4, proto, addrs = _l3(frame)
    if v6:
        return addrs + struct.pack("!IxxxB", l4len, proto)
    return addrs + struct.pack("!BBH", 0, proto, l4len)


def offloaded(frame, gso_type=GSO_NONE, gso_size=0):
    """(header, frame) as a kernel with checksum offload hands it over: the L4 checksum
    field holds the pseudo-header sum only and NEEDS_CSUM points at it."""
    v6, l4, proto, _ = _l3(frame)
    end = len(frame)
    coff = 16 if proto == 6 else 6
    partial = ~checksum(_pseudo(frame, end - l4)) & 0xFFFF
    f = frame[:l4 + coff] + struct.pack("!H", partial) + frame[l4 + coff + 2:]
    l4h = (f[l4 + 12] >> 4) * 4 if proto == 6 else 8
    return vnet_hdr(NEEDS_CSUM, gso_type, l4 + l4h, gso_size, l4, coff), f


def checksums_ok(frame):
    """True when the frame's IPv4 header checksum and its TCP/UDP checksum verify."""
    v6, l4, proto, _ = _l3(frame)
    if not v6 and checksum(frame[14:l4]) != 0:
        return False
    seg = frame[l4:]
    if proto == 17 and seg[6:8] == b"\0\0":
        return False                      # we never emit "no checksum"
    return checksum(_pseudo(frame, len(seg)) + seg) == 0
