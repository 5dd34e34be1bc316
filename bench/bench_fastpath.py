"""pytest-benchmark of the fast path: `python -m pytest bench/bench_fastpath.py --benchmark-enable`.

One benchmark per (table, entries, batch size) for the core and (batch 256, fewer rounds)
the reference.  Each round processes every batch of a stream of 16,384 distinct 64-byte
frames once; extra_info["mpps"] gives frames per second.  The compact table for the
README comes from `python -m bench.fastpath`.
"""
import functools

import pytest

from bench.fastpath_workloads import IMPLEMENTATIONS, Stream, demux_world, fib_world

WORLDS = [("demux", n) for n in (10, 1_000, 100_000, 1_000_000)] + [("fib", n) for n in (10, 10_000, 1_000_000)]
BUILDERS = {"demux": demux_world, "fib": fib_world}


@functools.lru_cache(maxsize=1)
def world(impl, table, n):
    return BUILDERS[table](IMPLEMENTATIONS[impl], n)


def bench(benchmark, impl, table, n, size, n_frames=16384, rounds=20):
    dp, frames = world(impl, table, n)
    stream = Stream(frames, size, n_frames=n_frames)
    stream.check(dp)
    benchmark.pedantic(stream.run, args=(dp,), setup=stream.restore, rounds=rounds, iterations=1,
                       warmup_rounds=1)
    benchmark.extra_info["frames_per_round"] = stream.frames_per_pass
    benchmark.extra_info["mpps"] = stream.frames_per_pass / benchmark.stats.stats.median / 1e6


CORE = [(t, n, size) for t, n in WORLDS for size in (1, 32, 256)]   # one world built at a time


@pytest.mark.parametrize("table,n,size", CORE, ids=[f"{t}-{n}-b{s}" for t, n, s in CORE])
def test_core(benchmark, table, n, size):
    benchmark.group = f"{table}-{n}"
    bench(benchmark, "core", table, n, size)


@pytest.mark.parametrize("table,n", WORLDS, ids=[f"{t}-{n}" for t, n in WORLDS])
def test_reference(benchmark, table, n):
    benchmark.group = f"{table}-{n}"
    bench(benchmark, "ref", table, n, 256, n_frames=512, rounds=3)
