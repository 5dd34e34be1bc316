"""Unit tests of the bench's one placement rule (bench/placement.py), the scheduler
watch (bench/schedstat.py) and how the report shows several placements (no root:
a process may set its own children's affinity)."""

import os
import subprocess
import sys
import time

import pytest

from bench import placement, report, schedstat
from bench.runner import Plan, Run

TWO = (0, 1)


def test_named_placements():
    assert not placement.parse("unpinned", TWO).pinned
    p = placement.parse("pinned", TWO)
    assert (p.sender, p.switch, p.receiver) == ((0,), (1,), (1,))     # sender alone
    p = placement.parse("pinned", (0, 1, 2, 3))
    assert (p.sender, p.switch, p.receiver) == ((0,), (1,), (2,))     # each its own
    p = placement.parse("pinned", (4,))
    assert p.sender == p.switch == p.receiver == (4,)


def test_spec_placements_and_their_refusals():
    p = placement.parse("sender=0:switch=1:receiver=0+1", TWO)
    assert (p.sender, p.switch, p.receiver) == ((0,), (1,), (0, 1))
    assert placement.parse("switch=0-1", TWO).sender is None          # a role not named: unpinned
    for bad, why in (("sideways", "unknown placement"), ("cook=0", "unknown role"),
                     ("sender=0:sender=1", "given twice"), ("sender=x", "not a CPU list"),
                     ("sender=1-0", "not a CPU list"), ("sender=7", "CPU 7 is not one")):
        with pytest.raises(placement.PlacementError, match=why):
            placement.parse(bad, TWO)
    with pytest.raises(placement.PlacementError, match="given twice"):
        placement.parse_list("pinned,pinned", TWO)
    assert [p.name for p in placement.parse_list("unpinned, pinned", TWO)] == ["unpinned", "pinned"]


def test_cpu_list_text_and_description():
    assert placement.cpu_list_text((0, 1, 3, 5, 6, 7)) == "0-1,3,5-7"
    text = placement.parse("pinned", TWO).describe()
    assert text == "pinned: sender cpu 0, receiver cpu 1, switch cpu 1"
    assert placement.Placement(**placement.parse("pinned", TWO).as_dict()).describe() == text


def _one_cpu():
    return min(os.sched_getaffinity(0))


def test_a_wrapped_command_runs_on_its_roles_cpus():
    cpu = _one_cpu()
    p = placement.Placement("t", sender=(cpu,))
    argv = p.wrap("sender", [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"])
    assert argv[1:3] == ["-c", str(cpu)]
    assert subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip() == f"[{cpu}]"
    assert p.wrap("receiver", ["true"]) == ["true"]                   # unpinned: as it is


THREADS = """
import threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
print("ready", flush=True)
time.sleep(30)
"""


def test_pin_sets_every_thread_of_the_switch_and_unpinned_gives_them_back():
    proc = subprocess.Popen([sys.executable, "-c", THREADS], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        cpu = _one_cpu()
        got = placement.Placement("t", switch=(cpu,)).pin("switch", [proc.pid])
        assert len(got) == 4                                          # main + 3 threads
        for tid in got:
            assert os.sched_getaffinity(tid) == {cpu}                 # read back, thread by thread
        placement.Placement("unpinned").pin("switch", [proc.pid])
        for tid in got:
            assert os.sched_getaffinity(tid) == os.sched_getaffinity(0)
    finally:
        proc.kill()
        proc.wait()
    assert placement.Placement("t", switch=(_one_cpu(),)).pin("switch", [proc.pid]) == {}  # gone


def test_schedstat_shares_per_second_thread_by_thread():
    first = {"sender": {1: (1_000_000_000, 0, 10), 2: (5_000_000_000, 0, 99)},
             "switch": {7: (0, 0, 0)}}
    # thread 2 ended (its time is gone: left out, not subtracted); thread 3 is new
    last = {"sender": {1: (2_000_000_000, 1_000_000_000, 30), 3: (1_000_000_000, 0, 20)},
            "switch": {7: (1_000_000_000, 0, 4000)}}
    assert schedstat.shares(first, last, 4.0) == {
        "sender": {"on_cpu": 0.5, "runq": 0.25, "sleeps_per_s": 10.0},
        "switch": {"on_cpu": 0.25, "runq": 0.0, "sleeps_per_s": 1000.0}}
    me = schedstat.read([os.getpid()])[os.getpid()]
    assert me[0] > 0 and me[2] >= 0
    assert schedstat.read([2 ** 22 + 12345]) is None                   # no such process


def test_watch_sees_a_spinning_process_run():
    """The watch stops while the process still spins (one that ended before the last
    reading would leave nothing to compare it with on a loaded machine)."""
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 30\n"
                             "while time.time() < t: pass"])
    try:
        got = schedstat.Watch({"sender": [spin.pid], "nobody": []}, warmup=0.2, interval=0.05).start()
        time.sleep(1.5)
        shares = got.stop()
    finally:
        spin.kill()
        spin.wait()
    assert set(shares) == {"sender", "window_s"}
    assert shares["window_s"] > 0.5 and shares["sender"]["on_cpu"] > 0.05
    assert shares["sender"]["sleeps_per_s"] < 1000        # it spins: it hardly ever blocks


def _doc_two_placements():
    peers = ("veth", "minimal-forwarder-vnet", "ovs-netdev-tso", "tapswitch")
    run = Run(Plan(peers=list(peers), tests=["tcp1"], reps=1, seconds=5.0,
                   placements=["unpinned", "pinned"]),
              placements=[placement.parse(p, TWO).as_dict() for p in ("unpinned", "pinned")])
    rates = {"unpinned": (20.0, 14.0, 15.0, 16.0), "pinned": (20.0, 15.0, 14.0, 18.0)}
    for place, values in rates.items():
        for peer, gbps in zip(peers, values):
            run.peers[peer] = {"status": "ok", "description": peer}
            run.samples.append({"peer": peer, "test": "tcp1", "rep": 1, "placement": place,
                                "metrics": {"gbps": gbps, "sender_on_cpu": 0.8}})
    return report.results_document(run, {"cpu_model": "t", "cores": 2, "kernel": "k", "date": "d"}, [])


def test_report_rows_are_per_peer_and_placement_with_ratios_within_a_placement():
    doc = _doc_two_placements()
    assert set(doc["summary"]) == {f"{p}@{w}" for p in doc["peers"] for w in ("unpinned", "pinned")}
    text = report.table(doc)
    row = next(line for line in text.splitlines() if line.startswith("veth@pinned"))
    assert row.split()[-1] == "1.11"                                  # 20 / tapswitch's 18, pinned
    assert "pinned: sender cpu 0, receiver cpu 1, switch cpu 1" in text
    assert "unpinned: tapswitch/veth 0.80, tapswitch/best TAP peer (ovs-netdev-tso) 1.07" in text
    assert "pinned: tapswitch/veth 0.90, tapswitch/best TAP peer (minimal-forwarder-vnet) 1.20" in text
    assert "TCP x1 sender on-CPU" in text


def test_targets_pair_the_rates_of_each_rep():
    """The ratio of medians hides how the pairs of one rep compare: each rep's
    tapswitch over the peer measured right before or after it, with how many reach the goal."""
    peers = ("veth", "minimal-forwarder-vnet", "tapswitch")
    run = Run(Plan(peers=list(peers), tests=["tcp1"], reps=3, seconds=5.0, placements=["pinned"]),
              placements=[placement.parse("pinned", TWO).as_dict()])
    rates = {"veth": (20.0, 10.0, 18.0), "minimal-forwarder-vnet": (15.0, 16.0, 14.0),
             "tapswitch": (17.0, 17.0, 16.0)}
    for peer, values in rates.items():
        run.peers[peer] = {"status": "ok", "description": peer}
        for rep, gbps in enumerate(values, start=1):
            run.samples.append({"peer": peer, "test": "tcp1", "rep": rep, "placement": "pinned",
                                "metrics": {"gbps": gbps}})
    run.samples.append({"peer": "tapswitch", "test": "tcp1", "rep": 4, "placement": "pinned",
                        "error": "RuntimeError: a rep that failed pairs with nothing"})
    doc = report.results_document(run, {"cpu_model": "t", "cores": 2, "kernel": "k", "date": "d"}, [])
    lines = report.targets(doc)
    assert lines[1] == "  pinned: tapswitch/veth 0.94, tapswitch/best TAP peer (minimal-forwarder-vnet) 1.13"
    assert lines[2] == ("    per rep (each pair run back to back): /veth 0.85..1.70 (>= 0.85 in 3 of 3), "
                        "/minimal-forwarder-vnet 1.06..1.14 (>= 1.1 in 2 of 3)")


def test_one_placement_keeps_plain_peer_rows():
    samples = [{"peer": "veth", "test": "tcp1", "rep": 1, "placement": "pinned",
                "metrics": {"gbps": 1.0}}]
    assert list(report.summarize(samples)) == ["veth"]


def test_copy_cost_sizes_and_table():
    from bench import copy_cost
    assert copy_cost.size("256K") == 262144 and copy_cost.size("4m") == 4 << 20
    assert copy_cost.size("65536") == 65536
    with pytest.raises(Exception, match="not a size"):
        copy_cost.size("lots")
    results = {(262144, False): [18.0, 20.0, 19.0], (262144, True): [21.0],
               (4 << 20, False): [38.0], (4 << 20, True): [40.0]}
    rows = copy_cost.table(results, [262144, 4 << 20]).splitlines()
    assert rows[1].split() == ["256KB", "19.0", "1.00", "21.0", "1.11"]
    assert rows[2].split() == ["4096KB", "38.0", "2.00", "40.0", "2.11"]


def test_copycost_runs_and_reports_per_kb():
    from bench import copy_cost
    got = copy_cost.measure(1 << 20, 0.2, min(os.sched_getaffinity(0)), None)
    assert got["working_set"] == 1 << 20 and got["reader"] == 0 and got["chunks"] > 10
    assert 0 < got["ns_per_kb_p10"] <= got["ns_per_kb_median"]


def test_the_tree_peer_says_what_it_needs(monkeypatch, tmp_path):
    from bench.peers import PEERS
    monkeypatch.delenv("TAPSWITCH_BENCH_TREE", raising=False)
    assert "set $TAPSWITCH_BENCH_TREE" in PEERS["tapswitch-tree"]().unavailable()
    monkeypatch.setenv("TAPSWITCH_BENCH_TREE", str(tmp_path))
    assert "does not name a tapswitch source tree" in PEERS["tapswitch-tree"]().unavailable()
    assert PEERS["tapswitch"]().unavailable() is None          # the others do not care


def test_the_tree_peer_runs_the_daemon_of_its_tree_from_anywhere(monkeypatch, tmp_path):
    """``python -m`` puts the working directory first on sys.path: started from this
    tree, the daemon must still import the other tree's pyctl."""
    import subprocess
    from bench.peers import PEERS
    (tmp_path / "pyctl").mkdir()
    (tmp_path / "pyctl" / "__init__.py").write_text("")
    (tmp_path / "pyctl" / "cli.py").write_text("import sys\nprint('the other tree', sys.argv[1:])\n")
    monkeypatch.setenv("TAPSWITCH_BENCH_TREE", str(tmp_path))
    peer = PEERS["tapswitch-tree"]()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(peer.daemon_argv("x.toml"), capture_output=True, text=True, timeout=60,
                         **{"cwd": here, **peer.daemon_where()})
    assert out.stdout.strip() == "the other tree ['run', 'x.toml']", out.stderr
    assert PEERS["tapswitch"]().daemon_where() == {}
