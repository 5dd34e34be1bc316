"""Capture files: what PcapngWriter writes reads back with scapy and with tcpdump -r."""
import io
import shutil
import subprocess

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgReader

from pyctl.ops.pcap import PcapngWriter


def frames():
    request = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(src="10.0.0.2", dst="10.0.0.3") / ICMP()
    reply = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.3", dst="10.0.0.2") / ICMP(type=0)
    return bytes(request), bytes(reply)


def capture(path):
    request, reply = frames()
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        w.write("tsw-web", request, 1_700_000_000_123_456_789, direction="in")
        w.write("tsw-db", reply, 1_700_000_000_223_456_789, direction="out", description="port of db")
        w.write("tsw-web", request, 1_700_000_000_323_456_789, direction="in",
                comment="drop: spoofed_source")
    return w


def test_frames_timestamps_and_comments_read_back(tmp_path):
    path = tmp_path / "c.pcapng"
    w = capture(path)
    assert w.interfaces == {"tsw-web": 0, "tsw-db": 1} and w.frames == 3
    packets = list(PcapNgReader(str(path)))
    request, reply = frames()
    assert [bytes(p) for p in packets] == [request, reply, request]
    assert packets[0].time == pytest.approx(1_700_000_000.123456789)
    assert packets[2].comment == b"drop: spoofed_source"


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (apt-get install tcpdump)")
def test_tcpdump_reads_the_capture(tmp_path):
    path = tmp_path / "c.pcapng"
    capture(path)
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    assert "10.0.0.2 > 10.0.0.3: ICMP echo request" in lines[0]
    assert "10.0.0.3 > 10.0.0.2: ICMP echo reply" in lines[1]


def test_a_bad_direction_is_refused():
    w = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError):
        w.write("p", b"\0" * 14, 0, direction="sideways")
