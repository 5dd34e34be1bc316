"""Multicast fan-out cost of the fast path: `python -m bench.fanout [--quick] [--json FILE]`.

One scope, 1,000 groups (1k demux entries besides the tenants' addresses), each with 1, 8
or 64 member tenants; 8 non-member tenants send 64-byte UDP datagrams to random groups.
For each member count: frames in per second and copies out per second of
Datapath.process() (batches of 256, one core, best of 7 runs), the same through the Python
reference, and a least-squares fit of ns per frame = base + per_copy x copies, i.e. what one
more member costs.  process() only decides and fills the fan-out list (14-byte headers,
no payload copied); putting the copies on the wire is the packet loop's write per copy
(PLATFORM.md: ~1 us per write() to a TAP), which dwarfs this.
"""
import argparse
import json
import sys
import time

import numpy as np

from bench.fastpath_workloads import Stream, frame, mac
from fastpath import Datapath, verdicts as V
from fastpath.reference import ReferenceDatapath

SCOPE, UPLINK = 0, 0
N_GROUPS = 1000
N_SENDERS = 8
MAX_MEMBERS = 64
MEMBER_COUNTS = (1, 8, 64)
BATCH = 256
FIRST_GROUP = 0xEF010000          # 239.1.0.0


def sender(k):
    return 1 + k                                  # tenants 1..8 send, member of nothing


def member(k):
    return 1 + N_SENDERS + k                      # tenants 9..72 listen


def address(t):
    return 0x0A000000 + t                         # 10.0.0.t


def fanout_world(cls, members, n_groups=N_GROUPS, n_frames=4096, seed=6):
    """(datapath, frames): group g's members are `members` consecutive listeners from
    g mod 64 on; frames go from a random sender to a random group."""
    dp = cls(max_namespaces=256, max_ports=256)
    tenants = [sender(k) for k in range(N_SENDERS)] + [member(k) for k in range(MAX_MEMBERS)]
    with dp.update():
        dp.set_namespace(SCOPE, SCOPE, False)
        dp.set_port(UPLINK, SCOPE, mac(0xFFFF))
        for t in tenants:
            dp.set_namespace(t, SCOPE, True)
            dp.set_port(t, t, mac(t))
            dp.add_address(SCOPE, address(t), t)
        for g in range(n_groups):
            dp.set_group(SCOPE, FIRST_GROUP + g,
                         [member((g + k) % MAX_MEMBERS) for k in range(members)])
    rng = np.random.default_rng(seed)
    frames = []
    for s, g in zip(rng.integers(0, N_SENDERS, n_frames).tolist(), rng.integers(0, n_groups, n_frames).tolist()):
        group = FIRST_GROUP + g
        t = sender(s)
        frames.append((t, frame(b"\x01\x00\x5e" + (group & 0x7FFFFF).to_bytes(3, "big"),
                                mac(0x10000 + t), address(t), group)))
    return dp, frames


class FanoutStream(Stream):
    """Batches of BATCH frames with room for every copy; fan-out leaves frames unchanged,
    so ``restore()`` is never needed between runs."""

    def __init__(self, frames, members, size=BATCH):
        super().__init__(frames, size, n_frames=len(frames), max_fanout=size * members)
        self.members = members
        self.frames = self.frames_per_pass

    def check(self, dp):
        """Every frame fanned out to exactly `members` ports (a benchmark of drops would lie)."""
        self.run(dp)
        for b in self.batches:
            bad = [(int(b.verdict[i]), V.REASON_NAMES[b.reason[i]], int(b.fanout_n[i]))
                   for i in range(b.count)
                   if b.verdict[i] != V.VERDICT_FANOUT or b.fanout_n[i] != self.members]
            assert not bad, bad[:5]
            assert b.fanout_count == b.count * self.members


def measure(dp, stream, seconds=0.1, repeats=7):
    """Best frames/s of process() over the stream."""
    t = time.perf_counter()
    stream.run(dp)                                   # warm-up, also sizes the run
    once = max(time.perf_counter() - t, 1e-6)
    passes = max(1, int(seconds / once))
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        stream.run(dp, passes)
        best = max(best, stream.frames * passes / (time.perf_counter() - t))
    return best


def rows(member_counts=MEMBER_COUNTS, n_groups=N_GROUPS, ref_frames=BATCH):
    for m in member_counts:
        dp, frames = fanout_world(Datapath, m, n_groups)
        stream = FanoutStream(frames, m)
        stream.check(dp)
        core = measure(dp, stream)
        ref, frames = fanout_world(ReferenceDatapath, m, n_groups, n_frames=ref_frames)
        stream = FanoutStream(frames, m)
        stream.check(ref)
        reference = measure(ref, stream, seconds=0.3, repeats=3)
        yield {"members": m, "groups": n_groups, "core_fps": core, "core_copies_per_s": core * m,
               "ref_fps": reference, "ref_copies_per_s": reference * m}


def per_copy_fit(results, key):
    """(base ns per frame, ns per copy): least squares over the member counts."""
    m = np.array([r["members"] for r in results], dtype=float)
    ns = np.array([1e9 / r[key] for r in results])
    slope, base = np.polyfit(m, ns, 1)
    return base, slope


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 groups instead of 1,000")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    groups = 100 if args.quick else N_GROUPS
    print(f"{'members':>7} {'groups':>6} {'core Mfps':>10} {'core Mcopies/s':>15} {'ns/frame':>9}"
          f" {'ref kfps':>9} {'ref kcopies/s':>14} {'core/ref':>9}   (64-byte frames, batch {BATCH}, one core)")
    out = []
    for r in rows(n_groups=groups):
        out.append(r)
        print(f"{r['members']:>7} {r['groups']:>6} {r['core_fps'] / 1e6:>10.2f} {r['core_copies_per_s'] / 1e6:>15.1f}"
              f" {1e9 / r['core_fps']:>9.1f} {r['ref_fps'] / 1e3:>9.1f} {r['ref_copies_per_s'] / 1e3:>14.1f}"
              f" {r['core_fps'] / r['ref_fps']:>8.0f}x", flush=True)
    base, copy = per_copy_fit(out, "core_fps")
    rbase, rcopy = per_copy_fit(out, "ref_fps")
    print(f"fit, core: {base:.1f} ns per frame + {copy:.2f} ns per copy;"
          f" reference: {rbase / 1e3:.1f} us per frame + {rcopy / 1e3:.2f} us per copy")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": out, "core_ns_base": base, "core_ns_per_copy": copy,
                       "ref_ns_base": rbase, "ref_ns_per_copy": rcopy}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
