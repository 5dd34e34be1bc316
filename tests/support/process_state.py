"""What a leaking topology would leave in a process: its open descriptors (and what each
leads to), its threads and its tasks.  tests/e2e/test_leaks.py reads it in its own
process, and copies this file next to the generated run it starts, whose conftest
imports it from there."""
import os
import threading


def fd_targets():
    """Each open descriptor of this process and what it leads to ("3": "socket:[123]")."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:                 # the listing's own descriptor, closed by now
            pass
    return out


def process_state():
    """What a leaking topology would leave in this process."""
    return {"fds": fd_targets(),
            "threads": sorted(t.name for t in threading.enumerate()),
            "tasks": len(os.listdir("/proc/self/task"))}
