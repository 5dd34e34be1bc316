"""Smoke test of the end-to-end bench: ``python -m bench --quick`` for the
veth pair and one TAP-based peer writes a complete results file and leaves
no namespace, TAP or process behind. It checks the suite works, never how
fast anything is."""

import json
import os
import subprocess
import sys

from pyctl import kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_bench_runs_end_to_end_and_cleans_up(tmp_path):
    netns_before = set(kernel.list_netns())
    links_before = set(kernel.host.links())
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--peers", "veth,minimal-forwarder",
         "--tests", "tcp1,tcp4,udp64,rtt", "--tcp-tool", "python", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())

    assert set(doc["machine"]) >= {"cpu_model", "cores", "kernel"}
    assert doc["plan"]["reps"] == 1 and doc["plan"]["seconds"] == 1.0
    assert {p: i["status"] for p, i in doc["peers"].items()} == {"veth": "ok", "minimal-forwarder": "ok"}
    errors = [s for s in doc["samples"] if "error" in s]
    assert not errors, errors
    got = {(s["peer"], s["test"]) for s in doc["samples"]}
    assert got == {(p, t) for p in ("veth", "minimal-forwarder") for t in ("tcp1", "tcp4", "udp64", "rtt")}
    for s in doc["samples"]:
        m = s["metrics"]
        if s["test"].startswith("tcp"):
            assert m["gbps"] > 0 and m["bytes"] > 0 and m["tool"] == "python"
        elif s["test"] == "udp64":
            assert m["sent"] > 0 and 0 < m["delivered"] and 0 < m["received"] <= m["sent"]
            assert m["counters"]["b"]["rx_packets"] == m["delivered"]
        else:
            assert m["count"] + m["lost"] == 200 and m["median_us"] <= m["p99_us"]
    forwarder_udp = next(s["metrics"] for s in doc["samples"]
                         if s["peer"] == "minimal-forwarder" and s["test"] == "udp64")
    assert forwarder_udp["cpu_s"] > 0 and forwarder_udp["cpu_ns_per_frame"] > 0
    assert "veth" in doc["summary"] and "udp64" in doc["summary"]["minimal-forwarder"]
    assert "tcp1/veth" in proc.stdout                       # the table, with ratios
    assert (tmp_path / "quick-throughput.png").stat().st_size > 0

    assert set(kernel.list_netns()) == netns_before
    assert set(kernel.host.links()) == links_before
