"""The udp64raw load's generator and sink (bench/csrc/rawblast.c) on a veth pair between
two namespaces: the frames are valid UDP datagrams of FLOWS flows from a's address, and
the sink stops exactly the frames to its port that b's interface counted, lets others
through, and leaves nothing attached when it exits.  (bench/udp64raw.py through the
whole bench: tests/e2e/test_bench_quick.py.)"""

import json
import socket
import subprocess

import pytest

from bench import cbuild
from bench.peers import wait_ready
from bench.udp64raw import FLOWS
from pyctl import kernel

PORT = 47000
PAYLOAD = b"tapswitch-rawblast"


@pytest.fixture
def pair(make_netns, kernel_registry):
    """Namespaces a (10.88.0.1) and b (10.88.0.2) on a veth pair: (a, b, a's link, b's link)."""
    try:
        tool = cbuild.tool("rawblast")
    except cbuild.ToolUnavailable as exc:
        pytest.skip(str(exc))
    a, b = make_netns(prefix="tsrawa"), make_netns(prefix="tsrawb")
    for ns in (a, b):               # no IPv6 chatter in b's counter
        ns.set_sysctl("net.ipv6.conf.all.disable_ipv6", 1)
        ns.set_sysctl("net.ipv6.conf.default.disable_ipv6", 1)
    va, vb = kernel.create_veth(kernel.unique_name("rwa"), kernel.unique_name("rwb"),
                                netns_a=a, netns_b=b, registry=kernel_registry)
    a.configure(va, address="10.88.0.1/24")
    b.configure(vb, address="10.88.0.2/24")
    return tool, a, b, va, vb


def _send(tool, a, b, va, vb, port, seconds=0.2) -> dict:
    mac_a, mac_b = a.link_info(va)["address"], b.link_info(vb)["address"]
    out = a.run([tool, "send", va, mac_a, mac_b, "10.88.0.1", "10.88.0.2", str(port), str(FLOWS),
                 str(seconds)], timeout=30).stdout
    return json.loads(out)


def _drain(sock) -> list:
    got = []
    while True:
        try:
            got.append(sock.recvfrom(2048))
        except BlockingIOError:
            return got


def _udp_socket(ns, port):
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("10.88.0.2", port))
    sock.setblocking(False)
    return sock


def test_generator_frames_are_valid_datagrams_of_every_flow(pair):
    tool, a, b, va, vb = pair
    with _udp_socket(b, PORT) as sock:
        sent = _send(tool, a, b, va, vb, PORT, seconds=0.05)
        got = _drain(sock)
    assert sent["sent"] > 0 and sent["frame_len"] == 60 and sent["flows"] == FLOWS
    assert 0 < sent["cpu_s"] <= sent["elapsed"] * 1.5
    assert got, "no datagram passed b's IP and UDP checks"
    assert {data for data, _ in got} == {PAYLOAD}
    assert {src for (_, (src, _)) in got} == {"10.88.0.1"}
    assert {sport for (_, (_, sport)) in got} == set(range(40000, 40000 + FLOWS))


def test_sink_stops_what_b_counted_passes_the_rest_and_detaches(pair):
    tool, a, b, va, vb = pair
    sink = b.popen([tool, "drop", vb, str(PORT), "30"], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)
    with _udp_socket(b, PORT) as mine, _udp_socket(b, PORT + 1) as other:
        try:
            wait_ready(sink, "rawblast drop")
            before = b.link_stats(vb)
            sent = _send(tool, a, b, va, vb, PORT)
            counted = (b.link_stats(vb) - before).rx_packets
            _send(tool, a, b, va, vb, PORT + 1, seconds=0.02)
            sink.terminate()
            out, err = sink.communicate(timeout=10)
        finally:
            kernel.stop_process(sink)
        assert sink.returncode == 0, err
        assert json.loads(out)["dropped"] == counted == sent["sent"] > 0
        assert _drain(mine) == []               # stopped before b's IP stack
        assert _drain(other)                    # frames to another port went on
        _send(tool, a, b, va, vb, PORT, seconds=0.02)
        assert _drain(mine)                     # the sink's exit detached its program


def test_bad_arguments_are_refused(pair):
    tool, a, _, va, _ = pair
    for argv in (["send", va, "zz:00:00:00:00:01", "02:00:00:00:00:02", "10.88.0.1", "10.88.0.2",
                  "9", "16", "1"],
                 ["send", va, "02:00:00:00:00:01", "02:00:00:00:00:02", "10.88.0.1", "10.88.0.2",
                  "9", "7", "1"],                        # 7 flows do not divide a burst
                 ["send", "nosuchlink0", "02:00:00:00:00:01", "02:00:00:00:00:02", "10.88.0.1",
                  "10.88.0.2", "9", "16", "1"],
                 ["drop", va, "0", "1"]):
        proc = a.run([tool, *argv], check=False, timeout=10)
        assert proc.returncode == 2 and proc.stderr.startswith("rawblast: "), argv
