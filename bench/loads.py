"""The measurements of the bench suite, each between the two namespaces of a
peer: TCP throughput (iperf3 or bench/tcpload.py), 64-byte UDP frames per
second (bench/csrc/udpblast.c: sendmmsg generator, recvmmsg sink; the udp64raw
load, whose generator and sink cost almost nothing, is bench/udp64raw.py), UDP
round-trip latency, and the switch's CPU time (from /proc of its processes).

Every load is bounded in time (its own timer, plus a kill after a timeout),
and every process runs inside a namespace the suite created.

A "64-byte frame" is the classic minimum Ethernet frame: 18 bytes of UDP
payload + 8 UDP + 20 IPv4 + 14 Ethernet = 60 bytes on the TAP, 64 with the FCS.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from pyctl import kernel

from bench import cbuild, schedstat
from bench.peers import Endpoint, Peer, wait_ready
from bench.placement import Placement

UNPINNED = Placement("unpinned")

UDP64_PAYLOAD = 18
RTT_COUNT = 1000
TIMEOUT_SLACK = 20.0
_ports = itertools.count(20000)


@dataclass
class Pair:
    """A peer and the two namespaces it connects (traffic goes a -> b)."""
    peer: Peer
    a: Endpoint
    b: Endpoint


def cpu_ns(pids: list[int]) -> int:
    """CPU time (ns) used so far by all threads of these processes (schedstat)."""
    total = 0
    for pid in pids:
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(path) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass          # a thread that just ended
    return total


def system_busy_ns() -> int:
    """CPU time (ns) every CPU of the machine spent busy so far (/proc/stat: all but
    idle and iowait), whoever it worked for: the switch, the senders' and receivers'
    softirqs, the load generators."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]          # user .. steal, minus idle, iowait
    return busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _json_line(text: str, what: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{what} printed no result: {text.strip()[-300:]!r}")


def _finish(proc: subprocess.Popen, what: str, timeout: float, terminate: bool = False) -> dict:
    """Wait for a load process (SIGTERM first if asked) and parse its JSON line."""
    if terminate:
        proc.terminate()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kernel.stop_process(proc)
        raise RuntimeError(f"{what} did not finish within {timeout:.0f} s")
    kernel.stop_process(proc)           # forgets it in the registry
    if proc.returncode not in (0, -15):
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {err.strip()[-300:]}")
    return _json_line(out, what)


class _Window:
    """Counters and CPU time at the start of a measurement, to diff at the end."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self.pids = pair.peer.pids()
        self.t = time.monotonic()
        self.cpu = cpu_ns(self.pids)
        self.system = system_busy_ns()
        self.a = pair.a.ns.link_stats(pair.a.ifname)
        self.b = pair.b.ns.link_stats(pair.b.ifname)
        self.loop = pair.peer.loop_stats()

    def close(self) -> dict:
        wall = time.monotonic() - self.t
        out = {"wall_s": wall,
               "a": vars(self.pair.a.ns.link_stats(self.pair.a.ifname) - self.a),
               "b": vars(self.pair.b.ns.link_stats(self.pair.b.ifname) - self.b),
               "system_cpu_s": (system_busy_ns() - self.system) / 1e9}
        if self.pids:
            out["cpu_s"] = (cpu_ns(self.pids) - self.cpu) / 1e9
            out["cpu_util"] = out["cpu_s"] / wall
        if self.loop is not None:
            after = self.pair.peer.loop_stats() or {}
            out["loop"] = {k: v - self.loop[k] for k, v in after.items()
                           if isinstance(v, int) and isinstance(self.loop.get(k), int)}
        return out


def loop_figures(loop: dict, seconds: float, sleeps_per_s: float | None = None) -> dict:
    """What a switch's packet-loop counters (a measurement's differences over ``seconds``)
    say per frame and per GB: frames per wake-up (frames read per sleep of the switch's
    threads, counted by the kernel: ``sleeps_per_s``), empty reads (EAGAIN) per frame, and
    syscalls (waits, reads and empty reads or the io_uring passes that made them, write
    submissions and slow-path sends) per GB read.  Keys the loop does not count are left out."""
    frames, gb = loop.get("frames_in", 0), loop.get("read_bytes", 0) / 1e9
    out = {}
    if frames and sleeps_per_s and seconds > 0:
        out["frames_per_wake"] = frames / seconds / sleeps_per_s
    if frames and "read_empty" in loop:
        out["read_empty_per_frame"] = loop["read_empty"] / frames
    # reads: one system call each (and each empty one), or on the io_uring backend one
    # io_uring_enter per pass over the ports for all of them (rx_submits)
    reads = loop.get("rx_submits") or loop.get("reads", 0) + loop.get("read_empty", 0)
    calls = reads + sum(loop.get(k, 0) for k in ("epoll_waits", "epoll_interrupted", "tx_submits",
                                                 "sent"))
    if gb and calls:
        out["syscalls_per_gb"] = calls / gb
    if loop.get("poll_episodes"):
        out["poll_hit_share"] = loop.get("poll_hits", 0) / loop["poll_episodes"]
        out["poll_shared"] = loop.get("poll_shared", 0)
    return out


def _wait_listening(proc: subprocess.Popen, port: int, what: str, timeout: float = 10.0,
                    family: int = 4) -> None:
    """Wait until ``proc`` listens on TCP ``port`` (read from /proc/PID/net/tcp, or tcp6,
    which show the process's own namespace); iperf3's output is not line
    buffered on a pipe, so its banner cannot be waited for."""
    deadline = time.monotonic() + timeout
    needle = f":{port:04X} " + ("0" * (32 if family == 6 else 8)) + ":0000 0A"
    table = f"/proc/{proc.pid}/net/" + ("tcp6" if family == 6 else "tcp")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {proc.stderr.read()[-300:]}")
        try:
            with open(table) as f:
                if needle in f.read():
                    return
        except OSError:
            pass
        time.sleep(0.01)
    kernel.stop_process(proc)
    raise RuntimeError(f"{what} was not listening on port {port} after {timeout} s")


def tcp_tool(choice: str = "auto") -> str:
    """"iperf3" when asked for or installed (auto), else "python"."""
    if choice == "auto":
        return "iperf3" if shutil.which("iperf3") else "python"
    if choice == "iperf3" and not shutil.which("iperf3"):
        raise RuntimeError("iperf3 is not installed (apt-get install iperf3)")
    return choice


_SS_FIELD = re.compile(r"\b(rtt|cwnd|unacked|mss|notsent|bytes_sent|bytes_received):([0-9.]+)")
_SS_WMEM = re.compile(r"skmem:\(r\d+,rb\d+,t\d+,tb(\d+),f\d+,w(\d+)")


def parse_ss(text: str, receiver: bool = False) -> dict:
    """``ss -tinm`` of the sender's namespace -> the busiest connection's window: RTT
    (us), cwnd (segments), bytes unacknowledged (in flight), bytes queued in the socket
    (sent or not: the pages the sender's copies wrote and that are not yet freed), and
    bytes not yet sent.  Of the receiver's (``receiver``): the bytes waiting in its
    socket for the application to read them (its Recv-Q)."""
    best = None
    for block in re.split(r"\n(?=\S)", text.strip()):
        got = {k: float(v) for k, v in _SS_FIELD.findall(block)}
        state = block.split()
        got["recv_q"] = float(state[1]) if len(state) > 2 and state[1].isdigit() else 0.0
        key = "bytes_received" if receiver else "bytes_sent"
        if key not in got:
            continue
        wmem = _SS_WMEM.search(block)
        if best is None or got[key] > best[0][key]:
            best = (got, wmem)
    if best is None:
        return {}
    got, wmem = best
    if receiver:
        return {"rcv_queued_kb": got["recv_q"] / 1024}
    mss = got.get("mss", 0)
    out = {"snd_rtt_us": got.get("rtt", 0) * 1000, "snd_cwnd": got.get("cwnd", 0),
           "snd_inflight_kb": got.get("unacked", 0) * mss / 1024,
           "snd_notsent_kb": got.get("notsent", 0) / 1024}
    if wmem:
        out["snd_sndbuf_kb"], out["snd_queued_kb"] = int(wmem[1]) / 1024, int(wmem[2]) / 1024
    return out


def _windows(pair: Pair, holder: dict, dst: str):
    """One ``ss`` look at the sender's and the receiver's sockets, into ``holder`` (run
    from a timer halfway through a load)."""
    try:
        holder.update(parse_ss(pair.a.ns.run(["ss", "-tinmH", "dst", dst], timeout=5).stdout))
        holder.update(parse_ss(pair.b.ns.run(["ss", "-tinmH", "src", dst], timeout=5).stdout,
                               receiver=True))
    except Exception as exc:            # a missing ss or a finished load: no figures
        holder["ss_error"] = str(exc)[:200]


def tcp(pair: Pair, streams: int, seconds: float, tool: str,
        placement: Placement = UNPINNED, window: str | None = None, family: int = 4) -> dict:
    """TCP throughput a -> b with ``streams`` parallel connections, over IPv4 or (``family``
    6) the endpoints' IPv6 addresses; the sender (client)
    and receiver (server) started on their CPUs of ``placement``, how the scheduler
    treated sender, receiver and switch (``sched``, bench.schedstat), and the sender's
    TCP window halfway (``ss``).  ``window``: iperf3's -w (socket buffers, both ends)."""
    a, b = pair.a, pair.b
    dst = b.ip6 if family == 6 else b.ip
    if not dst:
        raise RuntimeError("the endpoints have no IPv6 addresses (the plan measures no IPv6)")
    port = str(next(_ports))
    if tool == "iperf3":
        server = b.ns.popen(placement.wrap("receiver", ["iperf3", "-s", "-1", "-B", dst, "-p", port,
                                                        "--forceflush"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_listening(server, int(port), "iperf3 server", family=family)
        client_argv = ["iperf3", "-c", dst, "-p", port, "-t", str(seconds), "-P", str(streams),
                       "-J", "--connect-timeout", "5000"] + (["-w", window] if window else [])
    else:
        server = b.ns.popen(placement.wrap("receiver", [sys.executable, "-m", "bench.tcpload",
                                                        "server", dst, port, str(streams),
                                                        str(seconds + TIMEOUT_SLACK)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_ready(server, "tcpload server")
        client_argv = [sys.executable, "-m", "bench.tcpload", "client", dst, port,
                       str(streams), str(seconds)]
    try:
        span = _Window(pair)
        client = a.ns.popen(placement.wrap("sender", client_argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        watch = schedstat.Watch({"sender": [client.pid], "receiver": [server.pid],
                                 "switch": span.pids}).start()
        tcp_window: dict = {}
        look = threading.Timer(seconds / 2, _windows, (pair, tcp_window, dst))
        look.start()
        try:
            stdout, stderr = client.communicate(timeout=seconds + TIMEOUT_SLACK)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{tool} client did not finish within "
                               f"{seconds + TIMEOUT_SLACK:.0f} s") from None
        finally:
            look.cancel()
            look.join()
            sched = watch.stop()
            kernel.stop_process(client)         # forgets it in the registry
        role_pids = {"sender": client.pid, "receiver": server.pid}
        counters = span.close()
        if client.returncode != 0:
            raise RuntimeError(f"{tool} client failed: {(stderr or stdout)[-300:]}")
        if tool == "iperf3":
            result = json.loads(stdout)
            if result.get("error"):
                raise RuntimeError(f"iperf3: {result['error']}")
            end = result["end"]
            received = end["sum_received"]
            metrics = {"gbps": received["bits_per_second"] / 1e9,
                       "bytes": received["bytes"], "seconds": received["seconds"],
                       "retransmits": end["sum_sent"].get("retransmits")}
        else:
            srv = _finish(server, "tcpload server", TIMEOUT_SLACK)
            metrics = {"gbps": srv["bytes"] * 8 / srv["seconds"] / 1e9 if srv["seconds"] else 0.0,
                       "bytes": srv["bytes"], "seconds": srv["seconds"]}
    finally:
        kernel.stop_process(server)
    metrics["tool"] = tool
    metrics["role_pids"] = role_pids
    metrics.update(tcp_window)
    metrics.update(_cpu_fields(counters))
    metrics.update(_sched_fields(sched))
    metrics.update(loop_figures(counters.get("loop", {}), counters["wall_s"],
                                metrics.get("switch_sleeps_per_s")))
    gb_per_s = metrics["gbps"] / 8
    for role in ("sender", "switch", "receiver"):        # wake-ups each role paid, per GB
        if f"{role}_sleeps_per_s" in metrics and gb_per_s:
            metrics[f"{role}_sleeps_per_gb"] = metrics[f"{role}_sleeps_per_s"] / gb_per_s
    metrics["counters"] = counters
    return metrics


def _sched_fields(sched: dict) -> dict:
    """The watch's shares as flat metrics (sender_on_cpu, sender_runq, ...) plus the raw."""
    out = {f"{role}_{k}": v for role, d in sched.items() if isinstance(d, dict)
           for k, v in d.items()}
    if sched:
        out["sched"] = sched
    return out


def _cpu_fields(counters: dict) -> dict:
    return {k: counters[k] for k in ("cpu_s", "cpu_util") if k in counters}


def _warm_up(pair: Pair) -> None:
    """One datagram to a closed port so ARP (and the switch's tables) are resolved."""
    with pair.a.ns.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"warm-up", (pair.b.ip, 9))
    time.sleep(0.1)


@contextlib.contextmanager
def _udpblast_server(pair: Pair, placement: Placement, mode: str, lifetime: float):
    """udpblast ``mode`` ("sink" or "echo") in b on a fresh port, for at most ``lifetime``
    seconds: (port, process) once it listens; stopped when the block ends."""
    port = str(next(_ports))
    proc = pair.b.ns.popen(placement.wrap("receiver", [cbuild.tool("udpblast"), mode, pair.b.ip,
                                                       port, str(lifetime)]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(proc, f"udpblast {mode}")
        yield port, proc
    finally:
        kernel.stop_process(proc)


def _udpblast_client(pair: Pair, placement: Placement, mode: str, port: str, amount, **run):
    """udpblast ``mode`` ("send" for ``amount`` seconds, "rtt" for ``amount`` requests) in a,
    64-byte frames to b's server on ``port``; its finished process."""
    return pair.a.ns.run(placement.wrap("sender", [cbuild.tool("udpblast"), mode, pair.b.ip, port,
                                                   str(UDP64_PAYLOAD), str(amount)]), **run)


def udp64(pair: Pair, seconds: float, placement: Placement = UNPINNED) -> dict:
    """64-byte UDP frames a -> b, as fast as the generator sends them: rates
    sent, delivered to b's interface (its rx counter) and read by the sink."""
    with _udpblast_server(pair, placement, "sink", seconds + TIMEOUT_SLACK) as (port, sink):
        _warm_up(pair)
        window = _Window(pair)
        gen = _udpblast_client(pair, placement, "send", port, seconds,
                               timeout=seconds + TIMEOUT_SLACK)
        time.sleep(0.3)                       # frames still in queues arrive
        counters = window.close()
        sent = _json_line(gen.stdout, "udpblast send")
        got = _finish(sink, "udpblast sink", 10, terminate=True)
    metrics = frame_rates(counters, sent["sent"], sent["elapsed"])
    metrics.update({"send_errors": sent["errors"], "received": got["received"],
                    "received_kpps": got["received"] / sent["elapsed"] / 1e3,
                    "loss_pct": 100.0 * (1 - got["received"] / sent["sent"]) if sent["sent"] else None})
    return metrics


def frame_rates(counters: dict, sent: int, elapsed: float) -> dict:
    """A small-frame load's figures from its window (``_Window.close()``): frames sent,
    those that left a's interface or its queue dropped, those delivered to b's interface
    (its rx counter) or dropped there, their rates, and CPU time per delivered frame: the
    switch's processes' (with the cores they kept busy) and the whole machine's."""
    delivered = counters["b"]["rx_packets"]
    metrics = {
        "sent": sent, "seconds": elapsed,
        "left_a": counters["a"]["tx_packets"], "dropped_a": counters["a"]["tx_dropped"],
        "delivered": delivered, "dropped_b": counters["b"]["rx_dropped"],
        "sent_kpps": sent / elapsed / 1e3,
        "delivered_kpps": delivered / elapsed / 1e3,
    }
    metrics.update(_cpu_fields(counters))
    if "cpu_s" in counters:
        metrics["cpu_cores"] = counters["cpu_s"] / elapsed        # the switch's cores while sending
        if delivered:
            metrics["cpu_ns_per_frame"] = counters["cpu_s"] * 1e9 / delivered
    if delivered:
        metrics["system_cpu_ns_per_frame"] = counters["system_cpu_s"] * 1e9 / delivered
    metrics["counters"] = counters
    return metrics


def rtt(pair: Pair, count: int = RTT_COUNT, placement: Placement = UNPINNED) -> dict:
    """Round-trip times of ``count`` 64-byte UDP request/replies a -> b -> a
    (after 50 untimed ones); median and 99th percentile in microseconds."""
    with _udpblast_server(pair, placement, "echo", count + TIMEOUT_SLACK) as (port, _):
        window = _Window(pair)
        client = _udpblast_client(pair, placement, "rtt", port, count,
                                  timeout=count * 1.0 + TIMEOUT_SLACK, check=False)
        counters = window.close()
        result = _json_line(client.stdout, "udpblast rtt")
    if not result.get("count"):
        raise RuntimeError(f"no reply to any of {count} requests")
    result.update(_cpu_fields(counters))
    return result
