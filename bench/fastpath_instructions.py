"""Instructions per frame of Datapath.process(), counted by callgrind: `python -m bench.fastpath_instructions`.

Wall-clock figures on a shared 2-core machine move by 10-20 % from run to run; the
number of instructions the core executes per frame for a fixed workload does not.  This
runs a fixed set of workloads (the fast-path table's demux and FIB worlds, a multicast
fan-out world, a mix of drops and slow-path hand-offs, and the IPv6 demux and FIB
worlds and an IPv6 mix) under ``valgrind --tool=callgrind``, collecting only inside
``Datapath.process()``, and prints instructions (Ir) per frame for each.  Compare two
builds by running it in each tree: the figures are deterministic, so a difference of a
few instructions is real.

    python -m bench.fastpath_instructions [--workloads demux1k,fib10k,...] [--json FILE]

It needs valgrind.  ``--child WORKLOAD`` is the part that runs under callgrind.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

PASSES = 4          # passes over a workload's batches after the warm-up one
WORKLOADS = ("demux1k", "demux100k", "fib10k", "fanout8", "mixed", "demux6_1k", "fib6_10k",
             "mixed6")


def _mixed_frames(frames):
    """Every fourth frame forwarded as built; the others made into drops and slow-path
    hand-offs (bad checksum, spoofed source, TTL 1, to the switch's own MAC broadcast)."""
    from fastpath.reference import ipv4_checksum
    out = []
    for k, (port, f) in enumerate(frames):
        f = bytearray(f)
        kind = k % 4
        if kind == 1:
            f[24] ^= 0xFF                                   # header checksum wrong
        elif kind == 2:
            f[26:30] = (0x0A7F0000 + k % 200).to_bytes(4, "big")   # a source it does not own
        elif kind == 3:
            f[22] = 1                                       # TTL 1: slow path
            f[24:26] = b"\0\0"
            f[24:26] = ipv4_checksum(bytes(f[14:34])).to_bytes(2, "big")
        out.append((port, bytes(f)))
    return out


def _mixed6_frames(frames):
    """IPv6's mix, each frame still 64 bytes: every fourth forwarded as built; the others a
    source nobody owns, a hop-by-hop options header walked on the way (in place of the UDP
    header: next header 59, none, and a PadN option), and a routing header that claims more
    bytes than the packet has (a bad_extension_header drop)."""
    out = []
    for k, (port, f) in enumerate(frames):
        f = bytearray(f)
        kind = k % 4
        if kind == 1:
            f[22:38] = (0xFD00_0000_0000_0007 << 64 | k % 200).to_bytes(16, "big")
        elif kind == 2:
            f[20], f[54:62] = 0, bytes([59, 0, 1, 4, 0, 0, 0, 0])
        elif kind == 3:
            f[20], f[54:62] = 43, bytes([59, 200, 0, 0, 0, 0, 0, 0])
        out.append((port, bytes(f)))
    return out


def _world(name):
    """(datapath, batches, restore, every frame forwarded?) of a workload."""
    from bench import fanout
    from bench.fastpath_workloads import IMPLEMENTATIONS, Stream, demux_world, fib_world
    from bench.fastpath_workloads6 import demux6_world, fib6_world
    core = IMPLEMENTATIONS["core"]
    if name == "fanout8":
        dp, frames = fanout.fanout_world(core, 8, n_frames=2048)
        return dp, fanout.FanoutStream(frames, 8).batches, lambda: None, False
    if name in ("demux1k", "mixed"):
        dp, frames = demux_world(core, 1_000)
    elif name == "demux100k":
        dp, frames = demux_world(core, 100_000)
    elif name == "fib10k":
        dp, frames = fib_world(core, 10_000)
    elif name in ("demux6_1k", "mixed6"):
        dp, frames = demux6_world(core, 1_000)
    elif name == "fib6_10k":
        dp, frames = fib6_world(core, 10_000)
    else:
        raise SystemExit(f"unknown workload {name!r}: one of {', '.join(WORKLOADS)}")
    if name == "mixed":
        frames = _mixed_frames(frames[:4096])
    elif name == "mixed6":
        frames = _mixed6_frames(frames[:4096])
    stream = Stream(frames, 256, n_frames=4096)
    return dp, stream.batches, stream.restore, name not in ("mixed", "mixed6")


def child(name):
    """Build the workload, then a warm-up pass (which checks that every frame of a
    forwarding workload is forwarded) and PASSES more: the measured part.  callgrind
    collects inside Datapath.process only, and every frame processed there is counted."""
    from fastpath import verdicts as V
    dp, batches, restore, forwarding = _world(name)
    frames = 0
    for n in range(1 + PASSES):
        restore()
        for b in batches:
            dp.process(b)
            frames += b.count
            if n == 0 and forwarding:
                assert all(b.verdict[:b.count] == V.VERDICT_FORWARD), "a benchmark of drops"
    print(f"FRAMES {frames}")


def measure(name):
    """Ir per frame of the workload, from one callgrind run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--collect-atstart=no", "--toggle-collect=__pyx_pw_*Datapath*process",
               sys.executable, "-m", "bench.fastpath_instructions", "--child", name]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        frames = int(re.search(r"FRAMES (\d+)", done.stdout).group(1))
        with open(out) as f:
            totals = re.search(r"^(?:totals|summary):\s+(\d+)", f.read(), re.MULTILINE)
    return int(totals.group(1)) / frames


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--json", help="also write {workload: Ir per frame} to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return
    result = {}
    for name in args.workloads.split(","):
        result[name] = measure(name)
        print(f"{name:<10} {result[name]:>8.1f} Ir/frame", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
