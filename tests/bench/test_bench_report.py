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


def _pytest_benchmark_json(path):
    """The shape bench/bench_fastpath.py writes with --benchmark-json."""
    benches = [{"name": f"test_core[{t}-{n}-b{b}]", "group": f"{t}-{n}",
                "params": {"table": t, "n": n, "size": b},
                "extra_info": {"frames_per_round": 16384}, "stats": {"median": 16384 / (b * 1e6)}}
               for t in ("demux", "fib") for n in (10, 1000) for b in (1, 32)]
    benches += [{"name": f"test_reference[{t}-{n}]", "group": f"{t}-{n}", "params": {"table": t, "n": n},
                 "extra_info": {"frames_per_round": 512}, "stats": {"median": 512 / 2e4}}
                for t in ("demux", "fib") for n in (10, 1000)]
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": benches}))


def test_fastpath_points_from_pytest_benchmark_json(tmp_path):
    from bench import plots
    path = tmp_path / "pb.json"
    _pytest_benchmark_json(path)
    points = plots.fastpath_points(str(path))["points"]
    assert len(points) == 12
    p = next(p for p in points if p["table"] == "fib" and p["entries"] == 1000 and p["batch"] == 32)
    assert p["impl"] == "core" and p["fps"] == pytest.approx(32e6)
    ref = [p for p in points if p["impl"] == "ref"]
    assert len(ref) == 4 and all(p["batch"] is None and p["fps"] == pytest.approx(2e4) for p in ref)


def test_fastpath_points_from_bench_fastpath_rows(tmp_path):
    from bench import plots
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"table": "demux", "entries": 10, "load_s": 0.1, "core_b1": 5e6,
                                 "core_b256": 9e7, "ref_b256": 1e5}]))
    points = plots.fastpath_points(str(path))["points"]
    assert sorted((p["impl"], p["batch"], p["fps"]) for p in points) == \
        [("core", 1, 5e6), ("core", 256, 9e7), ("ref", 256, 1e5)]


@pytest.mark.parametrize("content", ['{"benchmarks": []}', '{"x": 1}', '[{"table": "demux"}]'])
def test_fastpath_points_refuse_other_files(tmp_path, content):
    from bench import plots
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="fast-path"):
        plots.fastpath_points(str(path))


def test_plots_are_written(tmp_path):
    from bench import plots
    written = plots.plot_run(_doc(), str(tmp_path), "run")
    assert [p.rsplit("-", 1)[1] for p in written] == ["throughput.png", "udp64.png"]
    fast = tmp_path / "fast.json"
    _pytest_benchmark_json(fast)
    assert plots.plot_fastpath(plots.fastpath_points(str(fast)), str(tmp_path / "f.png")) == str(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_command_embeds_fastpath_figures(tmp_path):
    fast, results = tmp_path / "fast.json", tmp_path / "run.json"
    _pytest_benchmark_json(fast)
    report.save(_doc(), str(results))
    assert main(["plot", str(results), "--fastpath-json", str(fast)]) == 0
    assert {p.name for p in tmp_path.glob("run-*.png")} == {"run-throughput.png", "run-udp64.png",
                                                             "run-fastpath.png"}
    assert main(["plot"]) == 2


def test_tapswitch_peer_config_is_two_l3_tenants_of_one_l2():
    from bench.peers import Endpoint, TapswitchPeer
    from pyctl import config
    from pyctl.model.switch import Switch
    from pyctl.model.state import ROOT_NAME
    peer = TapswitchPeer("tapswitch", offloads=True)
    peer.workdir = "/tmp/x"
    a = Endpoint(None, "10.77.7.1/24", "tsa1", "nsa")
    b = Endpoint(None, "10.77.7.2/24", "tsb1", "nsb")
    cfg = config.load_config(peer.config_text(a, b))
    kinds = {ns.name: (ns.kind, ns.parent, ns.addresses) for ns in cfg.namespaces}
    assert kinds == {"bench": ("l2", ROOT_NAME, ("10.77.7.254/24",)),
                     "ta": ("l3", "bench", ("10.77.7.1/24",)), "tb": ("l3", "bench", ("10.77.7.2/24",))}
    ports = {p.name: p for p in cfg.ports}
    assert ports["tsa1"].namespace == "ta" and ports["tsa1"].options["netns"] == "nsa"
    assert ports["tsb1"].options["vnet_hdr"] is True
    assert "tso4" in ports["tsb1"].options["offloads"]
    switch = Switch()
    config.apply(cfg, switch)          # the model accepts it
    plain = TapswitchPeer("tapswitch-nooffload", offloads=False)
    plain.workdir = "/tmp/x"
    assert all(not p.options.get("vnet_hdr") for p in config.load_config(plain.config_text(a, b)).ports)


def test_tapswitch_peer_with_an_unknown_backend_is_unavailable_with_the_reason():
    from bench.peers import TapswitchPeer
    peer = TapswitchPeer("tapswitch-x", offloads=True, backend="no-such-backend")
    assert "I/O backend 'no-such-backend' is not usable here" in peer.unavailable()
    assert TapswitchPeer("tapswitch", offloads=False).unavailable() is None


def test_tapswitch_peer_selects_its_backend_in_the_config():
    import fastpath
    from bench.peers import PEERS, Endpoint
    from pyctl import config
    peer = PEERS["tapswitch-epoll"]()
    assert peer.unavailable() is None          # epoll is always built
    peer.workdir = "/tmp/x"
    text = peer.config_text(Endpoint(None, "10.77.7.1/24", "a1", "na"), Endpoint(None, "10.77.7.2/24", "b1", "nb"))
    assert config.load_config(text).daemon.io_backend == "epoll"
    uring = PEERS["tapswitch-uring"]()
    assert (uring.unavailable() is None) == ("io_uring" in fastpath.io_backends())


@pytest.mark.parametrize("args", [["--peers", "nosuch"], ["--tests", "tcp9"], ["--reps", "0"]])
def test_bad_arguments_are_refused(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2


def test_every_bar_is_labelled_and_tapswitchs_bars_are_marked():
    from bench import plots
    doc = _doc(peers=("veth", "tapswitch", "tapswitch-epoll"))
    charts = dict(plots.run_charts(doc))
    ax = charts["throughput"].axes[0]
    assert len(ax.patches) == len(ax.texts) == 3        # one series (tcp1), 3 peers: 3 labels
    assert [t.get_text() for t in ax.texts] == ["10", "5", "0"]     # the medians
    hatched = [p.get_hatch() for p in ax.patches]
    assert hatched == [None, "//", "//"]
    bold = {t.get_text(): t.get_fontweight() for t in ax.get_xticklabels()}
    assert bold == {"veth": "normal", "tapswitch": "bold", "tapswitch-epoll": "bold"}
    udp = charts["udp64"].axes[0]
    assert len([t for t in udp.texts]) == 3 * 3                          # three series x three peers
    assert "QUICK" not in ax.get_title()


def test_a_quick_run_says_so_on_its_plots():
    from bench import plots
    doc = _doc()
    doc["plan"].update(reps=1, seconds=1.0, quick=True)
    fig = dict(plots.run_charts(doc))["throughput"]
    assert plots.QUICK_NOTE in fig.axes[0].get_title()
    assert any(t.get_text() == "QUICK RUN" for t in fig.texts)
    del doc["plan"]["quick"]                  # a file written before the flag: 1 rep of 1 s
    assert plots.is_quick(doc)


def test_the_ipv6_row_is_beside_the_ipv4_one_with_the_peers_own_ratio():
    run = Run(Plan(peers=["veth", "tapswitch"], tests=["tcp1", "tcp1v6"], reps=1, seconds=5.0))
    for peer, v4, v6 in (("veth", 20.0, 18.0), ("tapswitch", 10.0, 9.5)):
        run.peers[peer] = {"status": "ok", "description": peer}
        run.samples.append({"peer": peer, "test": "tcp1", "rep": 1, "metrics": {"gbps": v4}})
        run.samples.append({"peer": peer, "test": "tcp1v6", "rep": 1, "metrics": {"gbps": v6}})
    text = report.table(report.results_document(run, {"cores": 2}, []))
    header = text.splitlines()[1]
    assert header.index("TCP x1 Gbit/s") < header.index("TCP6 x1 Gbit/s")
    assert "tcp1v6/tapswitch" in header and "tcp1v6/tcp1" in header
    row = next(line for line in text.splitlines() if line.startswith("tapswitch"))
    assert row.split()[-1] == "0.95"                 # its own IPv6 over its IPv4 figure
    row = next(line for line in text.splitlines() if line.startswith("veth"))
    assert row.split()[-1] == "0.90"


def test_tapswitch_bench_config_is_dual_stack_when_ipv6_is_measured():
    from pyctl import config
    from bench.peers import Endpoint, TapswitchPeer
    peer = TapswitchPeer("tapswitch", offloads=True)
    a = Endpoint(None, "10.77.8.1/24", "bsa0", "ns-a", cidr6="fd77:8::1/64")
    b = Endpoint(None, "10.77.8.2/24", "bsb0", "ns-b", cidr6="fd77:8::2/64")
    sw = config.check(config.load_config(peer.config_text(a, b)))
    assert sw.addresses("bench")[2:] == ["10.77.8.254/24", "fd77:8::fe/64"]
    assert sw.addresses("ta")[2:] == ["10.77.8.1/24", "fd77:8::1/64"]
    assert sw.port("bsb0").options["gateway"] == ["10.77.8.254", "fd77:8::fe"]
    plain = config.load_config(peer.config_text(Endpoint(None, "10.77.8.1/24", "bsa0", "ns-a"),
                                                Endpoint(None, "10.77.8.2/24", "bsb0", "ns-b")))
    assert [p.options["address"] for p in plain.ports] == ["10.77.8.1/24", "10.77.8.2/24"]


def test_port_kind_rows_get_issue_17s_small_frame_ratios():
    peers = ("minimal-forwarder", "tapswitch", "tapswitch-veth")
    figures = {"minimal-forwarder": (100, 4000, 12000), "tapswitch": (150, 3000, 10000),
               "tapswitch-veth": (250, 1200, 8000)}     # kf/s, switch and whole-system ns/frame
    run = Run(Plan(peers=list(peers), tests=["udp64raw"], reps=1, seconds=5.0))
    for peer, (kfps, cpu, system) in figures.items():
        run.peers[peer] = {"status": "ok", "description": peer}
        run.samples.append({"peer": peer, "test": "udp64raw", "rep": 1,
                            "metrics": {"delivered_kpps": kfps, "sent_kpps": kfps,
                                        "cpu_ns_per_frame": cpu, "system_cpu_ns_per_frame": system}})
    doc = report.results_document(run, {"cpu_model": "test", "cores": 2, "kernel": "6.x"}, [])
    assert report.port_kind_targets(doc)[1:] == [
        "  udp64raw tapswitch-veth: delivered 2.50 x minimal-forwarder, switch CPU/frame 0.40 x "
        "and whole-system CPU/frame 0.80 x tapswitch"]
    text = report.table(doc)
    assert "RAW64 deliv kf/s" in text and "udp64raw/tapswitch" in text
    assert "64-byte targets (issue 17" in text


def test_small_frame_rows_say_which_thread_set_their_rate():
    # (switch cores, generator cores, frames a's device refused, loss %)
    figures = {"minimal-forwarder": (1.0, 0.75, 20000, 0.8),
               "tapswitch-veth": (0.95, 0.99, 0, 0.79), "tapswitch-xdp": (0.5, 0.6, 0, 0)}
    run = Run(Plan(peers=list(figures), tests=["udp64raw"], reps=1, seconds=5.0))
    for peer, (switch, generator, refused, loss) in figures.items():
        run.peers[peer] = {"status": "ok", "description": peer}
        run.samples.append({"peer": peer, "test": "udp64raw", "rep": 1,
                            "metrics": {"delivered_kpps": 500, "cpu_cores": switch,
                                        "generator_cores": generator, "refused": refused,
                                        "loss_pct": loss,
                                        **({"ring_rx_drops": 15831} if peer == "tapswitch-veth"
                                           else {})}})
    doc = report.results_document(run, {"cpu_model": "test", "cores": 2, "kernel": "6.x"}, [])
    assert report.small_frame_limits(doc) == [
        "udp64raw limits (medians; a thread at >= 0.9 of a core):",
        "  minimal-forwarder: switch (1.00); a's device refused 20000 frames (its queue to the "
        "switch full)",
        "  tapswitch-veth: switch (0.95) and generator (0.99); none refused, 0.79 % lost on the "
        "way (15831 frames in the switch's full receive ring); the generator at its limit: the "
        "switch forwarded at least this",
        "  tapswitch-xdp: no thread at a full core"]
    text = report.table(doc)
    assert "RAW64 generator cores" in text and "udp64raw limits" in text
