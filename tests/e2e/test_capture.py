"""Switch-side capture with real traffic: `tapswitch ctl capture` of a ping between two
tenants, read back by `tcpdump -r`, shows the echo request and reply; `--drops` shows a
spoofed frame with its reason, and a frame whose write failed with the write's; an L3's socket cannot capture another namespace; a capture
is bounded and ends with its client."""
import base64
import contextlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
from scapy.utils import PcapNgReader

from pyctl import errors
from pyctl.control.client import ControlClient
from pyctl.rig import probes

pytestmark = pytest.mark.skipif(shutil.which("tcpdump") is None,
                                reason="tcpdump is not installed (apt-get install tcpdump)")


@contextlib.contextmanager
def _capture(topo, *args):
    """`tapswitch ctl capture ARGS` in a child, once the daemon runs its capture; killed
    at the end of the block if it is still running."""
    client = subprocess.Popen([sys.executable, "-m", "pyctl", "ctl", "-s", topo.socket_path,
                               "capture", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        _started(topo)
        yield client
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()


def _is_icmp(frame):
    data = base64.b64decode(frame["data"])
    return data[12:14] == b"\x08\x00" and data[23] == 1


def _started(topo, count=1):
    """Until the daemon runs ``count`` captures (the client has asked)."""
    deadline = time.monotonic() + 20
    while len(topo.daemon.captures._captures) < count:
        assert time.monotonic() < deadline, "the capture never started"
        time.sleep(0.05)


@pytest.mark.port_kinds         # a ring port's frames are captured as a TAP's
def test_a_ping_captured_on_a_namespace_reads_back_with_tcpdump(two_tenants, tmp_path):
    topo, a, b = two_tenants
    out = tmp_path / "ping.pcapng"
    with _capture(topo, "b", "-w", str(out)) as client:
        assert len(probes.ping(a, b.ip, count=2)) == 2
        client.send_signal(signal.SIGTERM)                   # stops it: what was copied is written
        _, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    read = subprocess.run(["tcpdump", "-nn", "-r", str(out)], capture_output=True, text=True,
                          timeout=30)
    assert read.returncode == 0, read.stderr
    lines = read.stdout.splitlines()
    lines = [line for line in lines if "ICMP echo" in line]   # (the kernel's ARP, MLD too)
    assert len(lines) == 4, read.stdout
    assert sum(f"{a.ip} > {b.ip}: ICMP echo request" in line for line in lines) == 2, read.stdout
    assert sum(f"{b.ip} > {a.ip}: ICMP echo reply" in line for line in lines) == 2
    port_b = topo.switch.ports("b")[0].name
    packets = list(PcapNgReader(str(out)))
    assert {p.sniffed_on for p in packets} <= {port_b, None}
    assert not topo.daemon.captures.active                    # stopped with its client


def test_drops_come_with_their_reason(two_tenants, tapswitch_subnet, tmp_path):
    topo, a, b = two_tenants
    out = tmp_path / "drops.pcapng"
    with _capture(topo, "a", "--drops", "-w", str(out)) as client:
        assert len(probes.ping(a, b.ip, count=2)) == 2           # forwarded: not a drop
        forged = str(tapswitch_subnet.network_address + 77)
        probes.send_spoofed_udp(a, forged, b.ip, 7000, b"forged", count=3)
        time.sleep(0.3)
        client.send_signal(signal.SIGTERM)
        _, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    packets = list(PcapNgReader(str(out)))
    # (the kernel's own IPv6 frames are dropped too: unsupported_ethertype)
    assert all(p.comment.startswith(b"drop: ") for p in packets)
    assert sum(p.comment == b"drop: spoofed_source" for p in packets) == 3
    read = subprocess.run(["tcpdump", "-nn", "-r", str(out)], capture_output=True, text=True,
                          timeout=30)
    assert read.stdout.count(f"{forged}.40000 > {b.ip}.7000: ") == 3, read.stdout


def test_frames_whose_write_failed_come_with_their_reason(two_tenants, tmp_path):
    """A tenant's TAP down: every frame to it is a failed write (the packet loop's drop,
    not the fast path's decision), in a capture of its drops with the write's reason."""
    topo, a, b = two_tenants
    out = tmp_path / "writes.pcapng"
    before = topo.stats()["loop"]
    with _capture(topo, "b", "--drops", "-w", str(out)) as client:
        b.netns.link_down(b.port)
        try:
            assert probes.ping(a, b.ip, count=3, timeout=0.3) == []
            time.sleep(0.3)
        finally:
            b.netns.link_up(b.port)
        client.send_signal(signal.SIGTERM)
        _, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    after = topo.stats()["loop"]
    failed = sum(after[k] - before[k] for k in ("write_errors", "write_eagain"))
    packets = list(PcapNgReader(str(out)))
    echo = [p for p in packets if p.comment in (b"drop: write_errors", b"drop: write_eagain")
            and bytes(p)[12:14] == b"\x08\x00" and bytes(p)[23] == 1]
    assert len(echo) == 3 and failed >= 3, (packets, failed)
    read = subprocess.run(["tcpdump", "-nn", "-r", str(out)], capture_output=True, text=True,
                          timeout=30)
    assert read.stdout.count(f"{a.ip} > {b.ip}: ICMP echo request") == 3, read.stdout


def test_count_stops_the_capture(two_tenants, tmp_path):
    topo, a, b = two_tenants
    out = tmp_path / "two.pcapng"
    with _capture(topo, "b", "-c", "2", "-w", str(out)) as client:
        assert len(probes.ping(a, b.ip, count=3)) == 3
        _, err = client.communicate(timeout=30)
    assert client.returncode == 0 and "2 frames written" in err, err
    assert len(list(PcapNgReader(str(out)))) == 2


def test_an_l3_socket_captures_only_its_own_traffic(two_tenants):
    topo, a, b = two_tenants
    path = topo.daemon.call(lambda: topo.daemon.control.bind_namespace("a"))
    port_a, port_b = topo.switch.ports("a")[0].name, topo.switch.ports("b")[0].name
    with ControlClient(path) as client:
        for other in ("b", port_b, "init"):
            with pytest.raises(errors.NotFound):
                client.call("capture-start", target=other)
        started = client.call("capture-start", target="a")
        assert started["ports"] == [port_a]
        assert len(probes.ping(b, a.ip, count=1)) == 1
        assert len(probes.ping(a, b.ip, count=1)) == 1
        seen, pings = [], []
        deadline = time.monotonic() + 10
        while len(pings) < 4 and time.monotonic() < deadline:
            seen += client.call("capture-read", id=started["id"])["frames"]
            pings = [f for f in seen if _is_icmp(f)]       # (the kernel's ARP, MLD too)
        assert {f["port"] for f in seen} == {port_a} and len(pings) == 4
        assert sorted(f["direction"] for f in pings) == ["in", "in", "out", "out"]
        client.call("capture-stop", id=started["id"])
    # another socket cannot read or stop a capture that is not its own
    with ControlClient(topo.socket_path) as admin, ControlClient(path) as client:
        mine = client.call("capture-start", target="a")
        with pytest.raises(errors.NotFound):
            admin.call("capture-read", id=mine["id"])
        client.call("capture-start", target="a")
        with pytest.raises(errors.Busy):                          # two per socket
            client.call("capture-start", target="a")


def test_a_capture_nobody_reads_stops(two_tenants, monkeypatch):
    from pyctl.daemon import capture
    monkeypatch.setattr(capture, "IDLE_S", 0.3)             # read when the daemon checks
    topo, a, b = two_tenants
    with ControlClient(topo.socket_path) as admin:
        admin.call("capture-start", target="a")
        deadline = time.monotonic() + 10
        while topo.daemon.captures.active and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not topo.daemon.captures.active
        assert not topo.daemon.datapath.capture_stats()["on"]     # the fast path's ring: freed
