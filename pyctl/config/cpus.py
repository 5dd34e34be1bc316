"""CPU lists of the daemon's placement settings (``[daemon] cpus``, ``tapswitch run
--cpus``): parsed from "0-1,3" text, and checked against the CPUs that exist here
and that this process may use (its affinity), so a placement that cannot be applied
is refused when the file is read, not when the daemon starts."""
from __future__ import annotations

import os

from pyctl import errors

POLL_US_MAX = 1000      # [daemon] poll_us: polling longer than 1 ms before sleeping saves nothing


def online_cpus() -> frozenset[int]:
    """The CPUs that exist and are online (/sys/devices/system/cpu/online)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            return frozenset(parse_cpu_list(f.read().strip()))
    except (OSError, errors.InvalidArgument):
        return frozenset(range(os.cpu_count() or 1))


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """"0-1,3" -> (0, 1, 3)."""
    cpus: set[int] = set()
    if not isinstance(text, str) or not text.strip():
        raise errors.InvalidArgument(f"expected a CPU list such as 0-1,3, not {text!r}")
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise errors.InvalidArgument(f"not a CPU list: {text!r} (use e.g. 1 or 0-1,3)") from None
        if first < 0 or last < first:
            raise errors.InvalidArgument(f"not a CPU list: {text!r} (use e.g. 1 or 0-1,3)")
        cpus.update(range(first, last + 1))
    return tuple(sorted(cpus))


def cpu_list_text(cpus) -> str:
    """(0, 1, 3) -> "0-1,3"."""
    out, run = [], []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [cpu]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def check_cpus(values) -> tuple[int, ...]:
    """A non-empty list of distinct CPU numbers, each online and allowed to this
    process; returned sorted.  InvalidArgument says which CPU and why."""
    if isinstance(values, str):
        values = parse_cpu_list(values)
    if not isinstance(values, (list, tuple)) or not values:
        raise errors.InvalidArgument("expected a non-empty list of CPU numbers, e.g. [1]")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise errors.InvalidArgument(f"CPU numbers are integers, not {values!r}")
    if len(set(values)) != len(values):
        raise errors.InvalidArgument(f"a CPU is listed twice: {list(values)}")
    online = online_cpus()
    allowed = os.sched_getaffinity(0)
    for cpu in values:
        if cpu not in online:
            raise errors.InvalidArgument(f"CPU {cpu} does not exist here "
                                         f"(online: {cpu_list_text(online)})")
        if cpu not in allowed:
            raise errors.InvalidArgument(f"CPU {cpu} is not allowed for this process "
                                         f"(allowed: {cpu_list_text(allowed)})")
    return tuple(sorted(values))


def check_poll_us(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= POLL_US_MAX:
        raise errors.InvalidArgument(f"poll_us is 0 (off) .. {POLL_US_MAX} microseconds, "
                                     f"not {value!r}")
    return value
