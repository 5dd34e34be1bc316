"""Small traffic probes between tenants: ICMP echo, a TCP transfer with a
digest, UDP datagrams, a spoofed-source send.  Used by the demo, the
end-to-end tests and anyone embedding a topology.

Every probe takes sockets factories from the namespaces it runs in
(``tenant.socket``, which creates the socket inside the tenant's kernel
namespace) and is bounded in time.
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

__all__ = ["ping", "tcp_transfer", "udp_send", "udp_receiver", "send_spoofed_udp", "icmp_errors"]


def _icmp_echo(ident, seq, payload=b"tapswitch"):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = packets.checksum(head + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def ping(src, dst, count=3, timeout=1.0):
    """ICMP echo from ``src`` (a tenant) to ``dst``: the round-trip times (s) of the replies."""
    sock = src.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    rtts = []
    try:
        for seq in range(1, count + 1):
            sent = time.monotonic()
            sock.sendto(_icmp_echo(ident, seq), (dst, 0))
            deadline = sent + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    break
                data, addr = sock.recvfrom(65535)
                ihl = (data[0] & 0xF) * 4
                icmp = data[ihl:ihl + 8]
                if len(icmp) == 8 and addr[0] == dst:
                    itype, _, _, rid, rseq = struct.unpack("!BBHHH", icmp)
                    if itype == 0 and rid == ident and rseq == seq:
                        rtts.append(time.monotonic() - sent)
                        break
    finally:
        sock.close()
    return rtts


def icmp_errors(src, send, timeout=1.0):
    """Run ``send()`` and collect the ICMP errors ``src`` receives meanwhile:
    [(type, code, from address)]."""
    sock = src.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    out = []
    try:
        send()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            data, addr = sock.recvfrom(65535)
            ihl = (data[0] & 0xF) * 4
            if len(data) >= ihl + 2 and data[ihl] in (3, 11, 12):
                out.append((data[ihl], data[ihl + 1], addr[0]))
    finally:
        sock.close()
    return out


def tcp_transfer(client, server, server_ip, nbytes, timeout=60.0, chunk=1 << 16):
    """Send ``nbytes`` of pseudo-random data from ``client`` to a server in ``server``.

    Returns ``(sent_digest, received_digest, received_bytes, seconds)``."""
    listener = server.socket(socket.AF_INET, socket.SOCK_STREAM)
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
        conn = client.socket(socket.AF_INET, socket.SOCK_STREAM)
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
    sock = tenant.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    return sock


def drain(sock, timeout=0.5):
    """Every datagram ``sock`` receives until ``timeout`` passes without one: [(data, addr)]."""
    out = []
    while select.select([sock], [], [], timeout)[0]:
        out.append(sock.recvfrom(65535))
    return out


def udp_send(tenant, dst, port, payloads, source=None, broadcast=False):
    """Send each payload from ``tenant`` to ``dst:port``."""
    sock = tenant.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if source is not None:
            sock.bind((source, 0))
        for payload in payloads:
            sock.sendto(payload, (dst, port))
    finally:
        sock.close()


def send_spoofed_udp(tenant, src_ip, dst_ip, port, payload, count=1, ttl=64):
    """Send UDP datagrams from ``tenant`` with a forged source address (raw socket)."""
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
