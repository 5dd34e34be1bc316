"""How long until a test rig is ready: the default two-tenant topology
(the ``tapswitch_topology`` fixture's: gateway 10.0.0.1/24, tenants a and b,
each a TAP in its own kernel namespace, configured and up), built and
started, then closed; median of N runs, for both modes.  Target: under 1 s
for the in-process mode (issue 8).

    python -m bench.topology_ready                    # 20 runs per mode
    python -m bench.topology_ready --runs 50 --modes thread
    python -m bench.topology_ready --profile thread   # where start() spends its time

"ready" is from ``Topology()`` to the return of ``start()``; "first ping" adds
one ICMP echo a -> b (ARP on both sides and the switch resolving b); "close"
is ``close()`` with its leak sweep.  Needs root.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

from bench import cli_args
from pyctl.rig import probes
from pyctl.rig.topology import MODES, Topology


def default_topology(mode):
    topo = Topology(mode)
    topo.address_add("init", "10.0.0.1/24")
    topo.tenant("a", "10.0.0.2/24")
    topo.tenant("b", "10.0.0.3/24")
    return topo.start()


def one_run(mode):
    t0 = time.perf_counter()
    topo = default_topology(mode)
    try:
        t1 = time.perf_counter()
        a, b = topo.tenants["a"], topo.tenants["b"]
        if not probes.ping(a, b.ip, count=1, timeout=2.0):
            raise RuntimeError(f"{mode}: no echo reply from b through the switch")
        t2 = time.perf_counter()
    finally:
        t3 = time.perf_counter()
        topo.close()
        t4 = time.perf_counter()
    return {"ready": t1 - t0, "first_ping": t2 - t0, "close": t4 - t3}


def measure(modes, runs):
    results = {}
    for mode in modes:
        one_run(mode)                    # warm-up: imports and one-time caches
        samples = [one_run(mode) for _ in range(runs)]
        results[mode] = {key: [s[key] for s in samples] for key in samples[0]}
    return results


def table(results):
    head = f"{'mode':<8} {'runs':>4}  {'ready median':>12} {'min':>7} {'max':>7}  " \
           f"{'+first ping':>11}  {'close':>7}"
    lines = [head, "-" * len(head)]
    for mode, r in results.items():
        ms = lambda v: f"{v * 1000:.0f} ms"
        lines.append(f"{mode:<8} {len(r['ready']):>4}  {ms(statistics.median(r['ready'])):>12} "
                     f"{ms(min(r['ready'])):>7} {ms(max(r['ready'])):>7}  "
                     f"{ms(statistics.median(r['first_ping'])):>11}  "
                     f"{ms(statistics.median(r['close'])):>7}")
    return "\n".join(lines)


def profile(mode, runs, top=25):
    one_run(mode)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        default_topology(mode).close()
    prof.disable()
    pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.topology_ready", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20, help="runs per mode (default 20)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: thread,process")
    p.add_argument("--json", metavar="FILE", help="also write every sample (seconds) here")
    p.add_argument("--profile", choices=MODES, help="profile start()+close() instead")
    ns = p.parse_args(argv)
    if os.geteuid() != 0:
        p.error("needs root (TAP devices and kernel network namespaces)")
    if ns.runs < 1:
        p.error("--runs must be at least 1")
    if ns.profile:
        profile(ns.profile, ns.runs)
        return 0
    modes = [m for m in ns.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        p.error(f"--modes: choose from {', '.join(MODES)}")
    results = measure(modes, ns.runs)
    print(table(results))
    cli_args.write_json(ns.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
