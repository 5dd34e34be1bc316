"""What one control operation costs as the number of namespaces grows (issue 14 item 13).

A running daemon (``pyctl.daemon.daemon.Daemon``: both threads, the control socket; no
TAPs, so no root needed) holds N L3 tenants under ``init``, each with an address (the
timed tenant's subnet holds 10 tenants at every N; the others fill /24s, 250 each).
Over the admin socket, one client times whole round trips of:

- ``push-pull``: an address pulled back from a tenant and pushed again (two changes;
  the figure is per change), what a tenant's operator loops on;
- ``counters``: one tenant's counters, asked on that tenant's own (L3) socket;
- ``create-destroy``: an L3 created then destroyed (two changes; per change);
- ``join-leave``: a tenant joins a group and leaves it (two changes; per change).

    python -m bench.control_ops                         # N = 10, 1,000, 10,000
    python -m bench.control_ops --sizes 10,2000 --seconds 2 --json ops.json

The daemons of every N run at once and the operations are timed in rounds that go
through every N in turn, so that a busy neighbour on a shared machine slows every N
alike.  Figures are medians in ms and changes per second; the last columns are the
ratio of each median to its value at the smallest N (target, issue 14: at most 1.5
at 10,000).
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import statistics
import sys
import tempfile
import threading
import time

from bench import cli_args
from pyctl import Switch
from pyctl.config import DaemonSettings
from pyctl.control.client import ControlClient
from pyctl.daemon.daemon import Daemon

BASE = int(ipaddress.ip_address("10.1.0.0"))
PROBE_SUBNET = 10
OPERATIONS = ("push-pull", "counters", "create-destroy", "join-leave")
TARGET = 1.5


def _address(i, n):
    """Tenant i of n: the last PROBE_SUBNET tenants (the timed ones among them) share
    10.0.0.0/24 at every N, so what a timed change touches (its subnet's directed-broadcast
    listeners) is the same size at every N; the others fill /24s of 10.1.0.0/16, 250 each."""
    if i >= n - PROBE_SUBNET:
        return f"10.0.0.{2 + i - max(0, n - PROBE_SUBNET)}/24"
    return f"{ipaddress.ip_address(BASE + (i // 250) * 256 + i % 250 + 2)}/24"


@contextlib.contextmanager
def running_daemon(n):
    """A daemon with N tenants t0..t{N-1}, its admin socket path and the socket path of
    t{N-2}, a tenant of the timed subnet (the same 10 neighbours at every N: what its
    counters read is its own and its subnet's)."""
    sw = Switch()
    sw.address_add("init", "10.0.0.1/8")   # the gateway; tenants sit in /24s of its /8
    for i in range(n):
        sw.create(f"t{i}", "l3", "init")
        sw.assign_and_push(_address(i, n), f"t{i}")
    with tempfile.TemporaryDirectory(prefix="tapswitch-ops-") as rundir:
        settings = DaemonSettings(socket=os.path.join(rundir, "control.sock"))
        daemon = Daemon(sw, settings, max_namespaces=max(4096, 2 * n + 64),
                        out=open(os.devnull, "w"))
        try:
            daemon.start()
            tenant_socket = daemon.control.bind_namespace(f"t{n - 2}")
            thread = threading.Thread(target=daemon.run, name="bench-control-ops", daemon=True)
            thread.start()
            daemon._thread = thread.ident
            try:
                yield settings.socket, tenant_socket
            finally:
                daemon.stop()
                thread.join(30)
        finally:
            daemon.close(report=False)
            daemon.out.close()


def _steps(admin, tenant, n):
    """The timed operations on a daemon of N tenants: name -> (step, changes per step)."""
    last, address = f"t{n - 1}", _address(n - 1, n)

    def push_pull():
        admin.call("pull", address=address, namespace=last)
        admin.call("push", address=address, namespace=last)

    def counters():
        tenant.call("counters")

    def create_destroy():
        admin.call("create", name="bench-tmp", kind="l3", parent="init")
        admin.call("destroy", namespace="bench-tmp")

    def join_leave():
        admin.call("join", group="239.9.9.9", namespace=last)
        admin.call("leave", group="239.9.9.9", namespace=last)
    return {"push-pull": (push_pull, 2), "counters": (counters, 1),
            "create-destroy": (create_destroy, 2), "join-leave": (join_leave, 2)}


def measure(sizes, seconds, rounds=5):
    """Every size's daemon runs at once; each round times every operation on every size
    in turn (so a noisy neighbour slows all sizes alike); per size and operation the
    median ms per change over all rounds."""
    samples = {(n, op): [] for n in sizes for op in OPERATIONS}
    with contextlib.ExitStack() as stack:
        steps = {}
        for n in sizes:
            admin_path, tenant_path = stack.enter_context(running_daemon(n))
            admin = stack.enter_context(ControlClient(admin_path))
            tenant = stack.enter_context(ControlClient(tenant_path))
            steps[n] = _steps(admin, tenant, n)
        for _ in range(rounds):
            for op in OPERATIONS:
                for n in sizes:
                    step, changes = steps[n][op]
                    step()                                          # warm
                    started = time.perf_counter()
                    while time.perf_counter() - started < seconds / rounds:
                        t0 = time.perf_counter()
                        step()
                        samples[(n, op)].append((time.perf_counter() - t0) * 1e3 / changes)
    return [{"n": n, **{op: statistics.median(samples[(n, op)]) for op in OPERATIONS}}
            for n in sizes]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000", help="comma-separated N")
    parser.add_argument("--seconds", type=float, default=3.0, help="per operation and N")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    logging.getLogger("tapswitch").setLevel(logging.WARNING)
    sizes = cli_args.sizes(parser, args.sizes, 100_000)
    rows = measure(sizes, args.seconds)
    print(format_table(rows))
    cli_args.write_json(args.json, rows)
    worst = max((row[op] / rows[0][op] for row in rows for op in OPERATIONS), default=1.0)
    return 0 if worst <= TARGET else 1


def format_table(rows):
    """Median ms per operation (and per second), and each as a multiple of the smallest N."""
    head = f"{'N':>7} " + " ".join(f"{op:>16}" for op in OPERATIONS) + "   ratio to the first N"
    lines = ["control operations over the admin socket: median ms per change (changes/s)", head]
    for row in rows:
        cells = " ".join(f"{row[op]:8.3f} ({1e3 / row[op]:5.0f})" for op in OPERATIONS)
        ratios = " ".join(f"{row[op] / rows[0][op]:5.2f}" for op in OPERATIONS)
        lines.append(f"{row['n']:>7,} {cells}   {ratios}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
