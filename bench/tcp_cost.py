"""``python -m bench.tcp_cost``: where does the CPU go when one TCP stream
crosses a peer, and what holds the stream back?

For each peer, one iperf3 stream runs while ``perf record -a`` samples both
CPUs and bench.schedstat watches the sender, the receiver and the switch. The
table gives, per gigabyte carried, the machine's busy CPU time (and how many
cores were busy), the part spent copying bytes (the kernel's copy routines, in
every process), each role's own CPU time, the sender's on-CPU and run-queue
shares, and for tapswitch its loop's frames per wake-up and syscalls per GB; a
second table counts every switch's system calls through the kernel (bench.syscounts),
so the forwarders, Open vSwitch and tapswitch of any tree are counted alike.

Two bounds, both from what was measured:

    pipeline bound = min(busiest role:  1000 / (largest role ms per GB),
                         all cores:     cores x 1000 / busy ms per GB)        GB/s

one stream is a pipeline (sender, switch, receiver): it cannot go faster than
its busiest role running all the time, nor than the machine's cores all busy at
its cost. A peer far below its bound is held back by scheduling (waits, sleeps,
roles sharing a core), not by CPU work. And for a switch, what its own two
copies would cost at the cores veth actually kept busy:

    copies at veth's busy cores = veth busy ms/GB / (veth busy ms/GB + switch copies ms/GB)

(x veth): a switch whose only cost beyond veth's were its copies, given no more
busy cores than veth used. (The earlier "copies-only ceiling" assumed every core
busy; no peer keeps two cores busy with one stream, so it came out above veth.)

    python -m bench.tcp_cost                                     # veth, C forwarder (vnet), tapswitch
    python -m bench.tcp_cost --peers veth,tapswitch --reps 3 --seconds 5 --placement unpinned,pinned

Needs root, perf (Debian: linux-perf) and iperf3.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from pyctl import kernel

from bench import loads, placement as placement_mod, syscounts, tcp_knobs
from bench.tcp_cost_report import (EXPLAIN, SENDER_EXPLAIN, SWITCH_CALLS_EXPLAIN, load_line,
                                   sender_table, switch_calls_table, table)
from bench.peers import PEERS
from bench.runner import Plan, Run, _setup_peers

DEFAULT_PEERS = ("veth", "minimal-forwarder-vnet", "tapswitch")
PERF_HZ = 999
# The kernel's byte-copying routines (names differ between kernel builds and CPUs).
COPY_SYMBOL = re.compile(r"copy_(to|from)_iter|copy_user|rep_movs|memcpy|memmove|copy_page")
# Waking another task (leaf symbols: the wake-up, its run-queue choice and enqueue, the
# IPI to the other CPU, the wait-queue callbacks that start it): what a sender pays for
# every sleep of the switch it wakes (issue 18 item 3b).
WAKE_SYMBOL = re.compile(r"try_to_wake_up|ttwu_|select_task_rq|select_idle|enqueue_task|"
                         r"enqueue_entity|activate_task|wakeup_preempt|check_preempt|resched_curr|"
                         r"send_IPI|send_ipi|ipi_mask|send_call_func|smp_send_reschedule|"
                         r"smp_call_single_queue|ep_poll_callback|__wake_up|wake_function|"
                         r"sock_def_readable")
_SCRIPT_LINE = re.compile(r"^\s*(?P<pid>\d+)/(?P<tid>\d+)\s+[0-9a-f]+\s+(?P<sym>\S+)")


def parse_perf_script(text: str) -> dict:
    """``perf script -F pid,tid,ip,sym`` output (one sample per line, "PID/TID IP SYMBOL")
    -> {"samples": N, "copy": N, "wake": N, "by_pid": {pid: {"samples": N, "copy": N,
    "wake": N}}}: copies (COPY_SYMBOL) and wake-ups of other tasks (WAKE_SYMBOL)."""
    out = {"samples": 0, "copy": 0, "wake": 0, "by_pid": {}}
    for line in text.splitlines():
        m = _SCRIPT_LINE.match(line)
        if not m:
            continue
        copy = 1 if COPY_SYMBOL.search(m["sym"]) else 0
        wake = 1 if WAKE_SYMBOL.search(m["sym"]) else 0
        pid = int(m["pid"])
        per = out["by_pid"].setdefault(pid, {"samples": 0, "copy": 0, "wake": 0})
        for d in (out, per):
            d["samples"] += 1
            d["copy"] += copy
            d["wake"] += wake
    return out


def _busy_cores(before: list[int], after: list[int]) -> float:
    """Busy CPUs between two readings of /proc/stat's "cpu" line (jiffies)."""
    d = [b - a for a, b in zip(before, after)]
    total = sum(d[:8])
    idle = d[3] + d[4]                     # idle + iowait
    return (total - idle) / total * (os.cpu_count() or 1) if total else 0.0


def _cpu_line() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def measure(pair: loads.Pair, seconds: float, workdir: str,
            place: placement_mod.Placement, window: str | None = None,
            knobs: tcp_knobs.Knobs = tcp_knobs.Knobs()) -> dict:
    """One iperf3 stream a -> b under ``perf record -a``; the costs per GB.  ``knobs``:
    the kernel settings of this sample (bench/tcp_knobs.py: RPS, the TAPs' queue length,
    the sender's TCP Small Queues limit)."""
    data = os.path.join(workdir, "perf.data")
    place.pin("switch", pair.peer.switch_pids())
    knobs.apply(pair, place)
    sent0, dropped0 = tcp_knobs.sender_if_counts(pair)
    perf = subprocess.Popen(["perf", "record", "-a", "-F", str(PERF_HZ), "-o", data, "-q",
                             "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    calls = syscounts.Counter(pair.peer.pids(), seconds)
    try:
        load1 = os.getloadavg()[0]          # the machine's load as the sample starts
        stat0 = _cpu_line()
        m = loads.tcp(pair, 1, seconds, "iperf3", place, window=window)
        busy = _busy_cores(stat0, _cpu_line())
    finally:
        try:
            _, err = perf.communicate(timeout=seconds + loads.TIMEOUT_SLACK)
        except subprocess.TimeoutExpired:
            perf.kill()
            perf.communicate()
            raise RuntimeError("perf record did not finish")
        counts = calls.finish()
    if perf.returncode != 0:
        raise RuntimeError(f"perf record failed (exit {perf.returncode}): {err.strip()[-300:]}")
    script = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,ip,sym"],
                            capture_output=True, text=True, timeout=120)
    prof = parse_perf_script(script.stdout)
    sender = (m.get("role_pids") or {}).get("sender")
    out = costs(m["gbps"], busy, seconds, prof, set(pair.peer.pids()), m.get("cpu_util"),
                sched=m.get("sched"), role_pids=m.get("role_pids"))
    out["load1"] = load1
    if sender is not None:      # where the sender's time goes (the JSON's samples only)
        out["sender_symbols"] = top_symbols(script.stdout, sender, m["gbps"], seconds)
    sent1, dropped1 = tcp_knobs.sender_if_counts(pair)
    out["snd_if_drop_share"] = (dropped1 - dropped0) / max(1, sent1 - sent0 + dropped1 - dropped0)
    out["retransmits_per_gb"] = (m["retransmits"] / (m["gbps"] / 8 * seconds)
                                 if m.get("retransmits") is not None and m["gbps"] else None)
    out.update(switch_calls(counts, m["gbps"], seconds, m.get("switch_sleeps_per_gb")))
    out.update({k: m[k] for k in ("snd_rtt_us", "snd_cwnd", "snd_inflight_kb", "snd_queued_kb",
                                  "snd_sndbuf_kb", "snd_notsent_kb", "rcv_queued_kb") if k in m})
    out.update({k: m[k] for k in ("frames_per_wake", "syscalls_per_gb", "read_empty_per_frame",
                                  "switch_sleeps_per_gb",
                                  "sender_sleeps_per_gb", "poll_hit_share") if k in m})
    return out


def top_symbols(text: str, pid: int, gbps: float, seconds: float, n: int = 12) -> list:
    """The ``n`` symbols process ``pid`` was sampled in most, as [symbol, CPU ms per GB]."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        m = _SCRIPT_LINE.match(line)
        if m and int(m["pid"]) == pid:
            counts[m["sym"]] = counts.get(m["sym"], 0) + 1
    gb = gbps / 8 * seconds
    return [[sym, k / PERF_HZ * 1e3 / gb if gb else 0.0]
            for sym, k in sorted(counts.items(), key=lambda kv: -kv[1])[:n]]


ROLES = ("sender", "switch", "receiver")


def costs(gbps: float, busy_cores: float, perf_seconds: float, prof: dict, switch_pids: set,
          switch_cores: float | None, sched: dict | None = None,
          role_pids: dict | None = None) -> dict:
    """CPU milliseconds per GB carried: the whole machine's (busy cores from /proc/stat),
    the copies' (perf samples every CPU PERF_HZ times a second, idle or not, so each
    sample stands for 1/PERF_HZ s of one CPU), the switch's (its own CPU clock) and its
    copies'; each role's (``sched``: bench.schedstat shares) and the sender's on-CPU and
    run-queue shares."""
    gb_per_s = gbps / 8
    if not gb_per_s:
        raise RuntimeError("nothing was carried")
    per_gb = lambda cores: cores * 1e3 / gb_per_s
    sampled = lambda n: n / PERF_HZ / perf_seconds          # in cores
    out = {"gbps": gbps, "busy_cores": busy_cores, "samples": prof["samples"],
           "busy_ms_per_gb": per_gb(busy_cores), "copy_ms_per_gb": per_gb(sampled(prof["copy"]))}
    if switch_pids:
        sw = [prof["by_pid"][p] for p in switch_pids if p in prof["by_pid"]]
        sw_copy = sum(d["copy"] for d in sw)
        out["switch_ms_per_gb"] = per_gb(switch_cores if switch_cores is not None
                                         else sampled(sum(d["samples"] for d in sw)))
        out["switch_copy_ms_per_gb"] = per_gb(sampled(sw_copy))
    for role, pid in (role_pids or {}).items():   # the sender's and receiver's copies, wake-ups
        for what in ("copy", "wake"):
            out[f"{role}_{what}_ms_per_gb"] = per_gb(sampled(prof["by_pid"].get(pid, {}).get(what, 0)))
    for role, share in (sched or {}).items():
        if role in ROLES and isinstance(share, dict):
            out[f"{role}_ms_per_gb"] = per_gb(share["on_cpu"])
            if role == "sender":
                out["sender_on_cpu"], out["sender_runq"] = share["on_cpu"], share["runq"]
    roles_cores = [s["on_cpu"] for r, s in (sched or {}).items() if r in ROLES and isinstance(s, dict)]
    if roles_cores:         # what else kept the cores busy: other work on a shared machine
        out["other_cores"] = max(0.0, busy_cores - sum(roles_cores))
    return out


def switch_calls(counts: dict, gbps: float, seconds: float, sleeps_per_gb) -> dict:
    """The switch's system calls per GB carried, counted by the kernel over ``seconds``
    (bench.syscounts), and its reads per wake-up (reads / voluntary sleeps)."""
    if not counts or not gbps:
        return {}
    gb = gbps / 8 * seconds
    out = {f"switch_{group}_per_gb": n / gb for group, n in counts.items()}
    if sleeps_per_gb and "reads" in counts:
        out["switch_reads_per_wake"] = out["switch_reads_per_gb"] / sleeps_per_gb
    return out


def pipeline_bound_gbps(m: dict, cores: int) -> float:
    """min(busiest role running all the time, every core busy at the peer's cost), Gbit/s."""
    bounds = [cores * 1e3 / m["busy_ms_per_gb"]]
    roles = [m[f"{r}_ms_per_gb"] for r in ROLES if m.get(f"{r}_ms_per_gb")]
    if roles:
        bounds.append(1e3 / max(roles))
    return min(bounds) * 8


def summarize(samples: dict, cores: int) -> dict:
    """{peer: [costs...]} -> {peer: {key: median, ...}} plus, per peer, its pipeline bound
    and the measured rate over it; for a switch, what its own copies would cost at the
    cores veth kept busy (x veth)."""
    med = {peer: {k: statistics.median(v[k] for v in runs if v.get(k) is not None)
                  for k in runs[0] if any(isinstance(v.get(k), (int, float)) for v in runs)}
           for peer, runs in samples.items() if runs}
    for peer, m in med.items():
        veth = med.get(_veth_of(peer))
        m["bound_gbps"] = pipeline_bound_gbps(m, cores)
        m["vs_bound"] = m["gbps"] / m["bound_gbps"]
        m["vs_veth"] = m["gbps"] / veth["gbps"] if veth else None
        extra = m.get("switch_copy_ms_per_gb")
        m["copies_at_veth_cores_vs_veth"] = (veth["busy_ms_per_gb"] / (veth["busy_ms_per_gb"] + extra)
                                             if veth and extra else None)
    return med


def _veth_of(row: str) -> str:
    """The veth row measured under the same placement and knobs ("veth", "veth+rps/q64",
    "veth@PLACEMENT", ...: the knobs' suffix starts at the first "+" or "/")."""
    peer, at, place = row.partition("@")
    knobs = re.search(r"[+/].*", peer)
    return "veth" + (knobs[0] if knobs else "") + (f"@{place}" if at else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tcp_cost", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                   help=f"comma-separated (default {','.join(DEFAULT_PEERS)}); veth is the reference")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    placement_mod.add_argument(p)
    p.add_argument("--window", metavar="BYTES",
                   help="iperf3 -w: the socket buffers of both ends (e.g. 256K), bounding the "
                        "bytes in flight")
    p.add_argument("--rps", action="store_true",
                   help="also measure each peer with Receive Packet Steering on both tenants' "
                        "interfaces to the tenant's CPUs (rows NAME+rps): a sender's ACKs are then "
                        "processed, and its pages freed, on its own CPU")
    p.add_argument("--txqueuelen", metavar="N,N",
                   help="measure each peer at each of these transmit queue lengths of both "
                        "tenants' interfaces (rows NAME/qN; for a TAP, the ring to the switch)")
    p.add_argument("--limit-output", metavar="BYTES,BYTES",
                   help="measure each peer at each of these net.ipv4.tcp_limit_output_bytes "
                        "of the sender's namespace (rows NAME/tloBYTES; e.g. 4M,256K)")
    p.add_argument("--json", metavar="FILE", help="write every sample and the medians here")
    args = p.parse_args(argv)
    places = [placement_mod.parse(name) for name in args.placement]
    try:
        knobs = tcp_knobs.variants(
            args.rps, args.txqueuelen and tcp_knobs.parse_sizes(args.txqueuelen, "--txqueuelen"),
            args.limit_output and tcp_knobs.parse_sizes(args.limit_output, "--limit-output"))
    except ValueError as exc:
        p.error(str(exc))
    peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    unknown = [x for x in peers if x not in PEERS]
    if unknown or not peers:
        p.error(f"unknown peer {', '.join(unknown) or '(none)'}; known: {', '.join(PEERS)}")
    if args.reps < 1 or args.seconds <= 0:
        p.error("--reps must be >= 1 and --seconds > 0")
    for tool, pkg in (("perf", "linux-perf"), ("iperf3", "iperf3")):
        if not shutil.which(tool):
            print(f"{tool} is not installed (apt-get install {pkg})", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("needs root (kernel namespaces, perf -a)", file=sys.stderr)
        return 2
    registry = kernel.registry
    registry.install_signal_handlers()      # SIGTERM, SIGINT: remove what was made, then exit
    samples: dict = {}
    workdir = tempfile.mkdtemp(prefix="tapswitch-tcpcost-")
    registry.register(f"directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        pairs = _setup_peers(Plan(peers=peers, tests=["tcp1"]), Run(Plan(peers, ["tcp1"])),
                             registry, print)
        for place in places:
            print(f"placement {place.describe()}")
        for rep in range(1, args.reps + 1):          # interleaved: drift hits all peers alike
            for place in places:
                for name, pair, knob in [(n, p, k) for n, p in pairs.items() for k in knobs]:
                    row = name + knob.suffix + (f"@{place.name}" if len(places) > 1 else "")
                    c = measure(pair, args.seconds, workdir, place, args.window, knob)
                    samples.setdefault(row, []).append(c)
                    print(f"rep {rep}/{args.reps} {row:<34} {c['gbps']:.1f} Gbit/s, "
                          f"{c['busy_cores']:.2f} cores busy, sender on a CPU "
                          f"{c.get('sender_on_cpu', 0):.2f} (waiting {c.get('sender_runq', 0):.2f}), "
                          f"other work {c.get('other_cores', 0):.2f} cores, load {c['load1']:.1f}",
                          flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up")
    finally:
        failures = registry.cleanup()
        if failures:
            print(f"cleanup problems: {failures}", file=sys.stderr)
    med = summarize(samples, os.cpu_count() or 1)
    print()
    print(table(med))
    print(EXPLAIN)
    print(load_line(samples))
    print()
    print(sender_table(med))
    print(SENDER_EXPLAIN)
    print()
    print(switch_calls_table(med))
    print(SWITCH_CALLS_EXPLAIN)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "placements": [p.as_dict() for p in places],
                       "samples": samples, "medians": med}, f, indent=1)
    return 0 if samples else 1


if __name__ == "__main__":
    sys.exit(main())
