"""What one snooped IGMP membership record costs as a namespace's groups grow (issue 14
item 10: a join or leave must cost O(1) or O(log n), not the namespace's whole group set).

In memory, no root: a Switch, a compiled ``fastpath.Datapath``, the Compiler and the
daemon's multicast glue (``pyctl.daemon.multicast.Multicast``), wired as the daemon
wires them (each IGMP message one ``Compiler.change()``: a model transaction and a sync
into the datapath).  For each N, a tenant ``x`` has first learned N groups from its own reports;
then IGMPv3 reports of one record each are timed through ``Multicast.handle`` (parse,
snooping table, model, compile, datapath write):

- ``join-leave``: a report joining a new group, then one leaving it (TO_IN{}); the
  figure is per record;
- ``refresh``: a report of a group x already has (its timer restarts, nothing compiles).

The sizes are measured in rounds that go through every N in turn, so a busy neighbour on
a shared machine slows each N alike; figures are medians in microseconds, and the ratio
of each to its value at the smallest N (flat: the cost does not grow with the groups).

    python -m bench.igmp_cost                       # N = 10, 250 (the default limit is 256)
    python -m bench.igmp_cost --sizes 10,250,4000 --seconds 3 --json igmp.json
"""
from __future__ import annotations

import argparse
import ipaddress
import statistics
import time

import fastpath
from bench import cli_args
from bench.attack_frames import CHANGE_TO_INCLUDE, igmp_frames
from pyctl import Switch
from pyctl.compile.compiler import Compiler
from pyctl.daemon import igmp
from pyctl.daemon.multicast import Multicast
from pyctl.daemon.view import PlanView

MAC = b"\x02\xee\x00\x00\x00\x04"
SOURCE = "10.0.0.4"
FILL_RECORDS = 50                 # records per report while filling
FIRST_GROUP = "239.1.0.0"         # x's groups count up from here
PROBE_GROUP = "239.200.0.1"       # the group joined and left by the timed reports
OPERATIONS = ("join-leave", "refresh")


class Rig:
    """A model, compiler, datapath and multicast glue; tenant x has learned ``n`` groups."""

    def __init__(self, n: int):
        self.sw = Switch()
        self.sw.address_add("init", "10.0.0.1/24")
        self.sw.create("x", kind="l3", parent="init")
        self.sw.assign_and_push(f"{SOURCE}/24", "x")
        self.sw.port_add("tap-x", "x")
        self.dp = fastpath.Datapath(max_namespaces=64, max_ports=64)
        self.compiler = Compiler(self.sw, self.dp)
        self.compiler.sync()
        config = igmp.IgmpConfig(max_groups_per_namespace=max(256, n + 16))
        self.mc = Multicast(self.sw, PlanView(self.compiler, self.dp), self.compiler.change,
                            config)
        self.mc.attach()
        self.port = self.sw.port("tap-x").id
        self.now = 0.0
        full, rest = divmod(n, FILL_RECORDS)
        frames = igmp_frames(MAC, SOURCE, full, FILL_RECORDS, FIRST_GROUP)
        if rest:
            after = ipaddress.ip_address(FIRST_GROUP) + full * FILL_RECORDS
            frames += igmp_frames(MAC, SOURCE, 1, rest, str(after))
        for frame in frames:
            self.send(frame)
        if len(self.sw.groups("x")) != n:
            raise RuntimeError(f"x learned {len(self.sw.groups('x'))} groups, not {n}")
        self.join = igmp_frames(MAC, SOURCE, 1, 1, PROBE_GROUP)[0]
        self.leave = igmp_frames(MAC, SOURCE, 1, 1, PROBE_GROUP, CHANGE_TO_INCLUDE)[0]
        self.refresh = igmp_frames(MAC, SOURCE, 1, 1, FIRST_GROUP)[0]   # x has it

    def send(self, frame: bytes) -> None:
        self.now += 0.001
        self.mc.handle(self.port, frame, self.now)

    def join_leave(self) -> float:
        """Seconds per record of a join and a leave of the probe group."""
        t0 = time.perf_counter()
        self.send(self.join)
        self.send(self.leave)
        return (time.perf_counter() - t0) / 2

    def refresh_one(self) -> float:
        t0 = time.perf_counter()
        self.send(self.refresh)
        return time.perf_counter() - t0

    def check(self, n: int) -> None:
        """The datapath holds x's n groups and not the probe group (a cheap sanity probe)."""
        x = self.sw.namespace("x").id
        keys = self.dp.group_keys(0)
        if len(keys) != n or any(self.dp.lookup_group(*key) != [x] for key in keys):
            raise RuntimeError(f"the datapath has {len(keys)} groups for x's {n}")


def measure(sizes: list[int], seconds: float) -> list[dict]:
    rigs = {n: Rig(n) for n in sizes}
    samples = {n: {op: [] for op in OPERATIONS} for n in sizes}
    deadline = time.monotonic() + seconds * len(sizes)
    rounds = 0
    while rounds < 20 or time.monotonic() < deadline:
        for n, rig in rigs.items():                   # interleaved: noise hits every N alike
            for _ in range(10):
                samples[n]["join-leave"].append(rig.join_leave())
                samples[n]["refresh"].append(rig.refresh_one())
        rounds += 1
    rows = []
    for n, rig in rigs.items():
        rig.check(n)
        rows.append({"groups": n, "records": len(samples[n]["join-leave"]) * 2,
                     **{f"{op}_us": statistics.median(samples[n][op]) * 1e6
                        for op in OPERATIONS}})
    for row in rows:
        for op in OPERATIONS:
            row[f"{op}_ratio"] = row[f"{op}_us"] / rows[0][f"{op}_us"]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.igmp_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,250",
                        help="comma-separated N: the groups x has learned before the timing")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per size (about)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    sizes = cli_args.sizes(parser, args.sizes, 60_000)
    rows = measure(sizes, args.seconds)
    print("median us per IGMPv3 record through Multicast.handle (parse, snoop, model, "
          "compile, datapath); ratio: to the smallest N")
    print(f"{'groups':>7} {'join/leave us':>14} {'ratio':>6} {'refresh us':>11} {'ratio':>6} "
          f"{'records':>8}")
    for r in rows:
        print(f"{r['groups']:>7,} {r['join-leave_us']:>14.1f} {r['join-leave_ratio']:>6.2f} "
              f"{r['refresh_us']:>11.1f} {r['refresh_ratio']:>6.2f} {r['records']:>8,}")
    cli_args.write_json(args.json, rows)


if __name__ == "__main__":
    main()
