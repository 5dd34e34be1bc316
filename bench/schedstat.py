"""How the scheduler treated each role of a measurement: time on a CPU and time
waiting in a run queue, from /proc/PID/task/TID/schedstat (fields 1 and 2, in ns;
summed over every thread of the role's processes).

``Watch`` samples the roles from a thread while a load runs and reports, over the
window from its first sample after the warm-up to its last one with every role still
alive, each role's *on-CPU share* and *run-queue share* (nanoseconds per wall
nanosecond: 1.0 = one CPU all the time) and its *sleeps* per second (voluntary context
switches from /proc/PID/task/TID/status: each a wait that blocked, so each a wake-up
someone paid for). A sender on a CPU 0.57 of the time and
waiting 0.24 of it is a sender the scheduler holds back; one on a CPU 0.95 of the
time is the limit itself.
"""

from __future__ import annotations

import os
import threading
import time


def read(pids) -> dict[int, tuple[int, int, int]] | None:
    """{tid: (ns on a CPU, ns waiting to run, sleeps)} of every thread of ``pids``
    (sleeps: voluntary context switches, each a wait that blocked); None when one of
    the processes is gone (its totals can no longer be read whole)."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            return None
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    fields = f.read().split()
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    sleeps = next(int(line.split()[1]) for line in f
                                  if line.startswith("voluntary_ctxt_switches:"))
                out[int(tid)] = (int(fields[0]), int(fields[1]), sleeps)
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError, StopIteration):
                continue          # a thread that just ended
    return out


def shares(first: dict, last: dict, seconds: float) -> dict:
    """{role: {tid: (run_ns, wait_ns, sleeps)}} at two moments -> {role: {"on_cpu",
    "runq", "sleeps_per_s"}}.  Thread by thread: one that started meanwhile counts from
    zero, one that ended meanwhile is left out (its time is no longer readable), so no
    figure comes out negative."""
    if seconds <= 0:
        return {}
    out = {}
    for role, threads in last.items():
        if role not in first:
            continue
        total = [0, 0, 0]
        for tid, now in threads.items():
            then = first[role].get(tid, (0, 0, 0))
            for k in range(3):
                total[k] += now[k] - then[k]
        out[role] = {"on_cpu": total[0] / 1e9 / seconds, "runq": total[1] / 1e9 / seconds,
                     "sleeps_per_s": total[2] / seconds}
    return out


class Watch:
    """Sample ``roles`` ({role: [pid, ...]}; an empty list is skipped) every
    ``interval`` s in a thread until ``stop()``; see the module docstring."""

    def __init__(self, roles: dict, warmup: float = 0.5, interval: float = 0.1):
        self.roles = {r: list(p) for r, p in roles.items() if p}
        self.warmup, self.interval = warmup, interval
        self._first = self._last = None         # (monotonic, {role: {tid: (run, wait, sleeps)}})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="schedstat-watch", daemon=True)

    def start(self) -> "Watch":
        self._thread.start()
        return self

    def _take(self):
        now = time.monotonic()
        got = {}
        for role, pids in self.roles.items():
            value = read(pids)
            if value is None:
                return None
            got[role] = value
        return now, got

    def _sample(self):
        started = time.monotonic()
        while not self._stop.is_set():
            sample = self._take()
            if sample is None:
                return                      # a role's process ended: the window closes
            if self._first is None:
                if sample[0] - started >= self.warmup:
                    self._first = sample
            else:
                self._last = sample
            self._stop.wait(self.interval)

    def stop(self) -> dict:
        """{role: {"on_cpu", "runq"}, "window_s": seconds} (empty when the load was
        shorter than the warm-up plus two samples)."""
        self._stop.set()
        self._thread.join()
        if self._first is None or self._last is None:
            return {}
        seconds = self._last[0] - self._first[0]
        out = shares(self._first[1], self._last[1], seconds)
        out["window_s"] = seconds
        return out
