"""Unit tests of the bench's reporting (no root): summaries, the table with
ratios, the comparison of two runs, plots, and argument checking."""

import json

import pytest

from bench import report
from bench.__main__ import main
from bench.runner import Plan, Run


def _doc(scale=1.0, peers=("veth", "minimal-forwarder")):
    run = Run(Plan(peers=list(peers), tests=["tcp1", "udp64"], reps=3, seconds=5.0))
    for i, peer in enumerate(peers):
        run.peers[peer] = {"status": "ok", "description": peer}
        for rep, jitter in enumerate((0.9, 1.0, 1.2), start=1):
            run.samples.append({"peer": peer, "test": "tcp1", "rep": rep,
                                "metrics": {"gbps": scale * (10 - 5 * i) * jitter, "tool": "python"}})
            run.samples.append({"peer": peer, "test": "udp64", "rep": rep,
                                "metrics": {"delivered_kpps": scale * 200 * jitter, "received_kpps": 190,
                                            "sent_kpps": 300, "loss_pct": 10.0}})
    run.peers["ovs-netdev"] = {"status": "skipped", "reason": "Open vSwitch is not installed"}
    run.samples.append({"peer": "veth", "test": "udp64", "rep": 4, "error": "RuntimeError: boom"})
    return report.results_document(run, {"cpu_model": "test", "cores": 2, "kernel": "6.x", "date": "d"}, [])


def test_summary_takes_median_min_max_of_numeric_metrics_only():
    s = report.summarize(_doc()["samples"])
    assert s["veth"]["tcp1"]["gbps"] == {"median": 10.0, "min": 9.0, "max": 12.0, "n": 3}
    assert "tool" not in s["veth"]["tcp1"]


def test_table_has_medians_ratios_to_veth_spread_skips_and_errors():
    text = report.table(_doc())
    assert "tcp1/veth" in text and "udp64/veth" in text
    row = next(line for line in text.splitlines() if line.startswith("minimal-forwarder"))
    assert "5.00" in row and "0.50" in row          # median 5 Gbit/s, half of veth
    assert "9.00..12.0" in text
    assert "ovs-netdev: skipped: Open vSwitch is not installed" in text
    assert "veth udp64 rep 4: RuntimeError: boom" in text


def test_ratio_baseline_is_tapswitch_when_measured():
    assert report.baseline_peer(_doc(peers=("veth", "tapswitch"))) == "tapswitch"
    assert report.baseline_peer(_doc()) == "veth"


def test_compare_flags_changes_of_ten_percent(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    report.save(_doc(), str(a))
    report.save(_doc(scale=0.5), str(b))
    text = report.compare(report.load(str(a)), report.load(str(b)))
    line = next(l for l in text.splitlines() if l.startswith("veth") and "TCP x1" in l)
    assert "0.50" in line and "WORSE" in line
    assert main(["compare", str(a), str(b)]) == 0


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(ValueError, match="not a bench results file"):
        report.load(str(path))


def test_plots_are_written(tmp_path):
    from bench import plots
    written = plots.plot_run(_doc(), str(tmp_path), "run")
    assert [p.rsplit("-", 1)[1] for p in written] == ["throughput.png", "udp64.png"]
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"benchmarks": [
        {"name": f"test_lookup[{n}-{b}]", "group": "lookup", "params": {"addresses": n, "batch": b},
         "stats": {"median": b * 1e-7}} for n in (10, 1000) for b in (1, 64)]}))
    assert plots.plot_fastpath(str(fast), str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 0


@pytest.mark.parametrize("args", [["--peers", "nosuch"], ["--tests", "tcp9"], ["--reps", "0"]])
def test_bad_arguments_are_refused(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
