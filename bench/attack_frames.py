"""The frames a hostile tenant floods the switch with (bench/attacks.py), and the paced
sender that puts them on the tenant's own interface from inside its kernel namespace.

Each flood is a context manager like ``attacks.control_socket_flood``: it sends from a
thread until it is left, then its notes say what went out.  Frames are built here, by
hand, as a tenant's own program would (an AF_PACKET socket bound to its interface: the
tenant's kernel hands them to its TAP as they are):

- ``slow_path``: ARP requests for the gateway and pings to it, alternately (issue 14
  item 14: what the slow path answers);
- ``igmp``: IGMPv3 reports, RECORDS new groups each, then the same reports again
  (item 10: each record is work for the snooper);
- ``super_frames``: TCP super-frames of 64,000 bytes whose virtio-net header says
  gso_size 1 (item 11: cut in software, each would be 64,000 writes).  The tenant's
  packet socket takes a virtio-net header (PACKET_VNET_HDR) and its kernel hands the
  frame to its TAP whole: the TAP offers TSO, and a frame from user space (marked
  "dodgy") only has its segment count checked, never its gso_size.
"""
from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time

from pyctl.daemon import packets as pk

__all__ = ["FLOODS", "running", "slow_path_frames", "igmp_frames", "super_frame"]

BROADCAST = b"\xff" * 6
ROUTER_ALERT = b"\x94\x04\x00\x00"
IGMP_V3_REPORT, CHANGE_TO_INCLUDE, CHANGE_TO_EXCLUDE = 0x22, 3, 4


def _ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def slow_path_frames(src_mac: bytes, src: str, gateway: str, gateway_mac: bytes) -> list[bytes]:
    """An ARP request for the gateway (broadcast) and a ping to it."""
    arp = pk.build_ethernet(BROADCAST, src_mac, pk.ETH_P_ARP,
                            pk.build_arp(pk.ARP_REQUEST, src_mac, _ip(src), bytes(6), _ip(gateway)))
    echo = pk.build_icmp(pk.ICMP_ECHO_REQUEST, 0, struct.pack("!HH", 0x7A7A, 1), b"x" * 32)
    ping = pk.build_ethernet(gateway_mac, src_mac, pk.ETH_P_IP,
                             pk.build_ipv4(_ip(src), _ip(gateway), pk.IPPROTO_ICMP, echo))
    return [arp, ping]


def igmp_frames(src_mac: bytes, src: str, reports: int, records: int,
                first: str = "239.1.0.0", record_type: int = CHANGE_TO_EXCLUDE) -> list[bytes]:
    """``reports`` IGMPv3 reports of ``records`` joins each (``record_type``
    CHANGE_TO_INCLUDE: leaves), every group a new one (239.x.y.z counting up from
    ``first``)."""
    frames, group = [], _ip(first)
    dst = _ip("224.0.0.22")
    for _ in range(reports):
        body = b"".join(struct.pack("!BBHI", record_type, 0, 0, group + k)
                        for k in range(records))
        group += records
        message = struct.pack("!BBHHH", IGMP_V3_REPORT, 0, 0, 0, records) + body
        message = message[:2] + pk.checksum(message).to_bytes(2, "big") + message[4:]
        head = struct.pack("!BBHHHBBHII", 0x46, 0xC0, 24 + len(message), 0, 0, 1,
                           pk.IPPROTO_IGMP, 0, _ip(src), dst) + ROUTER_ALERT
        head = head[:10] + pk.checksum(head).to_bytes(2, "big") + head[12:]
        frames.append(pk.build_ethernet(b"\x01\x00\x5e\x00\x00\x16", src_mac, pk.ETH_P_IP,
                                        head + message))
    return frames


SOL_PACKET, PACKET_VNET_HDR = 263, 15            # <linux/socket.h>, <linux/if_packet.h>
VNET_NEEDS_CSUM, VNET_GSO_TCPV4 = 1, 1
SUPER_PAYLOAD = 64000


def super_frame(dst_mac: bytes, src_mac: bytes, src: str, dst: str, gso_size: int,
                payload: int = SUPER_PAYLOAD) -> bytes:
    """A virtio-net header (struct virtio_net_hdr: TCPv4 GSO of ``gso_size``, checksum
    to complete) and a TCP segment of ``payload`` bytes to cut, as a kernel's TSO would
    hand it: the TCP checksum field holds the pseudo-header's sum."""
    tcp_len = 20 + payload
    pseudo = pk.checksum(struct.pack("!IIBBH", _ip(src), _ip(dst), 0, pk.IPPROTO_TCP, tcp_len))
    tcp = struct.pack("!HHIIBBHHH", 40000, 9, 1, 1, 5 << 4, 0x18, 65535, ~pseudo & 0xFFFF, 0)
    frame = pk.build_ethernet(dst_mac, src_mac, pk.ETH_P_IP, pk.build_ipv4(
        _ip(src), _ip(dst), pk.IPPROTO_TCP, tcp + bytes(payload), df=True))
    header = struct.pack("<BBHHHH", VNET_NEEDS_CSUM, VNET_GSO_TCPV4, 14 + 20 + 20, gso_size,
                         14 + 20, 16)
    return header + frame


def _neighbour_mac(ip: str) -> bytes:
    """The MAC the tenant's kernel resolved for ``ip`` (a datagram sent first makes it)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.sendto(b"?", (ip, 9))
    finally:
        probe.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open("/proc/net/arp") as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split()
                if cols[0] == ip and cols[3] != "00:00:00:00:00:00":
                    return _mac(cols[3])
        time.sleep(0.05)
    raise RuntimeError(f"no neighbour entry for {ip}")


@contextlib.contextmanager
def running(*funcs):
    """Each ``func(stop)`` in a thread of its own until the block is left; then ``stop``
    (a threading.Event) is set and the threads joined."""
    stop = threading.Event()
    threads = [threading.Thread(target=f, args=(stop,), name="attack", daemon=True)
               for f in funcs]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@contextlib.contextmanager
def _paced(sock: socket.socket, frames: list[bytes], rate: float, to: list | None = None):
    """Send ``frames`` in turn, again and again, at ``rate`` per second from a thread,
    until left; each to the address in ``to`` beside it (default: the socket's peer)."""
    notes = {"sent": 0, "send_errors": 0}

    def run(stop):
        start, k = time.monotonic(), 0
        while not stop.is_set():
            try:
                if to is None:
                    sock.send(frames[k % len(frames)])
                else:
                    sock.sendto(frames[k % len(frames)], to[k % len(frames)])
                notes["sent"] += 1
            except OSError:
                notes["send_errors"] += 1
            k += 1
            if k % 50 == 0:
                ahead = start + k / rate - time.monotonic()
                if ahead > 0:
                    stop.wait(ahead)
    try:
        with running(run):
            yield notes
    finally:
        sock.close()


def _packet_socket(iface: str) -> socket.socket:
    """A packet socket that sends whole frames on ``iface`` (protocol 0: it reads none)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    return sock


def _iface_mac(iface: str) -> bytes:
    """The interface's MAC (a bound packet socket's name says it; /sys shows the
    namespace it was mounted in, not this one)."""
    sock = _packet_socket(iface)
    try:
        return sock.getsockname()[4]
    finally:
        sock.close()


@contextlib.contextmanager
def slow_path(iface: str, src: str, gateway: str, rate: str = "20000"):
    mac = _iface_mac(iface)
    frames = slow_path_frames(mac, src, gateway, _neighbour_mac(gateway))
    with _paced(_packet_socket(iface), frames, float(rate)) as notes:
        yield notes


@contextlib.contextmanager
def igmp(iface: str, src: str, reports: str = "1000", records: str = "100", rate: str = "1000"):
    frames = igmp_frames(_iface_mac(iface), src, int(reports), int(records))
    with _paced(_packet_socket(iface), frames, float(rate)) as notes:
        notes["groups_per_round"] = int(reports) * int(records)
        yield notes


@contextlib.contextmanager
def super_frames(iface: str, src: str, dst: str, rate: str = "50", gso_size: str = "1"):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((iface, 0))
    frame = super_frame(_neighbour_mac(dst), _iface_mac(iface), src, dst, int(gso_size))
    with _paced(sock, [frame], float(rate)) as notes:
        notes["segments_each"] = -(-SUPER_PAYLOAD // int(gso_size))
        yield notes


@contextlib.contextmanager
def udp_flood(dst: str, rate: str = "10000", every: str = "1"):
    """Ordinary 64-byte UDP datagrams to ``dst``, ``rate`` a second: what an accomplice
    sends a tenant whose stack makes each one expensive (slow-stack) -- to port 9
    (discard), or with ``every`` = N only one in N, the others to port 10 (sparse-stack:
    only frames to port 9 are expensive)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    to = [(dst, 9)] + [(dst, 10)] * (int(every) - 1)
    with _paced(sock, [b"\0" * 18] * len(to), float(rate), to) as notes:
        yield notes


FLOODS = {"slow-path-flood": slow_path, "igmp-flood": igmp, "super-frames": super_frames,
          "udp-flood": udp_flood}
