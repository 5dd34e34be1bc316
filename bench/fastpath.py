"""Fast-path throughput table: `python -m bench.fastpath [--quick] [--tables T,..] [--json FILE]`.

Frames per second of Datapath.process() on one core, 64-byte frames, for batch sizes
1, 32 and 256, with 10 / 1k / 100k / 1M addresses in the demux and 10 / 10k / 1M routes
in the FIB, their IPv6 twins (demux6, fib6: bench/fastpath_workloads6.py), and the same
workloads through the Python reference (batch 256).  Each
figure is the best of 7 timed runs (the machine is shared: the best run is the one least
disturbed by other load); TTL restores between runs are not timed.
"""
import argparse
import sys
import time

from bench import cli_args
from bench.fastpath_workloads import IMPLEMENTATIONS, Stream, demux_world, fib_world
from bench.fastpath_workloads6 import demux6_world, fib6_world

DEMUX_SIZES = (10, 1_000, 100_000, 1_000_000)
FIB_SIZES = (10, 10_000, 1_000_000)
BATCH_SIZES = (1, 32, 256)


def measure(dp, stream, seconds=0.1, repeats=7):
    """Best frames/s of process() over the stream."""
    stream.restore()
    t = time.perf_counter()
    stream.run(dp, 1)                                     # warm-up, also sizes the run
    once = max(time.perf_counter() - t, 1e-6)
    passes = max(1, min(200, int(seconds / once)))
    rates = []
    for _ in range(repeats):
        stream.restore()
        t = time.perf_counter()
        stream.run(dp, passes)
        rates.append(stream.frames_per_pass * passes / (time.perf_counter() - t))
    stream.restore()
    return max(rates)


TABLES = ("demux", "fib", "demux6", "fib6")


def rows(quick=False, tables=TABLES):
    demux_sizes = DEMUX_SIZES[:3] if quick else DEMUX_SIZES
    fib_sizes = FIB_SIZES[:2] if quick else FIB_SIZES
    configs = [("demux", n, demux_world) for n in demux_sizes] + [("fib", n, fib_world) for n in fib_sizes]
    configs += [("demux6", n, demux6_world) for n in demux_sizes]
    configs += [("fib6", n, fib6_world) for n in fib_sizes]
    configs = [c for c in configs if c[0] in tables]
    for table, n, build in configs:
        result = {"table": table, "entries": n}
        t = time.perf_counter()
        dp, frames = build(IMPLEMENTATIONS["core"], n)
        result["load_s"] = round(time.perf_counter() - t, 2)
        for size in BATCH_SIZES:
            stream = Stream(frames, size)
            stream.check(dp)
            result[f"core_b{size}"] = measure(dp, stream)
        del dp
        ref, frames = build(IMPLEMENTATIONS["ref"], n)
        stream = Stream(frames, 256, n_frames=1024)
        stream.check(ref)
        result["ref_b256"] = measure(ref, stream, seconds=0.3, repeats=3)
        del ref
        yield result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-entry tables")
    parser.add_argument("--tables", type=lambda v: cli_args.names(v, TABLES, "table"), default=TABLES,
                        help=f"comma-separated, default all: {','.join(TABLES)}")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    print(f"{'table':<6} {'entries':>9} {'load s':>7} {'b=1':>8} {'b=32':>8} {'b=256':>8}"
          f" {'ref b=256':>10} {'core/ref':>9}   (Mpps, 64-byte frames, one core)")
    out = []
    for r in rows(args.quick, args.tables):
        out.append(r)
        print(f"{r['table']:<6} {r['entries']:>9,} {r['load_s']:>7} {r['core_b1'] / 1e6:>8.2f}"
              f" {r['core_b32'] / 1e6:>8.2f} {r['core_b256'] / 1e6:>8.2f} {r['ref_b256'] / 1e6:>10.4f}"
              f" {r['core_b256'] / r['ref_b256']:>8.0f}x", flush=True)
    by = {(r["table"], r["entries"]): r for r in out}
    for table in ("demux", "demux6"):
        small, large = (table, 1_000), (table, 1_000_000)
        if small in by and large in by:
            print(f"{small[0]} 1M vs 1k per frame (b=256): "
                  f"{by[small]['core_b256'] / by[large]['core_b256']:.2f}x slower")
    for v4, v6 in ((("demux", 1_000), ("demux6", 1_000)), (("fib", 10_000), ("fib6", 10_000))):
        if v4 in by and v6 in by:
            print(f"{v6[0]} vs {v4[0]} at {v4[1]:,} entries (b=256): "
                  f"{by[v4]['core_b256'] / by[v6]['core_b256']:.2f}x the time per frame")
    cli_args.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
