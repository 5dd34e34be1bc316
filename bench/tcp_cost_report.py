"""How ``python -m bench.tcp_cost`` prints its medians: the cost table with its
explanation, the machine's load during the run, the sender's table and the switch's
system calls."""

from __future__ import annotations

import os
import statistics

EXPLAIN = """
busy: whole-machine CPU per GB carried (/proc/stat) and the cores it kept busy; other
cores: of those, what the three roles did not use (other work on a shared machine, and
kernel threads such as ksoftirqd); copies:
the part in the kernel's copy routines (perf samples), every process; sender, switch,
receiver: each role's own CPU per GB (schedstat: its threads, with the kernel work done in
their context); snd on-CPU / runq: the share of the time the sender ran / waited to run
(1.00 = all of it); switch sleeps/GB: its threads' voluntary context switches (each a
wake-up someone paid for); frames/wake (frames read per such sleep), syscalls/GB:
tapswitch's loop counters. Bound: the
pipeline bound (see python -m bench.tcp_cost --help); x bound = measured / bound.
Copies @veth cores: a switch costing veth plus its own copies, at veth's busy cores, x veth."""
SENDER_EXPLAIN = """
its copies / wake-ups: the sender's perf samples in the kernel's copy routines / in waking
another task (try_to_wake_up, IPIs, wait-queue callbacks; time with interrupts off shows up
where they are turned on again, not here); retrans/GB: iperf3's retransmits; TAP drops: the
share of the sender's frames its interface dropped (a TAP whose ring, txqueuelen, was full)."""
SWITCH_CALLS_EXPLAIN = """
The switch's system calls, counted by the kernel (perf stat on the syscall tracepoints of
its processes, bench/syscounts.py): reads (read, recvmsg), writes (write, writev, sendmsg,
io_uring_enter), waits (epoll_wait, epoll_pwait, poll, ppoll); sleeps: voluntary context
switches (schedstat); reads/wake: reads per sleep. loop ...: tapswitch's own counters."""


def load_line(samples: dict) -> str:
    """How loaded the machine was while the samples ran (a shared machine's other work
    moves every figure: compare rows of one run only)."""
    runs = [c for rows in samples.values() for c in rows]
    load = sorted(c["load1"] for c in runs if "load1" in c)
    other = [c["other_cores"] for c in runs if "other_cores" in c]
    if not load:
        return "machine load: not measured"
    text = (f"machine load during the run: 1-min load average {load[0]:.1f}..{load[-1]:.1f} "
            f"(median {statistics.median(load):.1f}) on {os.cpu_count()} CPUs")
    if other:
        text += f"; other work kept {statistics.median(other):.2f} cores busy (median)"
    return text


def table(med: dict) -> str:
    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"
    cols = ("peer", "Gbit/s", "x veth", "busy cores", "other cores", "busy ms/GB", "copies ms/GB",
            "sender ms/GB", "switch ms/GB", "receiver ms/GB", "switch copies ms/GB",
            "snd on-CPU", "snd runq", "switch sleeps/GB", "frames/wake", "syscalls/GB",
            "bound Gbit/s", "x bound", "copies @veth cores x veth")
    rows = [(peer, f(m["gbps"], ".1f"), f(m.get("vs_veth"), ".2f"), f(m["busy_cores"], ".2f"),
             f(m.get("other_cores"), ".2f"), f(m["busy_ms_per_gb"], ".0f"), f(m["copy_ms_per_gb"], ".0f"),
             f(m.get("sender_ms_per_gb"), ".0f"), f(m.get("switch_ms_per_gb"), ".0f"),
             f(m.get("receiver_ms_per_gb"), ".0f"), f(m.get("switch_copy_ms_per_gb"), ".0f"),
             f(m.get("sender_on_cpu"), ".2f"), f(m.get("sender_runq"), ".2f"),
             f(m.get("switch_sleeps_per_gb"), ".0f"), f(m.get("frames_per_wake"), ".2f"), f(m.get("syscalls_per_gb"), ".0f"),
             f(m["bound_gbps"], ".1f"), f(m["vs_bound"], ".2f"),
             f(m.get("copies_at_veth_cores_vs_veth"), ".2f"))
            for peer, m in med.items()]
    width = [max(len(str(r[i])) for r in rows + [cols]) for i in range(len(cols))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, width)))
    return "\n".join([line(cols), line(["-" * w for w in width])] + [line(r) for r in rows])


SENDER_COLUMNS = (("Gbit/s", "gbps", ".1f"), ("sender ms/GB", "sender_ms_per_gb", ".0f"),
                  ("its copies ms/GB", "sender_copy_ms_per_gb", ".0f"),
                  ("its wake-ups ms/GB", "sender_wake_ms_per_gb", ".0f"),
                  ("receiver copies ms/GB", "receiver_copy_ms_per_gb", ".0f"),
                  ("sender sleeps/GB", "sender_sleeps_per_gb", ".0f"),
                  ("on-CPU", "sender_on_cpu", ".2f"), ("runq", "sender_runq", ".2f"),
                  ("RTT us", "snd_rtt_us", ".0f"), ("cwnd", "snd_cwnd", ".0f"),
                  ("in flight KB", "snd_inflight_kb", ".0f"), ("queued KB", "snd_queued_kb", ".0f"),
                  ("receiver's unread KB", "rcv_queued_kb", ".0f"),
                  ("retrans/GB", "retransmits_per_gb", ".0f"),
                  ("TAP drops", "snd_if_drop_share", ".4f"))


SWITCH_CALL_COLUMNS = (("Gbit/s", "gbps", ".1f"), ("syscalls/GB", "switch_syscalls_per_gb", ".0f"),
                       ("reads/GB", "switch_reads_per_gb", ".0f"),
                       ("writes/GB", "switch_writes_per_gb", ".0f"),
                       ("waits/GB", "switch_waits_per_gb", ".0f"),
                       ("sleeps/GB", "switch_sleeps_per_gb", ".0f"),
                       ("reads/wake", "switch_reads_per_wake", ".2f"),
                       ("loop frames/wake", "frames_per_wake", ".2f"),
                       ("loop syscalls/GB", "syscalls_per_gb", ".0f"))


def columns_table(med: dict, columns, only=None) -> str:
    """A table of ``columns`` ((title, key, format), ...) per row of ``med`` (rows
    ``only`` holds a key of, if given)."""
    cols = ("peer",) + tuple(c[0] for c in columns)
    rows = [(peer,) + tuple(format(m[k], fmt) if m.get(k) is not None else "-"
                            for _, k, fmt in columns)
            for peer, m in med.items() if only is None or m.get(only) is not None]
    width = [max(len(str(r[i])) for r in rows + [cols]) for i in range(len(cols))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, width)))
    return "\n".join([line(cols), line(["-" * w for w in width])] + [line(r) for r in rows])


def sender_table(med: dict) -> str:
    """The sender's side: its CPU and copies per GB, its scheduling, and its TCP window
    halfway through (ss): what a cold-page or a queueing explanation must match."""
    return columns_table(med, SENDER_COLUMNS)


def switch_calls_table(med: dict) -> str:
    """The switch's kernel crossings per GB, counted by the kernel for every switch peer
    alike, beside tapswitch's own loop counters."""
    return columns_table(med, SWITCH_CALL_COLUMNS, only="switch_syscalls_per_gb")
