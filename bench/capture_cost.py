"""What the switch-side capture costs the fast path: `python -m bench.capture_cost [--quick]`.

Frames per second of Datapath.process() (core, 1,000 tenants, 64-byte frames, batch 256)
in five states, measured in interleaved rounds of one run (the machine is shared: the
ratios to "never" are the result, not the absolute rates):

- never:     no capture was ever started (the ring does not exist);
- stopped:   a capture was started and stopped (the ring freed: one branch per batch);
- idle:      a capture of one port no frame of the stream uses (the per-frame selection
             test runs, nothing is copied);
- all:       every port captured, the ring drained after each pass of 16,384 frames
             (every frame copied twice, received and sent, then made Python bytes: the
             daemon drains once per tick, so there a fast stream overflows instead);
- overflow:  every port captured, never drained: the ring is full and each copy is a
             counted loss (the bound on what a capture costs when its reader is slow).

With no capture running, process() pays one branch per batch (capture.pxi).
"""
import argparse
import sys
import time

from bench.fastpath_workloads import IMPLEMENTATIONS, Stream, demux_world
from fastpath import CAPTURE_RECEIVED, CAPTURE_SENT

STATES = ("never", "stopped", "idle", "all", "overflow")


def _pass_rate(dp, stream, passes, drain):
    stream.restore()
    t = time.perf_counter()
    for _ in range(passes):
        stream.run(dp, 1)
        if drain:
            dp.capture_take()
    return stream.frames_per_pass * passes / (time.perf_counter() - t)


def measure(quick=False):
    dps = {state: demux_world(IMPLEMENTATIONS["core"], 1_000)[0] for state in STATES[1:]}
    dps["never"], frames = demux_world(IMPLEMENTATIONS["core"], 1_000)
    stream = Stream(frames, 256)
    stream.check(dps["never"])
    dps["stopped"].capture_select({1: CAPTURE_RECEIVED})
    dps["stopped"].capture_select({})
    dps["idle"].capture_select({1023: CAPTURE_RECEIVED | CAPTURE_SENT})
    dps["all"].capture_select({p: CAPTURE_RECEIVED | CAPTURE_SENT for p in range(1024)})
    dps["overflow"].capture_select({p: CAPTURE_RECEIVED | CAPTURE_SENT for p in range(1024)},
                                   entries=1024)
    stream.run(dps["overflow"], 1)                       # full from the start
    best = {state: 0.0 for state in STATES}
    for _ in range(3 if quick else 7):
        for state in STATES:
            best[state] = max(best[state], _pass_rate(dps[state], stream, 2 if quick else 5,
                                                      drain=state == "all"))
    stats = dps["overflow"].capture_stats()
    assert stats["overflow"] > 0 and dps["idle"].capture_stats()["copied"] == 0
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    best = measure(args.quick)
    print(f"{'state':<9} {'Mpps':>7} {'vs never':>9}   (core, batch 256, 64-byte frames, best of rounds)")
    for state in STATES:
        print(f"{state:<9} {best[state] / 1e6:>7.2f} {best[state] / best['never']:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
