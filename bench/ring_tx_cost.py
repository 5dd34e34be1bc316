"""``python -m bench.ring_tx_cost``: what the kernel charges per 64-byte frame sent on a
veth through an AF_PACKET socket, by how many frames each system call hands it (issue 17:
where a ring port's time goes).

bench/csrc/ringtx.c sends FRAMES frames on one end of a veth pair in a namespace of its
own, BURST at a time, either through a TPACKET_V2 transmit ring kicked by one ``send()``
per burst (the switch's way, fastpath/afpacket.pxi) or by ``sendmmsg()`` on a ring-less
socket; both with virtio-net headers and PACKET_QDISC_BYPASS, as the switch's.  Its CPU
time includes the veth's other end receiving each frame (in the sender's softirq, as b's
receive runs inside the switch's kick).  The table gives ns per frame (median of the
repetitions, interleaved) and each cell over the ring's at the largest burst; every frame
is checked to have reached the other end.

    python -m bench.ring_tx_cost [--bursts 1,2,4,8,32] [--modes ring,mmsg] [--frames 1000000]

Needs root (a network namespace, a veth pair, AF_PACKET).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from pyctl import kernel

from bench import cbuild

MODES = ("ring", "mmsg")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v < 1 or v > 256 for v in values):
        raise argparse.ArgumentTypeError(f"bursts are 1..256: {text!r}")
    return values


def _modes(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in MODES for v in values):
        raise argparse.ArgumentTypeError(f"modes are {', '.join(MODES)}: {text!r}")
    return values


def measure(ns, mode: str, burst: int, frames: int, cpu: int | None) -> dict:
    """One run of ringtx in ``ns`` (sending on ``tx0``); its JSON with ``ns_per_frame`` and
    ``delivered`` (what ``tx1`` received meanwhile)."""
    before = ns.link_stats("tx1")
    argv = [cbuild.tool("ringtx"), "tx0", mode, str(burst), str(frames)]
    proc = ns.run(argv + ([str(cpu)] if cpu is not None else []),
                  timeout=60 + frames * 20e-6)           # 20 µs a frame: far above any cost
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["delivered"] = (ns.link_stats("tx1") - before).rx_packets
    out["ns_per_frame"] = out["cpu_s"] * 1e9 / out["frames"]
    return out


def run(bursts: list[int], modes: list[str], frames: int, reps: int,
        cpu: int | None) -> list[dict]:
    samples = []
    with kernel.NetNamespace(prefix="tsrtx") as ns:
        with ns.ipr() as ipr:
            ipr.link("add", ifname="tx0", kind="veth", peer={"ifname": "tx1"})
        ns.link_up("tx0")
        ns.link_up("tx1")
        for rep in range(reps):
            for burst in bursts:
                for mode in modes:
                    sample = measure(ns, mode, burst, frames, cpu)
                    if sample["delivered"] < sample["frames"]:
                        raise RuntimeError(f"{mode} burst {burst}: {sample['delivered']} of "
                                           f"{sample['frames']} frames reached the other end")
                    samples.append({"rep": rep + 1, **sample})
    return samples


def table(samples: list[dict], bursts: list[int], modes: list[str]) -> str:
    def median(mode, burst):
        return statistics.median(s["ns_per_frame"] for s in samples
                                 if s["mode"] == mode and s["burst"] == burst)
    base_mode = "ring" if "ring" in modes else modes[0]
    base = median(base_mode, max(bursts))
    lines = [f"{'burst':>5}  " + "  ".join(f"{m + ' ns/frame':>14} {'x':>5}" for m in modes)]
    for burst in bursts:
        cells = [f"{median(m, burst):14.0f} {median(m, burst) / base:5.2f}" for m in modes]
        lines.append(f"{burst:>5}  " + "  ".join(cells))
    lines.append(f"(x: over {base_mode} at burst {max(bursts)}; medians of "
                 f"{max(s['rep'] for s in samples)} interleaved run(s))")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ring_tx_cost",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--bursts", type=_ints, default=[1, 2, 4, 8, 32],
                   help="frames per system call (default 1,2,4,8,32)")
    p.add_argument("--modes", type=_modes, default=list(MODES),
                   help="ring (TPACKET_V2 transmit ring + send()), mmsg (sendmmsg); default both")
    p.add_argument("--frames", type=int, default=1_000_000, help="frames per run")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cpu", type=int, help="pin the sender to this CPU")
    p.add_argument("--json", help="write every sample here")
    args = p.parse_args(argv)
    if args.frames < max(args.bursts) or args.reps < 1:
        p.error("--frames must be at least the largest burst and --reps at least 1")
    if args.cpu is not None and args.cpu not in os.sched_getaffinity(0):
        p.error(f"--cpu {args.cpu} is not one this process may run on "
                f"({sorted(os.sched_getaffinity(0))})")
    if os.geteuid() != 0:
        print("bench.ring_tx_cost: needs root (a network namespace, a veth pair)", file=sys.stderr)
        return 2
    samples = run(args.bursts, args.modes, args.frames, args.reps, args.cpu)
    print(table(samples, args.bursts, args.modes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "samples": samples}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
