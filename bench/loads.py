"""The measurements of the bench suite, each between the two namespaces of a
peer: TCP throughput (iperf3 or bench/tcpload.py), 64-byte UDP frames per
second (bench/csrc/udpblast.c: sendmmsg generator, recvmmsg sink), UDP
round-trip latency, and the switch's CPU time (from /proc of its processes).

Every load is bounded in time (its own timer, plus a kill after a timeout),
and every process runs inside a namespace the suite created.

A "64-byte frame" is the classic minimum Ethernet frame: 18 bytes of UDP
payload + 8 UDP + 20 IPv4 + 14 Ethernet = 60 bytes on the TAP, 64 with the FCS.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from pyctl import kernel

from bench import cbuild
from bench.peers import Endpoint, Peer, wait_ready

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

    def close(self) -> dict:
        wall = time.monotonic() - self.t
        out = {"wall_s": wall,
               "a": vars(self.pair.a.ns.link_stats(self.pair.a.ifname) - self.a),
               "b": vars(self.pair.b.ns.link_stats(self.pair.b.ifname) - self.b),
               "system_cpu_s": (system_busy_ns() - self.system) / 1e9}
        if self.pids:
            out["cpu_s"] = (cpu_ns(self.pids) - self.cpu) / 1e9
            out["cpu_util"] = out["cpu_s"] / wall
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


def tcp(pair: Pair, streams: int, seconds: float, tool: str, family: int = 4) -> dict:
    """TCP throughput a -> b with ``streams`` parallel connections, over IPv4 or
    (``family`` 6) the endpoints' IPv6 addresses."""
    a, b = pair.a, pair.b
    dst = b.ip6 if family == 6 else b.ip
    if not dst:
        raise RuntimeError("the endpoints have no IPv6 addresses (the plan measures no IPv6)")
    port = str(next(_ports))
    if tool == "iperf3":
        server = b.ns.popen(["iperf3", "-s", "-1", "-B", dst, "-p", port, "--forceflush"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_listening(server, int(port), "iperf3 server", family=family)
        client_argv = ["iperf3", "-c", dst, "-p", port, "-t", str(seconds), "-P", str(streams),
                       "-J", "--connect-timeout", "5000"]
    else:
        server = b.ns.popen([sys.executable, "-m", "bench.tcpload", "server", dst, port,
                             str(streams), str(seconds + TIMEOUT_SLACK)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_ready(server, "tcpload server")
        client_argv = [sys.executable, "-m", "bench.tcpload", "client", dst, port,
                       str(streams), str(seconds)]
    try:
        window = _Window(pair)
        client = a.ns.run(client_argv, timeout=seconds + TIMEOUT_SLACK, check=False)
        counters = window.close()
        if client.returncode != 0:
            raise RuntimeError(f"{tool} client failed: {(client.stderr or client.stdout)[-300:]}")
        if tool == "iperf3":
            result = json.loads(client.stdout)
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
    metrics.update(_cpu_fields(counters))
    metrics["counters"] = counters
    return metrics


def _cpu_fields(counters: dict) -> dict:
    return {k: counters[k] for k in ("cpu_s", "cpu_util") if k in counters}


def _warm_up(pair: Pair) -> None:
    """One datagram to a closed port so ARP (and the switch's tables) are resolved."""
    with pair.a.ns.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"warm-up", (pair.b.ip, 9))
    time.sleep(0.1)


def udp64(pair: Pair, seconds: float) -> dict:
    """64-byte UDP frames a -> b, as fast as the generator sends them: rates
    sent, delivered to b's interface (its rx counter) and read by the sink."""
    blast = cbuild.tool("udpblast")
    a, b = pair.a, pair.b
    port = str(next(_ports))
    sink = b.ns.popen([blast, "sink", b.ip, port, str(seconds + TIMEOUT_SLACK)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(sink, "udpblast sink")
        _warm_up(pair)
        window = _Window(pair)
        gen = a.ns.run([blast, "send", b.ip, port, str(UDP64_PAYLOAD), str(seconds)],
                       timeout=seconds + TIMEOUT_SLACK)
        time.sleep(0.3)                       # frames still in queues arrive
        counters = window.close()
        sent = _json_line(gen.stdout, "udpblast send")
        got = _finish(sink, "udpblast sink", 10, terminate=True)
    finally:
        kernel.stop_process(sink)
    elapsed = sent["elapsed"]
    delivered = counters["b"]["rx_packets"]
    metrics = {
        "sent": sent["sent"], "send_errors": sent["errors"], "seconds": elapsed,
        "left_a": counters["a"]["tx_packets"], "dropped_a": counters["a"]["tx_dropped"],
        "delivered": delivered, "dropped_b": counters["b"]["rx_dropped"],
        "received": got["received"],
        "sent_kpps": sent["sent"] / elapsed / 1e3,
        "delivered_kpps": delivered / elapsed / 1e3,
        "received_kpps": got["received"] / elapsed / 1e3,
        "loss_pct": 100.0 * (1 - got["received"] / sent["sent"]) if sent["sent"] else None,
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


def rtt(pair: Pair, count: int = RTT_COUNT) -> dict:
    """Round-trip times of ``count`` 64-byte UDP request/replies a -> b -> a
    (after 50 untimed ones); median and 99th percentile in microseconds."""
    blast = cbuild.tool("udpblast")
    a, b = pair.a, pair.b
    port = str(next(_ports))
    echo = b.ns.popen([blast, "echo", b.ip, port, str(count + TIMEOUT_SLACK)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(echo, "udpblast echo")
        window = _Window(pair)
        client = a.ns.run([blast, "rtt", b.ip, port, str(UDP64_PAYLOAD), str(count)],
                          timeout=count * 1.0 + TIMEOUT_SLACK, check=False)
        counters = window.close()
        result = _json_line(client.stdout, "udpblast rtt")
    finally:
        kernel.stop_process(echo)
    if not result.get("count"):
        raise RuntimeError(f"no reply to any of {count} requests")
    result.update(_cpu_fields(counters))
    return result
