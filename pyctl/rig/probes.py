"""Small traffic probes between tenants: ICMP echo, a TCP transfer with a
digest, UDP datagrams, a spoofed-source send, whole Ethernet frames sent and
captured on a tenant's link.  Used by the demo, the end-to-end tests and anyone
embedding a topology.

Every probe takes sockets factories from the namespaces it runs in
(``tenant.socket``, which creates the socket inside the tenant's kernel
namespace) and is bounded in time.  Each works for both families: the
address it is given (``":"`` in it: IPv6) chooses.
"""
from __future__ import annotations

import hashlib
import os
import select
import socket
import struct
import threading
import time

from pyctl.daemon import packets

__all__ = ["ping", "tcp_transfer", "udp_send", "udp_receiver", "send_spoofed_udp",
           "icmp_errors", "send_frames", "capture", "family_of"]

ETH_P_ALL = 0x0003
# ICMP(v6) echo request/reply types, and the error types icmp_errors collects
_ECHO = {socket.AF_INET: (8, 0), socket.AF_INET6: (128, 129)}
_ERRORS = {socket.AF_INET: (3, 11, 12), socket.AF_INET6: (1, 2, 3, 4)}


def family_of(address: str) -> int:
    """AF_INET6 for an IPv6 address (text), else AF_INET."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _icmp_socket(tenant, family):
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    return tenant.socket(family, socket.SOCK_RAW, proto)


def _icmp_message(family, data):
    """The ICMP message of what a raw socket read: IPv4 hands the IP header too, IPv6 not."""
    return data[(data[0] & 0xF) * 4:] if family == socket.AF_INET else data


def _icmp_echo(ident, seq, payload=b"tapswitch", itype=8):
    head = struct.pack("!BBHHH", itype, 0, 0, ident, seq)
    # (An ICMPv6 raw socket fills its checksum in itself: the pseudo-header is the kernel's.)
    csum = packets.checksum(head + payload) if itype == 8 else 0
    return struct.pack("!BBHHH", itype, 0, csum, ident, seq) + payload


def _received_until(sock, deadline):
    """Every datagram ``sock`` receives until ``deadline`` (time.monotonic()) passes:
    (data, address) pairs as they come."""
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            return
        yield sock.recvfrom(65535)


def ping(src, dst, count=3, timeout=1.0, hops=None):
    """ICMP (or ICMPv6) echo from ``src`` (a tenant) to ``dst``: the round-trip times (s)
    of the replies; ``hops``: the TTL / hop limit to send with."""
    family = family_of(dst)
    request, reply = _ECHO[family]
    sock = _icmp_socket(src, family)
    if hops is not None:
        _set_hops(sock, family, hops)
    ident = os.getpid() & 0xFFFF
    rtts = []
    try:
        for seq in range(1, count + 1):
            sent = time.monotonic()
            sock.sendto(_icmp_echo(ident, seq, itype=request), (dst, 0))
            for data, addr in _received_until(sock, sent + timeout):
                icmp = _icmp_message(family, data)[:8]
                if len(icmp) == 8 and addr[0] == dst:
                    itype, _, _, rid, rseq = struct.unpack("!BBHHH", icmp)
                    if itype == reply and rid == ident and rseq == seq:
                        rtts.append(time.monotonic() - sent)
                        break
    finally:
        sock.close()
    return rtts


def icmp_errors(src, send, timeout=1.0, family=socket.AF_INET):
    """Run ``send()`` and collect the ICMP (``family`` AF_INET6: ICMPv6) errors ``src``
    receives meanwhile: [(type, code, from address)]; a packet-too-big (ICMPv6 2) or
    fragmentation-needed (ICMP 3/4) also gives the MTU: (type, code, from, mtu)."""
    sock = _icmp_socket(src, family)
    out = []
    try:
        send()
        for data, addr in _received_until(sock, time.monotonic() + timeout):
            icmp = _icmp_message(family, data)
            if len(icmp) >= 8 and icmp[0] in _ERRORS[family]:
                found = (icmp[0], icmp[1], addr[0])
                if (family, icmp[0]) == (socket.AF_INET6, 2):
                    found += (struct.unpack_from("!I", icmp, 4)[0],)
                elif (family, icmp[0], icmp[1]) == (socket.AF_INET, 3, 4):
                    found += (struct.unpack_from("!H", icmp, 6)[0],)
                out.append(found)
    finally:
        sock.close()
    return out


def _set_hops(sock, family, hops):
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, hops)


def tcp_transfer(client, server, server_ip, nbytes, timeout=60.0, chunk=1 << 16):
    """Send ``nbytes`` of pseudo-random data from ``client`` to a server in ``server``.

    Returns ``(sent_digest, received_digest, received_bytes, seconds)``."""
    family = family_of(server_ip)
    listener = server.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((server_ip, 0))
    listener.listen(1)
    listener.settimeout(timeout)
    port = listener.getsockname()[1]
    result = {}

    def serve():
        digest, total = hashlib.sha256(), 0
        try:
            conn, _ = listener.accept()
            conn.settimeout(timeout)
            with conn:
                while data := conn.recv(1 << 18):
                    digest.update(data)
                    total += len(data)
        except OSError as exc:
            result["error"] = exc
        result["digest"], result["bytes"] = digest.hexdigest(), total

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sent = hashlib.sha256()
    block = hashlib.sha256(b"tapswitch").digest() * (chunk // 32)
    start = time.monotonic()
    try:
        conn = client.socket(family, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        with conn:
            conn.connect((server_ip, port))
            left = nbytes
            i = 0
            while left > 0:
                piece = block[: min(left, len(block))]
                piece = bytes([i & 0xFF]) + piece[1:]
                conn.sendall(piece)
                sent.update(piece)
                left -= len(piece)
                i += 1
        thread.join(timeout)
    finally:
        listener.close()
    if "error" in result:
        raise result["error"]
    return sent.hexdigest(), result.get("digest"), result.get("bytes", 0), time.monotonic() - start


def udp_receiver(tenant, ip, port=0):
    """A UDP socket bound in ``tenant``; read it with ``drain(sock, timeout)``."""
    sock = tenant.socket(family_of(ip), socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    return sock


def drain(sock, timeout=0.5):
    """Every datagram ``sock`` receives until ``timeout`` passes without one: [(data, addr)]."""
    out = []
    while select.select([sock], [], [], timeout)[0]:
        out.append(sock.recvfrom(65535))
    return out


def udp_send(tenant, dst, port, payloads, source=None, broadcast=False, hops=None):
    """Send each payload from ``tenant`` to ``dst:port`` (``hops``: TTL / hop limit)."""
    family = family_of(dst)
    sock = tenant.socket(family, socket.SOCK_DGRAM)
    try:
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if hops is not None:
            _set_hops(sock, family, hops)
        if source is not None:
            sock.bind((source, 0))
        for payload in payloads:
            sock.sendto(payload, (dst, port))
    finally:
        sock.close()


def send_spoofed_udp(tenant, src_ip, dst_ip, port, payload, count=1, ttl=64):
    """Send UDP datagrams from ``tenant`` with a forged source address (raw socket)."""
    if family_of(dst_ip) == socket.AF_INET6:
        _send_spoofed_udp6(tenant, src_ip, dst_ip, port, payload, count, ttl)
        return
    sock = tenant.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
        udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
        total = 20 + len(udp)
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, ttl, 17, 0, src, dst)
        head = head[:10] + struct.pack("!H", packets.checksum(head)) + head[12:]
        for _ in range(count):
            sock.sendto(head + udp, (dst_ip, 0))
    finally:
        sock.close()


def _send_spoofed_udp6(tenant, src_ip, dst_ip, port, payload, count, hops):
    """IPv6: a raw IPPROTO_RAW socket sends the IPv6 header as given (IPV6_HDRINCL)."""
    src = socket.inet_pton(socket.AF_INET6, src_ip)
    dst = socket.inet_pton(socket.AF_INET6, dst_ip)
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!IxxxB", length, socket.IPPROTO_UDP)
    head = struct.pack("!HHHH", 40000, port, length, 0)
    csum = packets.checksum(pseudo + head + payload) or 0xFFFF
    udp = struct.pack("!HHHH", 40000, port, length, csum) + payload
    packet = struct.pack("!IHBB", 6 << 28, length, socket.IPPROTO_UDP, hops) + src + dst + udp
    sock = tenant.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        for _ in range(count):
            sock.sendto(packet, (dst_ip, 0))
    finally:
        sock.close()


def send_frames(tenant, frames):
    """Write whole Ethernet frames out of ``tenant``'s link (its TAP, in its namespace),
    as a host behind the port would send them: crafted ND, MLD, RAs, spoofed sources."""
    sock = tenant.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((tenant.port, 0))
        for frame in frames:
            sock.send(frame)
    finally:
        sock.close()


def capture(tenant, during, timeout=0.5, accept=lambda frame: True):
    """The Ethernet frames ``tenant``'s link receives (what the switch sends it) while
    ``during()`` runs and ``timeout`` seconds after it, those ``accept(frame)`` takes."""
    sock = tenant.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    out = []
    try:
        sock.bind((tenant.port, 0))
        during()
        for frame, addr in _received_until(sock, time.monotonic() + timeout):
            if addr[2] != socket.PACKET_OUTGOING and accept(frame):
                out.append(frame)
    finally:
        sock.close()
    return out
