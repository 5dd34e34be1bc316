"""``python -m bench``: how does tapswitch compare, on this machine, with what
one would use instead? Builds two kernel namespaces per peer, connects them
through the peer, and measures TCP (1 and 4 streams), 64-byte UDP frames per
second, UDP round-trip latency and the switch's CPU time per frame.

    python -m bench                                  # all peers, 3 reps, 5 s per test
    python -m bench --quick                          # 1 rep, 1 s per test (smoke test)
    python -m bench --peers veth,tapswitch --tests tcp1,udp64   # the daemon's first figure
    python -m bench compare OLD.json NEW.json        # differences between two runs
    python -m bench plot RESULTS.json                # PNGs again from a results file

Needs root. Peers that cannot run here (Open vSwitch not installed, tapswitch
not built) are skipped with the reason. Results: a JSON file with every raw
sample and the machine facts, PNG plots next to it, and a table on stdout.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

from bench import report
from bench.peers import PEERS
from bench.runner import TESTS, Plan, run_bench

DEFAULT_OUT = "bench/results"


def _list(value: str, known, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in known]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad) or '(none)'}; "
                                         f"known: {', '.join(known)}")
    return items


def _fastpath_json(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    found = glob.glob(".benchmarks/**/*.json", recursive=True) + \
        glob.glob(os.path.join(DEFAULT_OUT, "fastpath*.json"))
    return max(found, key=os.path.getmtime) if found else None


def _plots(doc: dict, out_dir: str, stem: str, fastpath: str | None) -> None:
    from bench import plots
    written = plots.plot_run(doc, out_dir, stem)
    if fastpath:
        png = plots.plot_fastpath(fastpath, os.path.join(out_dir, f"{stem}-fastpath.png"))
        if png:
            written.append(png)
    for path in written:
        print(f"plot: {path}")


def cmd_run(args) -> int:
    if os.geteuid() != 0:
        print("python -m bench needs root (it creates kernel network namespaces)", file=sys.stderr)
        return 2
    plan = Plan(peers=args.peers, tests=args.tests, reps=1 if args.quick else args.reps,
                seconds=1.0 if args.quick else args.seconds, tcp_tool=args.tcp_tool,
                rtt_count=200 if args.quick else 1000)
    from pyctl import kernel
    kernel.registry.install_signal_handlers()
    print(f"bench: peers {', '.join(plan.peers)}; tests {', '.join(plan.tests)}; "
          f"{plan.reps} rep(s) of {plan.seconds:g} s")
    run = run_bench(plan, log=print)
    doc = report.results_document(run, report.machine_facts(), sys.argv)
    stem = time.strftime("bench-%Y%m%d-%H%M%S")
    path = args.output or os.path.join(DEFAULT_OUT, f"{stem}.json")
    report.save(doc, path)
    print()
    print(report.table(doc))
    print(f"\nresults: {path}")
    if not args.no_plots:
        _plots(doc, os.path.dirname(path) or ".", os.path.splitext(os.path.basename(path))[0],
               _fastpath_json(args.fastpath_json))
    return 130 if run.interrupted else 0


def cmd_compare(args) -> int:
    a, b = report.load(args.a), report.load(args.b)
    print(report.compare(a, b, "A", "B"))
    return 0


def cmd_plot(args) -> int:
    doc = report.load(args.results)
    print(report.table(doc))
    _plots(doc, os.path.dirname(args.results) or ".",
           os.path.splitext(os.path.basename(args.results))[0], _fastpath_json(args.fastpath_json))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        p = argparse.ArgumentParser(prog="python -m bench compare",
                                    description="differences between two results files")
        p.add_argument("a")
        p.add_argument("b")
        return cmd_compare(p.parse_args(argv[1:]))
    if argv[:1] == ["plot"]:
        p = argparse.ArgumentParser(prog="python -m bench plot", description="plots of a results file")
        p.add_argument("results")
        p.add_argument("--fastpath-json")
        return cmd_plot(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", type=lambda v: _list(v, PEERS, "peer"), default=list(PEERS),
                   help=f"comma-separated, default all: {','.join(PEERS)}")
    p.add_argument("--tests", type=lambda v: _list(v, TESTS, "test"), default=list(TESTS),
                   help=f"comma-separated, default all: {','.join(TESTS)}")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default 3)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each load (default 5)")
    p.add_argument("--quick", action="store_true", help="1 repetition, 1 s per test")
    p.add_argument("--tcp-tool", choices=("auto", "iperf3", "python"), default="auto",
                   help="TCP load: iperf3 if installed (auto), or bench/tcpload.py")
    p.add_argument("-o", "--output", help=f"results JSON (default {DEFAULT_OUT}/bench-DATE.json)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--fastpath-json", help="pytest-benchmark JSON of bench/bench_fastpath.py "
                                           "(default: newest under .benchmarks/)")
    args = p.parse_args(argv)
    if args.reps < 1 or args.seconds <= 0 or args.seconds > 600:
        p.error("--reps must be >= 1 and --seconds in (0, 600]")
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
