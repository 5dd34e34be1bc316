"""What the bench prints and saves: machine facts, the JSON results file
(every raw sample), summaries (median/min/max per peer, test and metric), the
terminal table with ratios, and the comparison of two results files."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import time

FORMAT_VERSION = 1

# (test, metric, column header, higher is better)
COLUMNS = [
    ("tcp1", "gbps", "TCP x1 Gbit/s", True),
    ("tcp1v6", "gbps", "TCP6 x1 Gbit/s", True),
    ("tcp4", "gbps", "TCP x4 Gbit/s", True),
    ("udp64", "delivered_kpps", "UDP64 deliv kf/s", True),
    ("udp64", "received_kpps", "UDP64 read kf/s", True),
    ("udp64", "sent_kpps", "UDP64 sent kf/s", True),
    ("udp64", "loss_pct", "loss %", False),
    ("udp64", "cpu_ns_per_frame", "CPU ns/frame", False),
    ("udp64", "system_cpu_ns_per_frame", "sys CPU ns/frame", False),
    ("udp64", "cpu_cores", "switch cores", False),
    # the same frames from a generator and to a sink that cost almost nothing (bench/udp64raw.py)
    ("udp64raw", "delivered_kpps", "RAW64 deliv kf/s", True),
    ("udp64raw", "sent_kpps", "RAW64 sent kf/s", True),
    ("udp64raw", "loss_pct", "RAW64 loss %", False),
    ("udp64raw", "cpu_ns_per_frame", "RAW64 CPU ns/frame", False),
    ("udp64raw", "system_cpu_ns_per_frame", "RAW64 sys CPU ns/frame", False),
    ("udp64raw", "cpu_cores", "RAW64 switch cores", False),
    ("udp64raw", "generator_cpu_ns_per_frame", "RAW64 generator ns/frame", False),
    ("udp64raw", "generator_cores", "RAW64 generator cores", False),
    ("udp64raw", "frames_per_batch", "RAW64 frames/batch", True),
    ("rtt", "median_us", "RTT med us", False),
    ("rtt", "p99_us", "RTT p99 us", False),
    # one stream: how the scheduler treated the sender (bench.schedstat), the switch's
    # cores, and its loop's batching (where the switch reports its loop counters)
    ("tcp1", "sender_on_cpu", "TCP x1 sender on-CPU", True),
    ("tcp1", "sender_runq", "sender runq", False),
    ("tcp1", "cpu_util", "TCP x1 switch cores", False),
    ("tcp1", "switch_sleeps_per_gb", "switch sleeps/GB", False),
    ("tcp1", "frames_per_wake", "frames/wake", True),
    ("tcp1", "syscalls_per_gb", "syscalls/GB", False),
]
RATIO_COLUMNS = [("tcp1", "gbps"), ("tcp1v6", "gbps"), ("tcp4", "gbps"),
                 ("udp64", "delivered_kpps"), ("udp64raw", "delivered_kpps")]
# a peer's own figure over IPv6 beside its IPv4 one: (test, over test, metric)
FAMILY_RATIOS = [("tcp1v6", "tcp1", "gbps")]
# The TAP peers issue 18's target compares tapswitch with (the best of them counts).
TAP_REFERENCE_PEERS = ("minimal-forwarder-vnet", "ovs-netdev-tso")
VETH_GOAL = 0.85            # tapswitch / veth, any placement
PINNED_TAP_GOAL = 1.1       # tapswitch / the best TAP peer, pinned (unpinned: 1.0)
# Issue 17's small-frame targets: these rows against the minimal TAP forwarder and tapswitch over TAP.
PORT_KIND_PEERS = ("tapswitch-veth", "tapswitch-xdp", "tapswitch-veth-ring4k")
SMALL_FRAME_TESTS = ("udp64", "udp64raw")
LIMIT_CORES = 0.9           # a thread this busy is what limits a small-frame row


def _version(argv) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def machine_facts() -> dict:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    uname = platform.uname()
    return {
        "cpu_model": model, "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "kernel": uname.release, "machine": uname.machine, "hostname": uname.node,
        "python": platform.python_version(),
        "iperf3": _version(["iperf3", "--version"]),
        "ovs": _version(["ovs-vswitchd", "--version"]),
        "gcc": _version(["gcc", "--version"]),
        "loadavg": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def label(peer: str, placement: str | None, several: bool) -> str:
    """A row's name: the peer, and its placement when a run measured several."""
    return f"{peer}@{placement}" if several and placement else peer


def placement_names(samples: list[dict]) -> list[str]:
    names = []
    for s in samples:
        if s.get("placement") and s["placement"] not in names:
            names.append(s["placement"])
    return names


def summarize(samples: list[dict]) -> dict:
    """{row: {test: {metric: {"median", "min", "max", "n"}}}} over the numeric
    metrics of the successful samples; a row is a peer, or ``peer@placement`` when
    the samples come from several placements."""
    several = len(placement_names(samples)) > 1
    values: dict = {}
    for s in samples:
        row = label(s["peer"], s.get("placement"), several)
        for metric, v in (s.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values.setdefault(row, {}).setdefault(s["test"], {}) \
                      .setdefault(metric, []).append(v)
    return {peer: {test: {m: {"median": statistics.median(v), "min": min(v), "max": max(v),
                              "n": len(v)} for m, v in metrics.items()}
                   for test, metrics in tests.items()}
            for peer, tests in values.items()}


def results_document(run, machine: dict, argv: list[str], fastpath: dict | None = None) -> dict:
    """The results file: every raw sample, summaries, machine facts, and the
    fast-path scaling figures if given (bench.plots.fastpath_points())."""
    return {
        "format": FORMAT_VERSION,
        "argv": argv,
        "machine": machine,
        "plan": vars(run.plan),
        "placements": run.placements,
        "interrupted": run.interrupted,
        "peers": run.peers,
        "samples": run.samples,
        "summary": summarize(run.samples),
        "fastpath": fastpath,
    }


def save(doc: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)


def load(path: str) -> dict:
    with open(path) as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a bench results file of format {FORMAT_VERSION}")
    return doc


def _get(summary, peer, test, metric, stat="median"):
    return summary.get(peer, {}).get(test, {}).get(metric, {}).get(stat)


def _num(v) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def baseline_peer(doc: dict, placement: str | None = None) -> str:
    """tapswitch when it was measured, else veth (or the first peer); the row name
    under ``placement`` when the run measured several."""
    summary = doc["summary"]
    several = len(placement_names(doc["samples"])) > 1
    for name in ("tapswitch", "tapswitch-nooffload", "veth"):
        if label(name, placement, several) in summary:
            return label(name, placement, several)
    return next(iter(summary), "veth")


def targets(doc: dict) -> list[str]:
    """Issue 18's single-stream ratios under each placement: tapswitch / veth and
    tapswitch / the best TAP reference peer (TAP_REFERENCE_PEERS) measured."""
    summary = doc["summary"]
    placements = placement_names(doc["samples"]) or [None]
    several = len(placements) > 1
    out = []
    for place in placements:
        get = lambda peer: _get(summary, label(peer, place, several), "tcp1", "gbps")  # noqa: E731
        ts, veth = get("tapswitch"), get("veth")
        refs = {p: get(p) for p in TAP_REFERENCE_PEERS if get(p) is not None}
        if ts is None or (veth is None and not refs):
            continue
        parts = [f"tapswitch/veth {_ratio(ts, veth)}"] if veth else []
        goals = [("veth", VETH_GOAL)] if veth else []
        if refs:
            best = max(refs, key=refs.get)
            parts.append(f"tapswitch/best TAP peer ({best}) {_ratio(ts, refs[best])}")
            goals.append((best, PINNED_TAP_GOAL if place == "pinned" else 1.0))
        out.append(f"  {place or 'as measured'}: " + ", ".join(parts))
        paired = rep_ratios(doc, place, goals)
        if paired:
            out.append("    per rep (each pair run back to back): " + ", ".join(paired))
    return ["TCP x1 targets (medians, same placement): >= 0.85 x veth, >= 1.1 x the best TAP "
            "peer pinned, >= 1.0 unpinned"] + out if out else []


def rep_ratios(doc: dict, place: str | None, goals: list) -> list[str]:
    """tapswitch's tcp1 rate over each peer of ``goals`` ([(peer, goal)]) rep by rep:
    the runner measures every peer of a rep one after the other, so a pair of one rep
    shares the machine's state of that moment, which the ratio of the medians does not
    show.  "/PEER LOW..HIGH (>= GOAL in K of N)"; nothing for a peer with no common rep."""
    rates: dict = {}
    for s in doc["samples"]:
        gbps = (s.get("metrics") or {}).get("gbps")
        if s.get("test") == "tcp1" and s.get("placement") == place and gbps:
            rates.setdefault(s["peer"], {})[s["rep"]] = gbps
    mine = rates.get("tapswitch", {})
    out = []
    for peer, goal in goals:
        theirs = rates.get(peer, {})
        ratios = [mine[r] / theirs[r] for r in sorted(set(mine) & set(theirs))]
        if ratios:
            met = sum(1 for r in ratios if r >= goal)
            out.append(f"/{peer} {min(ratios):.2f}..{max(ratios):.2f} "
                       f"(>= {goal} in {met} of {len(ratios)})")
    return out


def port_kind_targets(doc: dict) -> list[str]:
    """Issue 17's small-frame ratios of each port-kind row (PORT_KIND_PEERS), per small-frame
    test and placement: frames delivered over the minimal TAP forwarder's, and the switch's
    and the whole system's CPU per frame over tapswitch's over TAP."""
    summary = doc["summary"]
    placements = placement_names(doc["samples"]) or [None]
    several = len(placements) > 1
    out = []
    for test in SMALL_FRAME_TESTS:
        for place in placements:
            for peer in PORT_KIND_PEERS:
                row = label(peer, place, several)
                ratio = lambda metric, base: _ratio(                      # noqa: E731
                    _get(summary, row, test, metric),
                    _get(summary, label(base, place, several), test, metric))
                if _get(summary, row, test, "delivered_kpps") is None:
                    continue
                out.append(f"  {test} {row}: delivered "
                           f"{ratio('delivered_kpps', 'minimal-forwarder')} x minimal-forwarder, "
                           f"switch CPU/frame {ratio('cpu_ns_per_frame', 'tapswitch')} x and "
                           f"whole-system CPU/frame {ratio('system_cpu_ns_per_frame', 'tapswitch')}"
                           " x tapswitch")
    return ["64-byte targets (issue 17, medians): delivered >= 2 x minimal-forwarder, switch "
            "CPU/frame <= 0.5 x and whole-system CPU/frame < 1 x tapswitch over TAP"] + out if out else []


def small_frame_limits(doc: dict) -> list[str]:
    """Which thread set each udp64raw row's rate: the switch's packet thread and the
    generator (single-threaded, with the kernel work of its sends: for a ring port, the
    copy into the switch's receive ring) at >= LIMIT_CORES of a core (medians).  A row
    whose generator is at its limit and whose frames a's device never refused measured
    the load, not the switch: its rate is a lower bound of the switch's."""
    summary = doc["summary"]
    placements = placement_names(doc["samples"]) or [None]
    several = len(placements) > 1
    out = []
    for place in placements:
        for peer, info in doc["peers"].items():
            row = label(peer, place, several)
            if info.get("status") != "ok" or _get(summary, row, "udp64raw", "delivered_kpps") is None:
                continue
            cores = {"switch": _get(summary, row, "udp64raw", "cpu_cores"),
                     "generator": _get(summary, row, "udp64raw", "generator_cores")}
            refused = _get(summary, row, "udp64raw", "refused")
            loss = _get(summary, row, "udp64raw", "loss_pct")
            busy = [f"{who} ({c:.2f})" for who, c in cores.items()
                    if c is not None and c >= LIMIT_CORES]
            what = " and ".join(busy) if busy else "no thread at a full core"
            if refused:
                what += f"; a's device refused {refused:.0f} frames (its queue to the switch full)"
            else:
                if loss:
                    what += f"; none refused, {loss:.2f} % lost on the way"
                    ring = _get(summary, row, "udp64raw", "ring_rx_drops")
                    if ring is not None:
                        what += f" ({ring:.0f} frames in the switch's full receive ring)"
                if cores["generator"] is not None and cores["generator"] >= LIMIT_CORES:
                    what += "; the generator at its limit: the switch forwarded at least this"
            out.append(f"  {row}: {what}")
    return [f"udp64raw limits (medians; a thread at >= {LIMIT_CORES} of a core):"] + out if out else []


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)   # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def table(doc: dict) -> str:
    """Medians per peer (rows) and metric (columns), the spread (min..max), the
    ratio to the baseline peer, and why skipped peers were skipped."""
    summary = doc["summary"]
    tests = set(doc["plan"]["tests"])
    cols = [c for c in COLUMNS if c[0] in tests and any(_get(summary, p, c[0], c[1]) is not None
                                                        for p in summary)]
    placements = placement_names(doc["samples"]) or [None]
    several = len(placements) > 1
    base_peer = baseline_peer(doc, placements[0]).split("@")[0]
    ratios = [c for c in RATIO_COLUMNS if c[0] in tests]
    own = [c for c in FAMILY_RATIOS if c[0] in tests and c[1] in tests]
    header = (["peer"] + [c[2] for c in cols] + [f"{t}/{base_peer}" for t, _ in ratios]
              + [f"{t}/{over}" for t, over, _ in own])
    rows, spread = [], []
    for place in placements:
        base = baseline_peer(doc, place)
        for peer, info in doc["peers"].items():
            row = label(peer, place, several)
            if info.get("status") != "ok" or row not in summary:
                continue
            rows.append([row] + [_num(_get(summary, row, t, m)) for t, m, _, _ in cols]
                        + [_ratio(_get(summary, row, t, m), _get(summary, base, t, m))
                           for t, m in ratios]
                        + [_ratio(_get(summary, row, t, m), _get(summary, row, over, m))
                           for t, over, m in own])
            spread.append([row] + [f"{_num(_get(summary, row, t, m, 'min'))}.."
                                   f"{_num(_get(summary, row, t, m, 'max'))}" for t, m, _, _ in cols])
    reps = doc["plan"]["reps"]
    out = [f"medians of {reps} run(s); ratios are medians over the {base_peer} medians"
           + (" of the same placement" if several else ""), _render(header, rows),
           "", "min..max", _render(["peer"] + [c[2] for c in cols], spread)]
    if doc.get("placements"):
        from bench.placement import Placement
        out += ["", "placement (the same rule for every peer; bench/placement.py):"]
        out += [f"  {Placement(**p).describe()}" for p in doc["placements"]]
    goals = ((targets(doc) if "tcp1" in tests else []) + port_kind_targets(doc)
             + small_frame_limits(doc))
    if goals:
        out += [""] + goals
    out += ["", "CPU: the switch's own processes (all threads) during the 64-byte load, per frame "
                "delivered and in cores (1.00 = one core busy); peers:"]
    for peer, info in doc["peers"].items():
        if info.get("status") == "ok":
            facts = ", ".join(f"{k} {v}" for k, v in info.items()
                              if k not in ("status", "description", "reason", "daemon_pid"))
            out.append(f"  {peer}: {info.get('description', '')}" + (f" ({facts})" if facts else ""))
    skipped = [(p, i) for p, i in doc["peers"].items() if i.get("status") != "ok"]
    if skipped:
        out += [""] + [f"{p}: {i['status']}: {i.get('reason')}" for p, i in skipped]
    errors = [s for s in doc["samples"] if "error" in s]
    if errors:
        out += [""] + [f"{s['peer']} {s['test']} rep {s['rep']}: {s['error']}" for s in errors]
    return "\n".join(out)


def _ratio(v, base) -> str:
    if v is None or not base:
        return "-"
    return f"{v / base:.2f}"


def compare(a: dict, b: dict, a_name: str = "A", b_name: str = "B") -> str:
    """Medians of two runs side by side, with B/A, for every peer and column."""
    rows = []
    for peer in sorted(set(a["summary"]) | set(b["summary"])):
        for test, metric, header, higher_better in COLUMNS:
            va = _get(a["summary"], peer, test, metric)
            vb = _get(b["summary"], peer, test, metric)
            if va is None and vb is None:
                continue
            ratio = _ratio(vb, va)
            flag = ""
            if va and vb is not None:
                change = vb / va - 1
                better = change > 0 if higher_better else change < 0
                if abs(change) >= 0.1:
                    flag = "better" if better else "WORSE"
            rows.append([peer, header, _num(va), _num(vb), ratio, flag])
    facts = [f"{a_name}: {a['machine'].get('date')} {a['machine'].get('cpu_model')} "
             f"kernel {a['machine'].get('kernel')}",
             f"{b_name}: {b['machine'].get('date')} {b['machine'].get('cpu_model')} "
             f"kernel {b['machine'].get('kernel')}"]
    return "\n".join(facts + ["", _render(["peer", "metric", a_name, b_name, f"{b_name}/{a_name}", "(>=10%)"],
                                          rows)])
