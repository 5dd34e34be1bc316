"""PacketLoop end to end (root): two TAPs in their own kernel namespaces, a Datapath set
up by hand, TCP and UDP between the namespaces through the loop, with the virtio-net
header and offloads on both sides, on one side only, and on neither.  The receiving
kernels count no checksum or header errors."""
import hashlib
import socket
import threading

import pytest

from tests.e2e.loop_rig import LoopRig
from tests.support.datagrams import mismatch, pattern
from tests.support.io import BACKENDS

UDP_SEGMENT = 103          # <linux/udp.h>; not in Python's socket module
SIDES = [("vnet", "vnet"), ("vnet", "plain"), ("plain", "vnet"), ("plain", "plain"),
         ("vnet", "vnet-off")]


@pytest.fixture(params=[(b, s) for b in BACKENDS for s in SIDES],
                ids=[f"{b}-{'-'.join(s)}" for b in BACKENDS for s in SIDES])
def rig(request, make_netns):
    backend, sides = request.param
    r = LoopRig(make_netns, sides, backend=backend).start()
    assert r.loop.backend == backend
    try:
        yield r
    finally:
        r.close()


def _errors(snmp):
    return (snmp["Ip"]["InHdrErrors"], snmp["Tcp"]["InCsumErrors"], snmp["Udp"]["InCsumErrors"],
            snmp["Udp"]["InErrors"])


def _digest_of(sock, size):
    """The SHA-256 of the next ``size`` bytes read from ``sock`` (fewer if it closes)."""
    h, n = hashlib.sha256(), 0
    while n < size:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest()


def test_tcp_both_ways_arrives_intact(rig):
    up, down = pattern(6 << 20, b"up"), pattern(3 << 20, b"down")
    srv = rig.ns[2].socket()
    srv.settimeout(20)
    srv.bind((rig.addrs[2], 5001))
    srv.listen(1)
    result = {}

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(20)
            result["up"] = _digest_of(conn, len(up))
            conn.sendall(down)

    t = threading.Thread(target=serve)
    t.start()
    cli = rig.ns[1].socket()
    cli.settimeout(20)
    try:
        cli.connect((rig.addrs[2], 5001))
        cli.sendall(up)
        got_down = _digest_of(cli, len(down))
    finally:
        cli.close()
        t.join(30)
        srv.close()
    assert result.get("up") == hashlib.sha256(up).hexdigest()
    assert got_down == hashlib.sha256(down).hexdigest()
    for t_ in (1, 2):
        assert _errors(rig.snmp(t_)) == (0, 0, 0, 0)
    st = rig.loop.stats()
    assert st["write_errors"] == 0 and st["tx_no_port"] == 0
    assert sum(v for k, v in st.items() if k.startswith("vnet_")) == 0
    sides = rig.taps[1].vnet_hdr, rig.taps[2].vnet_hdr
    if sides == (True, False):
        assert st["sw_gso_frames"] > 0                       # super-frames were cut here


SIZES = [1, 2, 100, 1472, 1473, 4000, 8972, 30000, 65000]


@pytest.mark.parametrize("segment", [0, 1200], ids=["plain", "udp_segment"])
def test_udp_datagrams_of_every_size_arrive_intact(rig, segment):
    rx = rig.ns[2].socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.settimeout(5)
    rx.bind((rig.addrs[2], 6000))
    tx = rig.ns[1].socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if segment:
            tx.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, segment)
        want = []
        for n in SIZES:
            data = pattern(n, str(n).encode())
            if segment and n > 65507 - 8:
                continue
            tx.sendto(data, (rig.addrs[2], 6000))
            if segment and n > segment:
                want += [data[k:k + segment] for k in range(0, n, segment)]
            else:
                want.append(data)
        got = [rx.recv(70000) for _ in want]
    finally:
        tx.close()
        rx.close()
    if got != want:
        pytest.fail(mismatch(got, want), pytrace=False)
    assert _errors(rig.snmp(2)) == (0, 0, 0, 0)
    assert rig.loop.stats()["write_errors"] == 0
