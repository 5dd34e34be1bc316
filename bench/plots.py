"""PNG plots of a bench run (matplotlib, Agg backend): throughput per peer,
64-byte frame rates per peer, and the in-memory fast-path scaling curves
(frames/s against the number of addresses or routes, one line per batch
size) from bench/bench_fastpath.py's pytest-benchmark JSON or from
``python -m bench.fastpath --json`` (see fastpath_points()).
"""

from __future__ import annotations

import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


QUICK_NOTE = "QUICK RUN (--quick: 1 repetition of 1 s): a smoke test, not a measurement"


def is_quick(doc: dict) -> bool:
    """A ``--quick`` run (older files without the flag: one repetition of at most 1 s)."""
    plan = doc["plan"]
    return bool(plan.get("quick", plan.get("reps") == 1 and plan.get("seconds", 5) <= 1))


def is_tapswitch(peer: str) -> bool:
    return peer.startswith("tapswitch")


def _bars(ax, doc, series, ylabel, title):
    """Grouped bars, one group per peer: every bar labelled with its median; tapswitch's
    bars hatched with a dark edge and their names in bold."""
    summary = doc["summary"]
    ok = [p for p, i in doc["peers"].items() if i.get("status") == "ok"]
    # a row per peer, or per peer and placement (bench.report.summarize)
    peers = [row for row in summary if row.split("@")[0] in ok]
    width = 0.8 / max(1, len(series))
    crowded = len(series) * len(peers) > 20
    for k, (test, metric, label) in enumerate(series):
        med, lo, hi, text = [], [], [], []
        for p in peers:
            s = summary[p].get(test, {}).get(metric)
            med.append(s["median"] if s else 0)
            lo.append(s["median"] - s["min"] if s else 0)
            hi.append(s["max"] - s["median"] if s else 0)
            text.append(f"{s['median']:.3g}" if s else "n/a")     # not measured: said so
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(peers))]
        bars = ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=label)
        for bar, peer in zip(bars, peers):
            if is_tapswitch(peer):
                bar.set_hatch("//")
                bar.set_edgecolor("black")
                bar.set_linewidth(1.2)
        for bar, value, top, label_text in zip(bars, med, hi, text):    # above the error bar
            ax.annotate(label_text, (bar.get_x() + bar.get_width() / 2, value + top),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=6 if crowded else 7, rotation=90 if crowded else 0)
    ax.set_xticks(range(len(peers)))
    ax.set_xticklabels(peers, rotation=30, ha="right")
    for tick, peer in zip(ax.get_xticklabels(), peers):
        if is_tapswitch(peer):
            tick.set_fontweight("bold")
    ax.margins(y=0.3)                   # room for the labels and the legend above the bars
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="tapswitch: hatched, names in bold", title_fontsize=7, fontsize=7,
              loc="upper center", ncols=len(series))


def machine_line(machine: dict) -> str:
    return f"{machine.get('cpu_model')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}"


def mark_quick(fig) -> None:
    """A --quick run says so on the figure: in its title and across the plot."""
    fig.text(0.5, 0.5, "QUICK RUN", fontsize=60, color="red", alpha=0.12, ha="center",
             va="center", rotation=25)
    fig.text(0.01, 0.005, QUICK_NOTE, fontsize=8, color="red", ha="left", va="bottom")


CHARTS = [
    ("throughput", [("tcp1", "gbps", "1 stream"), ("tcp4", "gbps", "4 streams")],
     "Gbit/s", "TCP throughput between two namespaces"),
    ("udp64", [("udp64", "delivered_kpps", "delivered (interface)"),
               ("udp64", "received_kpps", "read (receiver)"),
               ("udp64", "sent_kpps", "sent (generator)")],
     "thousand frames/s", "64-byte UDP frames"),
    ("udp64raw", [("udp64raw", "delivered_kpps", "delivered (interface)"),
                  ("udp64raw", "sent_kpps", "sent (generator)")],
     "thousand frames/s", "64-byte frames, AF_PACKET generator, dropped at b's tc ingress"),
]


def run_charts(doc: dict):
    """(name, figure) of each chart the run has data for."""
    tests = set(doc["plan"]["tests"])
    subtitle = machine_line(doc["machine"]) + ("\n" + QUICK_NOTE if is_quick(doc) else "")
    for name, series, ylabel, title in CHARTS:
        series = [s for s in series if s[0] in tests]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(9, 5.4))
        _bars(ax, doc, series, ylabel, f"{title}\n{subtitle}")
        fig.tight_layout()
        if is_quick(doc):
            mark_quick(fig)
        yield name, fig


def plot_run(doc: dict, out_dir: str, stem: str) -> list[str]:
    """Throughput and frame-rate bar charts of a results document."""
    written = []
    for name, fig in run_charts(doc):
        path = os.path.join(out_dir, f"{stem}-{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def fastpath_points(path: str) -> dict:
    """The fast-path scaling figures of a results file, as
    ``{"source", "path", "points": [{"table", "entries", "batch", "impl", "fps"}]}``.

    Reads either format: pytest-benchmark's JSON of bench/bench_fastpath.py
    (params table/n/size; frames/s = extra_info["frames_per_round"] over the
    median round; ``test_reference`` rows are the Python reference) or the
    rows ``python -m bench.fastpath --json`` writes (core_bN / ref_bN, best
    of its runs). Anything else is refused with a ValueError.
    """
    with open(path) as f:
        doc = json.load(f)
    points = []
    if isinstance(doc, dict) and "benchmarks" in doc:
        source = "pytest-benchmark, median round"
        for bench in doc["benchmarks"]:
            params = bench.get("params") or {}
            batch_key = next((k for k in params if k in ("size", "batch", "batch_size")), None)
            x_key = "n" if "n" in params else next(
                (k for k, v in params.items() if k != batch_key and isinstance(v, int)
                 and not isinstance(v, bool)), None)
            if x_key is None:
                continue
            name = bench.get("name", "")
            table = params.get("table") or (bench.get("group") or re.sub(r"\[.*", "", name)).split("-")[0]
            frames = (bench.get("extra_info") or {}).get("frames_per_round") or \
                (params[batch_key] if batch_key else 1)
            points.append({"table": table, "entries": params[x_key],
                           "batch": params[batch_key] if batch_key else None,
                           "impl": "ref" if "reference" in name else "core",
                           "fps": frames / bench["stats"]["median"]})
    elif isinstance(doc, list) and all(isinstance(r, dict) and "table" in r and "entries" in r
                                       for r in doc):
        source = "python -m bench.fastpath, best run"
        for row in doc:
            for key, value in row.items():
                m = re.fullmatch(r"(core|ref)_b(\d+)", key)
                if m:
                    points.append({"table": row["table"], "entries": row["entries"],
                                   "batch": int(m.group(2)), "impl": m.group(1), "fps": value})
    else:
        raise ValueError(f"{path}: no fast-path figures: neither pytest-benchmark JSON of bench/bench_fastpath.py "
                         f"nor 'python -m bench.fastpath --json' rows")
    if not points:
        raise ValueError(f"{path}: no fast-path figures in it")
    return {"source": source, "path": os.path.abspath(path), "points": points}


X_LABELS = {"demux": "addresses in the demux table", "fib": "routes in the FIB"}


def plot_fastpath(data: dict, out_path: str, subtitle: str = "", quick: bool = False) -> str:
    """Frames/s against the table size, one line per batch size (the Python
    reference dashed), one panel per table; ``data`` from fastpath_points()."""
    panels: dict = {}
    for p in data["points"]:
        label = (f"batch {p['batch']}" if p["impl"] == "core" else
                 "Python reference" + (f", batch {p['batch']}" if p["batch"] else ""))
        key = (p["impl"] != "core", p["batch"] or 0, label)
        panels.setdefault(p["table"], {}).setdefault(key, []).append((p["entries"], p["fps"]))
    batches = sorted({p["batch"] or 0 for p in data["points"] if p["impl"] == "core"})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.2), squeeze=False,
                             layout="constrained")
    legend = {}
    for ax, (table, lines) in zip(axes[0], sorted(panels.items())):
        for (is_ref, batch, label), points in sorted(lines.items()):
            points.sort()
            color = "grey" if is_ref else f"C{batches.index(batch)}"
            legend[label], = ax.plot([x for x, _ in points], [y / 1e6 for _, y in points], marker="o",
                                     linestyle="--" if is_ref else "-", color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(X_LABELS.get(table, f"{table} entries"))
        ax.set_ylabel("million 64-byte frames/s (one core, in memory)")
        ax.set_title(f"fast path: {table}")
        ax.grid(alpha=0.3, which="both")
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=len(legend))
    fig.suptitle(f"Datapath.process() throughput ({data['source']})" + (f"\n{subtitle}" if subtitle else "")
                 + (f"\n{QUICK_NOTE}" if quick else ""), fontsize="medium")
    if quick:
        mark_quick(fig)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
