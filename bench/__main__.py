"""``python -m bench``: how does tapswitch compare, on this machine, with what
one would use instead? Builds two kernel namespaces per peer, connects them
through the peer, and measures TCP (1 and 4 streams), 64-byte UDP frames per
second (through the tenants' UDP stacks, udp64, and from a generator and to a sink
that cost almost nothing, udp64raw), UDP round-trip latency and the switch's CPU time
per frame.

    python -m bench                                  # all peers, 3 reps, 5 s per test
    python -m bench --quick                          # 1 rep, 1 s per test (smoke test)
    python -m bench --peers veth,tapswitch --tests tcp1,udp64   # the daemon's first figure
    python -m bench --peers tapswitch,tapswitch-veth --tests udp64raw  # the switch's own small-frame cost
    python -m bench compare OLD.json NEW.json        # differences between two runs
    python -m bench --fastpath                       # plus the in-memory fast-path sweep
    python -m bench --fastpath-json FP.json          # plus fast-path figures measured before
    python -m bench plot RESULTS.json                # table and PNGs again from a results file
    python -m bench --placement unpinned,pinned      # every peer under both placements, interleaved

Placement (bench/placement.py): one rule for every peer, kernel or process. The
sender and receiver of each load and every thread of the switch's processes are
pinned to the CPUs the placement gives their role: ``unpinned`` (the default: the
scheduler places everything), ``pinned`` (sender alone on the first CPU, switch
and receiver on the second), or ``sender=0:switch=1:receiver=1``. Several,
comma-separated, are measured in one run, each peer under each.

Needs root. Peers that cannot run here (Open vSwitch not installed, tapswitch
not built) are skipped with the reason. Results: a JSON file with every raw
sample and the machine facts, PNG plots next to it, and a table on stdout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench import cli_args, placement, report
from bench.peers import PEERS
from bench.runner import TESTS, Plan, run_bench

DEFAULT_OUT = "bench/results"
FASTPATH_TIMEOUT = 600


def _run_fastpath_sweep(out_json: str, quick: bool) -> None:
    """``python -m bench.fastpath [--quick] --json OUT``: the in-memory fast-path
    sweep, after the end-to-end runs so neither disturbs the other."""
    argv = [sys.executable, "-m", "bench.fastpath", "--json", out_json] + (["--quick"] if quick else [])
    print(f"\nfast-path sweep: {' '.join(argv[1:])}", flush=True)
    proc = subprocess.run(argv, timeout=FASTPATH_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"python -m bench.fastpath failed (exit {proc.returncode})")


def _plots(doc: dict, out_dir: str, stem: str) -> None:
    from bench import plots
    written = plots.plot_run(doc, out_dir, stem) if doc.get("samples") else []
    if doc.get("fastpath"):
        written.append(plots.plot_fastpath(doc["fastpath"], os.path.join(out_dir, f"{stem}-fastpath.png"),
                                           plots.machine_line(doc.get("machine", {})),
                                           quick=plots.is_quick(doc)))
    for path in written:
        print(f"plot: {path}")


def cmd_run(args) -> int:
    if os.geteuid() != 0:
        print("python -m bench needs root (it creates kernel network namespaces)", file=sys.stderr)
        return 2
    fastpath = None
    if args.fastpath_json:          # read it first: a wrong file is refused before the long run
        from bench import plots
        fastpath = plots.fastpath_points(args.fastpath_json)
    plan = Plan(peers=args.peers, tests=args.tests, reps=1 if args.quick else args.reps,
                seconds=1.0 if args.quick else args.seconds, tcp_tool=args.tcp_tool,
                rtt_count=200 if args.quick else 1000, quick=args.quick,
                placements=args.placement)
    from pyctl import kernel
    kernel.registry.install_signal_handlers()
    print(f"bench: peers {', '.join(plan.peers)}; tests {', '.join(plan.tests)}; "
          f"{plan.reps} rep(s) of {plan.seconds:g} s; placement {', '.join(plan.placements)}")
    run = run_bench(plan, log=print)
    stem = time.strftime("bench-%Y%m%d-%H%M%S")
    path = args.output or os.path.join(DEFAULT_OUT, f"{stem}.json")
    out_dir, stem = os.path.dirname(path) or ".", os.path.splitext(os.path.basename(path))[0]
    if args.fastpath and not run.interrupted:
        from bench import plots
        os.makedirs(out_dir, exist_ok=True)
        sweep = os.path.join(out_dir, f"{stem}-fastpath.json")
        _run_fastpath_sweep(sweep, args.quick)
        fastpath = plots.fastpath_points(sweep)
    doc = report.results_document(run, report.machine_facts(), sys.argv, fastpath=fastpath)
    report.save(doc, path)
    print()
    print(report.table(doc))
    print(f"\nresults: {path}")
    if not args.no_plots:
        _plots(doc, out_dir, stem)
    return 130 if run.interrupted else 0


def cmd_compare(args) -> int:
    a, b = report.load(args.a), report.load(args.b)
    print(report.compare(a, b, "A", "B"))
    return 0


def cmd_plot(args) -> int:
    from bench import plots
    if args.results:
        doc, source = report.load(args.results), args.results
        print(report.table(doc))
    elif args.fastpath_json:
        doc, source = {"machine": report.machine_facts()}, args.fastpath_json
    else:
        print("python -m bench plot: give a results file, --fastpath-json FILE, or both",
              file=sys.stderr)
        return 2
    if args.fastpath_json:
        doc["fastpath"] = plots.fastpath_points(args.fastpath_json)
    _plots(doc, os.path.dirname(source) or ".", os.path.splitext(os.path.basename(source))[0])
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
        p = argparse.ArgumentParser(prog="python -m bench plot",
                                    description="the PNGs of a results file and/or fast-path JSON")
        p.add_argument("results", nargs="?")
        p.add_argument("--fastpath-json", help="pytest-benchmark JSON of bench/bench_fastpath.py or "
                                               "python -m bench.fastpath --json rows")
        return cmd_plot(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", type=lambda v: cli_args.names(v, PEERS, "peer"), default=list(PEERS),
                   help=f"comma-separated, default all: {','.join(PEERS)}")
    p.add_argument("--tests", type=lambda v: cli_args.names(v, TESTS, "test"), default=list(TESTS),
                   help=f"comma-separated, default all: {','.join(TESTS)}")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default 3)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each load (default 5)")
    p.add_argument("--quick", action="store_true", help="1 repetition, 1 s per test")
    p.add_argument("--tcp-tool", choices=("auto", "iperf3", "python"), default="auto",
                   help="TCP load: iperf3 if installed (auto), or bench/tcpload.py")
    placement.add_argument(p)
    p.add_argument("-o", "--output", help=f"results JSON (default {DEFAULT_OUT}/bench-DATE.json)")
    p.add_argument("--no-plots", action="store_true")
    fp = p.add_mutually_exclusive_group()
    fp.add_argument("--fastpath-json", metavar="FILE",
                    help="include fast-path scaling figures from this file: pytest-benchmark JSON "
                         "of bench/bench_fastpath.py or 'python -m bench.fastpath --json' rows")
    fp.add_argument("--fastpath", action="store_true",
                    help="also run the fast-path sweep (python -m bench.fastpath; --quick: its "
                         "quick sweep) after the end-to-end tests and include it")
    args = p.parse_args(argv)
    if args.reps < 1 or args.seconds <= 0 or args.seconds > 600:
        p.error("--reps must be >= 1 and --seconds in (0, 600]")
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
