"""Smoke test of the hostile-tenant bench (``python -m bench.hostile``): every attack runs
against a child daemon, each row carries the no-attack and the under-attack figures of
the victims (RTT and throughput) and the attack's notes, the floods were refused or
bounded where the switch says so, and nothing is left behind.  It checks that the
harness works and that the attacks happen, never how fast anything is."""
import json
import os
import subprocess
import sys

from bench.attacks import ATTACKS
from pyctl import kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_attack_runs_and_is_reported(tmp_path):
    out = tmp_path / "hostile.json"
    proc = subprocess.run([sys.executable, "-m", "bench.hostile", "--count", "300",
                           "--seconds", "0.3", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["attack"] for r in rows] == list(ATTACKS)
    for row in rows:
        for run in (row["base"], row["attack_run"]):
            assert run["count"] + run["lost"] == 300 and run["median_us"] <= run["p99_us"]
            assert run["daemon_cpu_ms"] >= 0
            assert run["throughput"]["sent_pps"] >= run["throughput"]["received_pps"] > 0
        assert row["attack"] in proc.stdout
    flood = next(r["notes"] for r in rows if r["attack"] == "control-socket")
    assert flood["idle_open"] > 0 and flood["idle_open"] + flood["refused"] >= 5000
    assert isinstance(flood["admin_ping_ms"], float), flood["admin_ping_ms"]    # it answered
    notes = {r["attack"]: r["notes"] for r in rows}
    slow = notes["slow-path-flood"]            # the attacker's frames over its share: refused
    assert slow["sent"] > 0 and sum(slow["switch"]["ns_slow_refused"].values()) > 0
    assert slow["victim_gateway_pings_lost"] == 0     # a victim's own share still answered
    igmp = notes["igmp-flood"]                 # no more groups than the namespace's limit
    assert igmp["sent"] > 0 and 0 < igmp["attacker_groups"] <= 256
    supers = notes["super-frames"]             # refused as they were read
    assert 0 < supers["switch"]["vnet_too_many_segments"] <= supers["sent"]
    slow_stack = notes["slow-stack"]          # its port held, what was over its share dropped
    assert slow_stack["sent"] > 0 and slow_stack["switch"]["tx_cost_held"] > 0
    assert slow_stack["attacker_port"]["tx_cost_held"]
    sparse = notes["sparse-stack"]            # one expensive frame in five: reported
    assert sparse["sent"] > 0 and sparse["expensive_every"] == 5
    assert sparse["attacker_port"]["tx_cost_excess_us"] >= 0
    churn = notes["control-ops"]
    assert churn["push_pull_cycles"] > 0 and churn["counters_reads"] > 0
    assert [n for n in kernel.list_netns() if result["tag"] in n] == []     # its own, by its tag


def test_the_tenants_port_kind_is_chosen_and_recorded(tmp_path):
    out = tmp_path / "hostile.json"
    proc = subprocess.run([sys.executable, "-m", "bench.hostile", "--kind", "veth", "--attacks",
                           "slow-path-flood,super-frames", "--count", "200", "--seconds", "0",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tenants' port kind: veth" in proc.stdout
    result = json.loads(out.read_text())
    assert result["kind"] == "veth"
    notes = {r["attack"]: r["notes"] for r in result["rows"]}
    assert sum(notes["slow-path-flood"]["switch"]["ns_slow_refused"].values()) > 0
    supers = notes["super-frames"]             # a veth port carries the header: refused too
    assert 0 < supers["switch"]["vnet_too_many_segments"] <= supers["sent"]
    assert [n for n in kernel.list_netns() if result["tag"] in n] == []
    bad = subprocess.run([sys.executable, "-m", "bench.hostile", "--kind", "vhost"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'vhost'" in bad.stderr
