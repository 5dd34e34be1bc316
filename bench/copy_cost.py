"""``python -m bench.copy_cost``: what a sender's copy costs per byte, by the working set
it writes into -- the test of issue 18's cold-page hypothesis (a TCP sender's copies
cost more per byte through a TAP than through veth because the pages it writes are
cold).  bench/csrc/copycost.c copies 64 KB chunks from a hot buffer into a ring of the
given size on one CPU, optionally with a thread on another CPU reading each chunk after
it is written (as the switch's read() does); the table gives ns per KB (median of the
per-chunk medians over the repetitions, interleaved) and each cell over the smallest
working set's.

    python -m bench.copy_cost [--sizes 256K,1M,4M,16M] [--reps 3] [--seconds 1]

No root needed; a loaded machine shows in the spread, not in the per-chunk medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from bench import cbuild

UNITS = {"K": 1 << 10, "M": 1 << 20}


def size(text: str) -> int:
    text = text.strip().upper()
    try:
        return int(text[:-1]) * UNITS[text[-1]] if text[-1:] in UNITS else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 256K, 4M)") from None


def measure(working_set: int, seconds: float, writer: int, reader: int | None) -> dict:
    proc = subprocess.run([cbuild.tool("copycost"), str(working_set), str(seconds), str(writer),
                           str(-1 if reader is None else reader)],
                          capture_output=True, text=True, timeout=seconds + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"copycost failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


def table(results: dict, sizes: list[int]) -> str:
    """results[(size, reader)] = [ns per KB, ...] -> the rows."""
    base = statistics.median(results[(sizes[0], False)])
    lines = [f"{'working set':>12}  {'alone ns/KB':>11}  {'x smallest':>10}  "
             f"{'read by another CPU ns/KB':>25}  {'x smallest':>10}"]
    for s in sizes:
        alone, read = (statistics.median(results[(s, r)]) for r in (False, True))
        lines.append(f"{s // 1024:>10}KB  {alone:>11.1f}  {alone / base:>10.2f}  "
                     f"{read:>25.1f}  {read / base:>10.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.copy_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256K,1M,4M,16M",
                   type=lambda v: [size(x) for x in v.split(",") if x.strip()])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        p.error("needs two CPUs (writer and reader)")
    if args.reps < 1 or args.seconds <= 0 or any(s < 65536 for s in args.sizes):
        p.error("--reps >= 1, --seconds > 0, sizes >= 64K")
    results: dict = {}
    for rep in range(args.reps):                      # interleaved: drift hits every cell
        for s in args.sizes:
            for reader in (False, True):
                got = measure(s, args.seconds, cpus[0], cpus[1] if reader else None)
                results.setdefault((s, reader), []).append(got["ns_per_kb_median"])
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    print(table(results, args.sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
