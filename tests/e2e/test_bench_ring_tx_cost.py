"""Smoke test of ``python -m bench.ring_tx_cost``: both ways of sending run, every frame
reaches the veth's other end (the bench raises otherwise), the table has a row per burst
and its reference cell is 1.00, and the namespace is gone after.  Never how fast."""
import json
import os
import subprocess
import sys

from pyctl import kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "bench.ring_tx_cost", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_both_ways_run_and_every_frame_arrives(tmp_path):
    out = tmp_path / "ringtx.json"
    before = set(kernel.list_netns())
    proc = bench("--bursts", "1,8", "--frames", "2000", "--reps", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = proc.stdout.splitlines()
    assert rows[0].split()[:2] == ["burst", "ring"] and "mmsg" in rows[0]
    assert [r.split()[0] for r in rows[1:3]] == ["1", "8"]
    assert rows[2].split()[2] == "1.00"                    # ring at the largest burst
    samples = json.loads(out.read_text())["samples"]
    assert {(s["mode"], s["burst"]) for s in samples} == {
        ("ring", 1), ("ring", 8), ("mmsg", 1), ("mmsg", 8)}
    assert all(s["delivered"] >= s["frames"] == 2000 and s["cpu_s"] > 0 for s in samples)
    assert set(kernel.list_netns()) - before == set()


def test_bad_arguments_are_refused():
    for args in (["--bursts", "0"], ["--bursts", "x"], ["--modes", "xdp"],
                 ["--bursts", "64", "--frames", "10"], ["--cpu", "4096"]):
        proc = bench(*args, timeout=60)
        assert proc.returncode == 2 and "error:" in proc.stderr, (args, proc.stderr)
