"""Where the bench runs things: one CPU placement rule applied to every peer alike.

A measurement has three roles: the *sender* (the load's client: iperf3 -c, the
udpblast generator), the *receiver* (the server or sink) and the *switch* (every
process of the peer that forwards: the minimal forwarder, ovs-vswitchd with all its
threads and ovsdb-server, the tapswitch daemon with all its threads; a kernel peer,
veth or the Linux bridge, has none: its forwarding runs in softirq context on whatever
CPU sends, which no rule can move). A ``Placement`` names the CPUs of each role, or
None for "every CPU the bench may use" (unpinned).

How it is applied, the same way for every peer: the sender and the receiver are
started through ``taskset -c CPUS`` (which execs, so their pid is the program's and
every thread they make inherits the mask); the switch's processes are pinned before
each measurement by setting the affinity of every one of their threads
(``sched_setaffinity`` on each /proc/PID/task/TID), and read back. Unpinned sets the
switch back to every CPU, so one peer set up once can be measured under several
placements in one run.

Named placements (``parse``):
    unpinned   nothing pinned; the scheduler places everything
    pinned     the sender alone on the first CPU; switch and receiver on the second
               (on a machine with 3 or more CPUs: the receiver on the third). On 2 CPUs
               the placement measured best for one stream (issue 18)
    SPEC       e.g. ``sender=0:switch=1:receiver=1`` (CPU lists as 0, 0-1 or 0+2)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from dataclasses import dataclass

from pyctl import errors
from pyctl.config.cpus import cpu_list_text, parse_cpu_list

ROLES = ("sender", "receiver", "switch")
NAMED = ("unpinned", "pinned")


class PlacementError(ValueError):
    """A placement that cannot be applied here (unknown name, CPU not allowed)."""


def allowed_cpus() -> tuple[int, ...]:
    """The CPUs this process may use (what "unpinned" means)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def _cpu_list(text: str) -> tuple[int, ...]:
    """"0", "0-1", "0+2" -> CPU numbers ("+" joins, since "," separates placements)."""
    try:
        return parse_cpu_list(text.replace("+", ","))
    except errors.InvalidArgument:
        raise PlacementError(f"not a CPU list: {text!r} (use 0, 0-1 or 0+2)") from None


@dataclass(frozen=True)
class Placement:
    name: str
    sender: tuple[int, ...] | None = None
    receiver: tuple[int, ...] | None = None
    switch: tuple[int, ...] | None = None

    def cpus(self, role: str) -> tuple[int, ...] | None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
        return getattr(self, role)

    @property
    def pinned(self) -> bool:
        return any(self.cpus(r) is not None for r in ROLES)

    def describe(self) -> str:
        parts = [f"{r} cpu {cpu_list_text(self.cpus(r))}" if self.cpus(r) is not None
                 else f"{r} unpinned" for r in ROLES]
        return f"{self.name}: " + ", ".join(parts)

    def as_dict(self) -> dict:
        return {"name": self.name, **{r: list(self.cpus(r)) if self.cpus(r) is not None else None
                                      for r in ROLES}}

    def wrap(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` started on ``role``'s CPUs (through taskset), or as it is."""
        cpus = self.cpus(role)
        if cpus is None:
            return list(argv)
        return [_taskset(), "-c", cpu_list_text(cpus), *argv]

    def pin(self, role: str, pids) -> dict[int, tuple[int, ...]]:
        """Set the affinity of every thread of ``pids`` to ``role``'s CPUs (every allowed
        CPU when unpinned) and read it back: {tid: cpus}. A thread that ended meanwhile
        is skipped; one whose affinity does not read back as set raises PlacementError."""
        want = set(self.cpus(role) or allowed_cpus())
        got = {}
        for tid in threads_of(pids):
            try:
                os.sched_setaffinity(tid, want)
                now = os.sched_getaffinity(tid)
            except ProcessLookupError:
                continue
            if now != want:
                raise PlacementError(f"thread {tid}: affinity reads back as "
                                     f"{cpu_list_text(now)}, not {cpu_list_text(want)}")
            got[tid] = tuple(sorted(now))
        return got


def threads_of(pids) -> list[int]:
    """Every thread id of these processes (those still alive)."""
    tids = []
    for pid in pids:
        try:
            tids += sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except FileNotFoundError:
            pass
    return tids


def _taskset() -> str:
    path = shutil.which("taskset")
    if path is None:
        raise PlacementError("taskset not found (Debian package util-linux)")
    return path


def parse(text: str, cpus: tuple[int, ...] | None = None) -> Placement:
    """A placement by name or spec (see the module docstring), checked against the CPUs
    this process may use (``cpus``, default ``allowed_cpus()``)."""
    cpus = tuple(sorted(cpus)) if cpus is not None else allowed_cpus()
    text = text.strip()
    if text == "unpinned":
        return Placement("unpinned")
    if text == "pinned":
        first, second = cpus[0], cpus[1 % len(cpus)]
        third = cpus[2] if len(cpus) > 2 else second
        return Placement("pinned", sender=(first,), switch=(second,), receiver=(third,))
    if "=" not in text:
        raise PlacementError(f"unknown placement {text!r}; known: {', '.join(NAMED)}, "
                             f"or ROLE=CPUS[:ROLE=CPUS...] with roles {', '.join(ROLES)}")
    roles: dict[str, tuple[int, ...]] = {}
    for item in text.split(":"):
        role, _, value = item.partition("=")
        if role not in ROLES:
            raise PlacementError(f"unknown role {role!r} in {text!r}; known: {', '.join(ROLES)}")
        if role in roles:
            raise PlacementError(f"role {role!r} given twice in {text!r}")
        roles[role] = _cpu_list(value)
        bad = set(roles[role]) - set(cpus)
        if bad:
            raise PlacementError(f"{role}: CPU {cpu_list_text(bad)} is not one this process may "
                                 f"use ({cpu_list_text(cpus)})")
    return Placement(text, **roles)


def parse_list(text: str, cpus: tuple[int, ...] | None = None) -> list[Placement]:
    """Comma-separated placements (``unpinned,pinned``); each name at most once."""
    out = [parse(item, cpus) for item in text.split(",") if item.strip()]
    if not out:
        raise PlacementError("no placement given")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise PlacementError(f"a placement is given twice: {text!r}")
    return out


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--placement`` (its value: the names of the placements, checked) for the bench's
    command lines."""
    def names(value: str) -> list[str]:
        try:
            return [p.name for p in parse_list(value)]
        except PlacementError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parser.add_argument("--placement", default=["unpinned"], type=names,
                        help="comma-separated CPU placements applied to every peer "
                             "(bench/placement.py): unpinned (default), pinned, or "
                             "ROLE=CPUS[:ROLE=CPUS...] (roles sender, receiver, switch)")


def steer_rx(netns: str, ifname: str, cpus) -> None:
    """Receive Packet Steering on ``ifname`` in kernel namespace ``netns``: the frames that
    arrive on it (those a switch writes into a TAP, or a veth peer sends) are processed by
    the namespace's stack on ``cpus`` (None: where they arrive, the default) instead of in
    the writer's context -- for a TCP sender, its ACKs then free its pages on its own CPU.
    Through ``ip netns exec``, which mounts the namespace's /sys."""
    mask = format(sum(1 << c for c in cpus), "x") if cpus else "0"
    proc = subprocess.run(["ip", "netns", "exec", netns, "sh", "-c",
                           f"for q in /sys/class/net/{ifname}/queues/rx-*; do "
                           f"echo {mask} > $q/rps_cpus || exit 1; done"],
                          capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise PlacementError(f"RPS on {ifname} in {netns}: {proc.stderr.strip()[-200:]}")
