"""Offloads end to end through the daemon (issue 5), on every I/O backend built here
and for every port kind (``port_kinds``).

Two dual-stack L3 tenants on different subnets of the root L2 (so every frame between
them is routed by the switch), each behind a port of the kind under test in its own
kernel namespace.  Offloads on both sides (a TAP's virtio-net header, csum + TSO + USO,
or a veth's: super-frames cross the switch; an xdp port carries none), or, "off", the
receiving side a TAP without the header (the switch segments and checksums in software
what the sender's kind hands it whole).  Over each family (IPv6: TSO6 and USO6
super-frames, issue 15), a 200 MB TCP transfer arrives intact; UDP datagrams of 1 to
65,000 bytes, with and without UDP_SEGMENT, arrive intact with TTL / hop limit 63 when
sent with 64; the receiving kernels count no header or checksum error.
"""
import random
import socket
import struct
import threading

import pytest

import fastpath
import fastpath.reasons
from pyctl.rig import probes
from tests.support.datagrams import mismatch, pattern

IP_RECVTTL = 12                 # <linux/in.h>; not in Python's socket module
IPV6_RECVHOPLIMIT = 51          # <linux/in6.h>
IPV6_HOPLIMIT = 52
UDP_SEGMENT = 103               # <linux/udp.h>
ALL_OFFLOADS = ["csum", "tso4", "tso6", "uso4", "uso6"]
# ... and the largest datagram that fits a 1500-byte frame, and one byte more, per family
SIZES = {4: [1, 2, 100, 1472, 1473, 4000, 8972, 30000, 65000],
         6: [1, 2, 100, 1452, 1453, 4000, 8952, 30000, 65000]}
TCP_BYTES = 200 << 20
SENDER_TTL = 64

CASES = [(backend, side) for backend in fastpath.io_backends() for side in ("on", "off")]
pytestmark = pytest.mark.port_kinds


@pytest.fixture(params=CASES, ids=[f"{b}-offloads-{s}" for b, s in CASES])
def routed(request, tapswitch_factory, tapswitch_port_kind, monkeypatch):
    """(topology, a, b, side): a with offloads on (a TAP's all, a veth's own; none on an
    xdp port), b the same (``on``) or a TAP without the header (``off``)."""
    backend, side = request.param
    monkeypatch.setenv(fastpath.IO_BACKEND_ENV, backend)
    net = random.randint(16, 250)
    topo = tapswitch_factory(vnet_hdr=True)
    tap = tapswitch_port_kind == "tap"
    topo.address_add("init", f"10.{net}.1.1/24")
    topo.address_add("init", f"10.{net}.2.1/24")
    topo.address_add("init", f"fd{net:02x}:1::1/64")
    topo.address_add("init", f"fd{net:02x}:2::1/64")
    offloads = ALL_OFFLOADS if tap else None
    a = topo.tenant("a", f"10.{net}.1.2/24", f"fd{net:02x}:1::2/64", offloads=offloads)
    if side == "on":
        b = topo.tenant("b", f"10.{net}.2.2/24", f"fd{net:02x}:2::2/64", offloads=offloads)
    else:
        b = topo.tenant("b", f"10.{net}.2.2/24", f"fd{net:02x}:2::2/64", kind="tap",
                        vnet_hdr=False)
    topo.start()
    assert topo.stats()["backend"] == backend
    return topo, a, b, side


def snmp(tenant):
    """The namespace's /proc/net/snmp as {"Ip": {...}, "Tcp": {...}, "Udp": {...}}."""
    lines = tenant.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    return {names.split(":")[0]: dict(zip(names.split()[1:], map(int, values.split()[1:])))
            for names, values in zip(lines[::2], lines[1::2])}


def snmp6(tenant):
    """The namespace's /proc/net/snmp6 as {"Ip6InHdrErrors": n, ...}."""
    return {name: int(value) for name, value
            in (line.split() for line in tenant.run(["cat", "/proc/net/snmp6"]).stdout
                .splitlines() if line.strip())}


def receive_errors(tenant):
    """Both families' header, reassembly and checksum errors (TCP's are shared)."""
    s, s6 = snmp(tenant), snmp6(tenant)
    return {"Ip.InHdrErrors": s["Ip"]["InHdrErrors"], "Ip.ReasmFails": s["Ip"]["ReasmFails"],
            "Tcp.InErrs": s["Tcp"]["InErrs"], "Tcp.InCsumErrors": s["Tcp"]["InCsumErrors"],
            "Udp.InErrors": s["Udp"]["InErrors"], "Udp.InCsumErrors": s["Udp"]["InCsumErrors"],
            **{key: s6[key] for key in ("Ip6InHdrErrors", "Ip6ReasmFails", "Udp6InErrors",
                                         "Udp6InCsumErrors")}}


def destination(tenant, family):
    return tenant.ip if family == 4 else tenant.ip6


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_tcp_200_mb_routed_intact(routed, family):
    topo, a, b, side = routed
    sent, received, nbytes, _ = probes.tcp_transfer(a, b, destination(b, family), TCP_BYTES,
                                                    timeout=30)
    assert nbytes == TCP_BYTES and received == sent
    loop = topo.stats()["loop"]
    assert loop["write_errors"] == 0 and loop["tx_no_port"] == 0
    assert sum(v for k, v in loop.items() if k.startswith("vnet_")) == 0
    if a.kind == "xdp":  # no super-frames at all: the sender's kernel cut them
        assert loop["read_bytes"] / loop["frames_in"] < 1600 and loop["sw_gso_frames"] == 0
    elif side == "on":   # super-frames crossed the switch whole: far more bytes than frames
        assert loop["read_bytes"] / loop["frames_in"] > 8000
        assert loop["sw_gso_frames"] == 0
    else:                # ... or were cut here for the port without the header
        assert loop["sw_gso_frames"] > 0 and loop["sw_gso_refused"] == 0
    for tenant in (a, b):
        assert set(receive_errors(tenant).values()) == {0}, tenant.name


def recv_with_ttl(sock):
    """A datagram and the TTL (IPv4) or hop limit (IPv6) it arrived with."""
    data, ancillary, _, _ = sock.recvmsg(70000, socket.CMSG_SPACE(4))
    ttls = [struct.unpack("i", d[:4])[0] for level, kind, d in ancillary
            if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TTL),
                                 (socket.IPPROTO_IPV6, IPV6_HOPLIMIT))]
    return data, ttls[0] if ttls else None


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("segment", [0, 1200], ids=["plain", "udp_segment"])
def test_udp_1_to_65000_bytes_routed_intact_ttl_decremented(routed, segment, family):
    topo, a, b, _ = routed
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    dst = destination(b, family)
    rx = b.socket(af, socket.SOCK_DGRAM)
    tx = a.socket(af, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        if family == 4:
            rx.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, SENDER_TTL)
        else:
            rx.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, SENDER_TTL)
        rx.settimeout(5)
        rx.bind((dst, 6000))
        # Resolve b first (the switch's ARP or ND for it): how frames that wait for a
        # neighbour keep their order is tests/daemon's matter (test_neighbour_table).
        tx.sendto(b"warm", (dst, 6000))
        assert rx.recv(16) == b"warm"
        if segment:
            tx.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, segment)
        want = []
        for n in SIZES[family]:
            data = pattern(n, str(n).encode())
            tx.sendto(data, (dst, 6000))
            if segment and n > segment:
                want += [data[k:k + segment] for k in range(0, n, segment)]
            else:
                want.append(data)
        got = [recv_with_ttl(rx) for _ in want]
    finally:
        tx.close()
        rx.close()
    if [data for data, _ in got] != want:
        pytest.fail(mismatch([data for data, _ in got], want), pytrace=False)
    assert {ttl for _, ttl in got} == {SENDER_TTL - 1}
    assert set(receive_errors(b).values()) == {0}
    assert topo.stats()["loop"]["write_errors"] == 0


def test_a_small_mss_tcp_stream_crosses_without_a_refused_super_frame(tapswitch_factory,
                                                                      tapswitch_port_kind):
    """A tenant's TCP to a peer with a small MSS (88, the least Linux takes) would build
    super-frames of up to 745 segments (64 KB / 88), which the switch refuses
    (``vnet_too_many_segments``, issue 14 item 11): its link (a vnet TAP, a veth port's
    end) says it takes at most VNET_MAX_SEGMENTS (gso_max_segs), so the tenant's kernel
    builds none larger (an xdp port's end sends no super-frame at all)."""
    topo = tapswitch_factory(vnet_hdr=True)
    topo.address_add("init", "10.0.0.1/24")
    a, b = topo.tenant("a", "10.0.0.2/24"), topo.tenant("b", "10.0.0.3/24")
    topo.start()
    if tapswitch_port_kind != "xdp":
        link = a.run(["ip", "-d", "link", "show", a.port]).stdout
        assert f"gso_max_segs {fastpath.reasons.VNET_MAX_SEGMENTS} " in link
    listener = b.socket(socket.AF_INET, socket.SOCK_STREAM)
    client = a.socket(socket.AF_INET, socket.SOCK_STREAM)
    data = pattern(4 << 20, b"small mss")
    got = bytearray()
    with listener, client:
        listener.bind((b.ip, 0))
        listener.listen(1)
        listener.settimeout(30)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
        client.settimeout(30)
        client.connect((b.ip, listener.getsockname()[1]))
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(30)
            sender = threading.Thread(target=lambda: (client.sendall(data),
                                                      client.shutdown(socket.SHUT_WR)))
            sender.start()
            while chunk := conn.recv(1 << 16):
                got += chunk
            sender.join(30)
    assert bytes(got) == data
    assert topo.stats()["loop"]["vnet_too_many_segments"] == 0
