"""Smoke test of the end-to-end bench: ``python -m bench --quick`` for the
veth pair, the minimal C forwarders (read() and write(); io_uring, where it runs) and
the tapswitch daemon writes a complete
results file (with the daemon's CPU time and I/O backend) and plots, and
leaves no namespace, TAP or process behind. It checks the suite works,
never how fast anything is."""

import itertools
import json
import os
import re
import subprocess
import sys

import fastpath
from bench.peers import LINK_PREFIXES, NETNS_PREFIXES
from pyctl import kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORWARDERS = ("minimal-forwarder",) + (
    ("minimal-forwarder-uring",) if "io_uring" in fastpath.io_backends() else ())
PEERS = ("veth", *FORWARDERS, "tapswitch")
TESTS = ("tcp1", "tcp4", "udp64", "udp64raw", "rtt")


def test_quick_bench_runs_end_to_end_and_cleans_up(tmp_path):
    netns_before = set(kernel.list_netns())
    links_before = set(kernel.host.links())
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--peers", ",".join(PEERS),
         "--tests", ",".join(TESTS), "--tcp-tool", "python", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())

    assert set(doc["machine"]) >= {"cpu_model", "cores", "kernel"}
    assert doc["plan"]["reps"] == 1 and doc["plan"]["seconds"] == 1.0
    assert {p: i["status"] for p, i in doc["peers"].items()} == dict.fromkeys(PEERS, "ok")
    assert doc["peers"]["tapswitch"]["backend"]             # the daemon said which I/O backend runs
    errors = [s for s in doc["samples"] if "error" in s]
    assert not errors, errors
    got = {(s["peer"], s["test"]) for s in doc["samples"]}
    assert got == {(p, t) for p in PEERS for t in TESTS}
    for s in doc["samples"]:
        m = s["metrics"]
        if s["test"].startswith("tcp"):
            assert m["gbps"] > 0 and m["bytes"] > 0 and m["tool"] == "python"
        elif s["test"] == "udp64":
            assert m["sent"] > 0 and 0 < m["delivered"] and 0 < m["received"] <= m["sent"]
            assert m["counters"]["b"]["rx_packets"] == m["delivered"]
        elif s["test"] == "udp64raw":
            assert m["sent"] > 0 and 0 < m["delivered"] <= m["sent"] and m["flows"] == 16
            # b's tc ingress stopped what b's interface counted, bar a few frames of the
            # switch's own (an ARP request) that b counted too
            assert m["stopped"] >= m["delivered"] - 5
            assert m["generator_cpu_ns_per_frame"] > 0
        else:
            assert m["count"] + m["lost"] == 200 and m["median_us"] <= m["p99_us"]
    for peer, test in itertools.product((*FORWARDERS, "tapswitch"), ("udp64", "udp64raw")):
        udp = next(s["metrics"] for s in doc["samples"] if s["peer"] == peer and s["test"] == test)
        assert udp["cpu_s"] > 0 and udp["cpu_ns_per_frame"] > 0 and udp["cpu_cores"] > 0
    veth_udp = next(s["metrics"] for s in doc["samples"] if s["peer"] == "veth" and s["test"] == "udp64")
    assert "cpu_s" not in veth_udp                          # a kernel peer has no process
    assert set(doc["summary"]) == set(PEERS)
    assert "tcp1/tapswitch" in proc.stdout                  # the table, with ratios to tapswitch
    assert (tmp_path / "quick-throughput.png").stat().st_size > 0

    # other tests and benches may run at the same time: only this bench's names count
    # (every name it makes carries its process tag, read from its "ready" lines)
    tags = _tags(proc.stdout)
    assert tags
    made = lambda names, prefixes: [n for n in names if any(
        n.startswith(p) and n[len(p):len(p) + TAG_LEN] in tags for p in prefixes)]
    assert made(set(kernel.list_netns()) - netns_before, NETNS_PREFIXES) == []
    assert made(set(kernel.host.links()) - links_before, LINK_PREFIXES) == []


TAG_LEN = len(kernel.process_tag())


def _tags(stdout: str) -> set[str]:
    """The process tags in the namespace names of the bench's "NAME: ready (NS/IF <->
    NS/IF)" lines."""
    tags = set()
    for ns in re.findall(r"ready \((\S+)/\S+ <-> (\S+)/", stdout):
        for name in ns:
            prefix = next((p for p in NETNS_PREFIXES if name.startswith(p)), None)
            if prefix:
                tags.add(name[len(prefix):len(prefix) + TAG_LEN])
    return tags


def test_quick_bench_applies_each_placement_to_every_peer(tmp_path):
    """Two placements in one run: every sample names its placement, the forwarder's
    process was pinned before each measurement, and the sender's scheduler shares
    were read."""
    out = tmp_path / "placed.json"
    peers = ("veth", "minimal-forwarder")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--peers", ",".join(peers), "--tests", "tcp1",
         "--tcp-tool", "python", "--placement", "unpinned,pinned", "-o", str(out), "--no-plots"],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [p["name"] for p in doc["placements"]] == ["unpinned", "pinned"]
    got = {(s["peer"], s["placement"]) for s in doc["samples"] if "metrics" in s}
    assert got == {(p, w) for p in peers for w in ("unpinned", "pinned")}
    for s in doc["samples"]:
        assert s["switch_threads_pinned"] == (0 if s["peer"] == "veth" else 1)   # minifwd: 1 thread
        assert 0 < s["metrics"]["sender_on_cpu"] <= 1.05
    assert set(doc["summary"]) == {f"{p}@{w}" for p in peers for w in ("unpinned", "pinned")}
    assert "pinned: sender cpu" in proc.stdout
