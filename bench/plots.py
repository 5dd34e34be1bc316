"""PNG plots of a bench run (matplotlib, Agg backend): throughput per peer,
64-byte frame rates per peer, and the in-memory fast-path scaling curves from
``bench/bench_fastpath.py``'s pytest-benchmark JSON.

Fast-path JSON convention: each benchmark's ``params`` holds a batch size
(a param whose name contains "batch": one line per value) and one other
numeric param (the x axis: number of addresses, routes, ...); frames per
round are ``extra_info["frames"]`` if given, else the batch size. Benchmarks
are grouped into one panel per ``group`` (or per test function).
"""

from __future__ import annotations

import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _bars(ax, doc, series, ylabel, title):
    summary = doc["summary"]
    peers = [p for p, i in doc["peers"].items() if i.get("status") == "ok" and p in summary]
    width = 0.8 / max(1, len(series))
    for k, (test, metric, label) in enumerate(series):
        med, lo, hi = [], [], []
        for p in peers:
            s = summary[p].get(test, {}).get(metric)
            med.append(s["median"] if s else 0)
            lo.append(s["median"] - s["min"] if s else 0)
            hi.append(s["max"] - s["median"] if s else 0)
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(peers))]
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks(range(len(peers)))
    ax.set_xticklabels(peers, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()


def plot_run(doc: dict, out_dir: str, stem: str) -> list[str]:
    """Throughput and frame-rate bar charts of a results document."""
    written = []
    tests = set(doc["plan"]["tests"])
    machine = doc["machine"]
    subtitle = f"{machine.get('cpu_model')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}"
    charts = [
        ("throughput", [("tcp1", "gbps", "1 stream"), ("tcp4", "gbps", "4 streams")],
         "Gbit/s", "TCP throughput between two namespaces"),
        ("udp64", [("udp64", "delivered_kpps", "delivered (interface)"),
                   ("udp64", "received_kpps", "read (receiver)"),
                   ("udp64", "sent_kpps", "sent (generator)")],
         "thousand frames/s", "64-byte UDP frames"),
    ]
    for name, series, ylabel, title in charts:
        series = [s for s in series if s[0] in tests]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(9, 5))
        _bars(ax, doc, series, ylabel, f"{title}\n{subtitle}")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{stem}-{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_fastpath(json_path: str, out_path: str) -> str | None:
    """Frames/s against the table size, one line per batch size, one panel per
    group. Returns the PNG's path, or None if the file has nothing to plot."""
    with open(json_path) as f:
        doc = json.load(f)
    panels: dict = {}
    for bench in doc.get("benchmarks", []):
        params = bench.get("params") or {}
        batch_key = next((k for k in params if "batch" in k.lower()), None)
        x_key = next((k for k, v in params.items() if k != batch_key
                      and isinstance(v, (int, float)) and not isinstance(v, bool)), None)
        if x_key is None:
            continue
        frames = (bench.get("extra_info") or {}).get("frames") or (params.get(batch_key) if batch_key else 1)
        median = bench["stats"]["median"]
        group = bench.get("group") or re.sub(r"\[.*", "", bench["name"])
        line = f"batch {params[batch_key]}" if batch_key else "all"
        panels.setdefault((group, x_key), {}).setdefault(line, []).append((params[x_key], frames / median))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, ((group, x_key), lines) in zip(axes[0], sorted(panels.items())):
        for line, points in sorted(lines.items(), key=lambda kv: kv[0]):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] / 1e6 for p in points], marker="o", label=line)
        ax.set_xscale("log")
        ax.set_xlabel(x_key)
        ax.set_ylabel("million frames/s (one core, in memory)")
        ax.set_title(group)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
