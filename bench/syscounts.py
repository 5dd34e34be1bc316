"""The system calls a switch's processes make while a load runs, counted by the kernel
(``perf stat`` on the syscall tracepoints: software events, they work where hardware
counters do not), so every switch peer -- the minimal forwarder, Open vSwitch,
tapswitch of any tree -- is counted the same way, whatever its own counters say.

    counter = Counter(pids, seconds)     # starts perf stat on those processes' threads
    ...                                  # the load
    counts = counter.finish()            # {"syscalls": N, "reads": N, "writes": N, "waits": N}
"""
from __future__ import annotations

import subprocess

# what is reported -> the tracepoints counted for it ("syscalls": every system call)
GROUPS = {"syscalls": ("raw_syscalls:sys_enter",),
          "reads": ("syscalls:sys_enter_read", "syscalls:sys_enter_recvmsg"),
          "writes": ("syscalls:sys_enter_write", "syscalls:sys_enter_writev",
                     "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_io_uring_enter"),
          "waits": ("syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait",
                    "syscalls:sys_enter_poll", "syscalls:sys_enter_ppoll")}
EVENTS = tuple(event for events in GROUPS.values() for event in events)
TIMEOUT_SLACK = 30.0


def parse(text: str) -> dict:
    """``perf stat -x,`` output -> {group: count} (GROUPS: each the sum of its events;
    a group none of whose events was counted is left out)."""
    counted = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or fields[2] not in EVENTS:
            continue
        if fields[0] == "<not counted>":     # the threads never ran while it counted
            counted[fields[2]] = 0
        elif fields[0].isdigit():            # else "<not supported>": left out
            counted[fields[2]] = int(fields[0])
    return {group: sum(counted[e] for e in events if e in counted)
            for group, events in GROUPS.items() if any(e in counted for e in events)}


class Counter:
    """``perf stat`` on ``pids`` (every thread they have when it starts) for ``seconds``."""

    def __init__(self, pids, seconds: float):
        self.seconds = seconds
        self.proc = None
        if pids:
            self.proc = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", ",".join(EVENTS),
                 "-p", ",".join(str(p) for p in pids), "--", "sleep", str(seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finish(self) -> dict:
        """The counts ({} without processes to count); perf stat's failure is an error."""
        if self.proc is None:
            return {}
        try:
            _, err = self.proc.communicate(timeout=self.seconds + TIMEOUT_SLACK)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError("perf stat did not finish") from None
        counts = parse(err)
        if self.proc.returncode != 0 or "syscalls" not in counts:
            raise RuntimeError(f"perf stat failed (exit {self.proc.returncode}): "
                               f"{err.strip()[-300:]}")
        return counts
