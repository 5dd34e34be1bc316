"""The ``udp64raw`` load: 64-byte frames a -> b whose generator and sink cost almost
nothing, so that what the bench measures is the switch (bench/csrc/rawblast.c).

``udp64`` (bench/loads.py) sends through a's UDP socket and reads with a socket in
b: the tenants' IP/UDP stacks cost about four times what the switch does per
frame, and on two cores they decide the rate. Here, applied alike to every peer:

- Generator: ready-made Ethernet/IPv4/UDP frames (valid checksums, 18 bytes of
  payload) injected on a's interface inside a's namespace through an AF_PACKET
  socket that bypasses the qdisc, in ``sendmmsg()`` bursts: no socket lookup,
  routing or neighbour resolution per frame. Source: a's MAC and address;
  destination: the next hop's MAC (b's, or the gateway's where a routes through
  one), read from a's neighbour table after the warm-up resolved it, and b's
  address. The UDP source port cycles over ``FLOWS`` values, in the same order
  every run, so that flow hashing sees several flows.
- Sink: a BPF program on b's tc ingress (a tcx link) drops those frames after b's
  interface counted them and before b's IP stack, and counts them (``stopped``).

"Delivered" is b's interface rx counter, as for ``udp64``: frames the switch put on
b's interface (written to its TAP, passed to its veth end). ``stopped`` is how many
reached b's tc hook, where b's kernel drops them: the cost of b's stack beyond that
point (IP, UDP, the socket, the reader) is gone. There is no reader, so the loss is
the generator's frames that did not reach that hook, of those it sent or a's device
refused (a full TAP queue): 1 - stopped / (sent + refused). (b's counter also counts the
few frames of the switch's own, an ARP request, that b receives.)
"""

from __future__ import annotations

import json
import subprocess
import time

from pyctl import kernel

from bench import cbuild
from bench.loads import (TIMEOUT_SLACK, UNPINNED, Pair, _finish, _json_line, _ports, _Window,
                         _warm_up, frame_rates)
from bench.peers import Endpoint, wait_ready
from bench.placement import Placement

FLOWS = 16                  # UDP source ports 40000..40015 (rawblast: a divisor of its burst)
RESOLVE_TIMEOUT = 3.0       # for a's neighbour entry of the next hop
UNRESOLVED = {"INCOMPLETE", "FAILED"}


def _ip_json(ep: Endpoint, args: list[str]) -> list:
    return json.loads(ep.ns.run(["ip", "-j", "-4", *args], timeout=10).stdout or "[]")


def next_hop_mac(pair: Pair, timeout: float = RESOLVE_TIMEOUT) -> str:
    """The MAC a's kernel sends b's packets to: its neighbour entry of the route's
    gateway, or of b itself where b is on-link. Warms up again (a datagram to b)
    until the entry is resolved, at most ``timeout`` seconds."""
    a, dst = pair.a, pair.b.ip
    route = _ip_json(a, ["route", "get", dst])
    if not route or route[0].get("dev") != a.ifname:
        raise RuntimeError(f"{a.ns.name} does not route {dst} out of {a.ifname}: {route}")
    hop = route[0].get("gateway", dst)
    deadline = time.monotonic() + timeout
    while True:
        for entry in _ip_json(a, ["neigh", "show", "to", hop, "dev", a.ifname]):
            if entry.get("lladdr") and not UNRESOLVED & set(entry.get("state", [])):
                return entry["lladdr"]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{a.ns.name} has no neighbour entry for {hop} on {a.ifname} "
                               f"after {timeout:g} s of warm-up")
        _warm_up(pair)


def udp64raw(pair: Pair, seconds: float, placement: Placement = UNPINNED) -> dict:
    """64-byte frames a -> b from rawblast's generator for ``seconds``, as fast as a's
    interface takes them, stopped at b's tc ingress: rates sent and delivered to b's
    interface (its rx counter), frames the sink stopped, CPU per delivered frame."""
    a, b = pair.a, pair.b
    tool = cbuild.tool("rawblast")
    port = str(next(_ports))
    _warm_up(pair)
    src_mac = a.ns.link_info(a.ifname)["address"]
    dst_mac = next_hop_mac(pair)
    sink = b.ns.popen(placement.wrap("receiver", [tool, "drop", b.ifname, port,
                                                  str(seconds + TIMEOUT_SLACK)]),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(sink, "rawblast drop")
        window = _Window(pair)
        gen = a.ns.run(placement.wrap("sender", [tool, "send", a.ifname, src_mac, dst_mac, a.ip,
                                                 b.ip, port, str(FLOWS), str(seconds)]),
                       timeout=seconds + TIMEOUT_SLACK, check=False)
        time.sleep(0.3)                       # frames still in queues arrive
        counters = window.close()
        if gen.returncode != 0:
            raise RuntimeError(f"rawblast send failed (exit {gen.returncode}): "
                               f"{gen.stderr.strip()[-300:]}")
        sent = _json_line(gen.stdout, "rawblast send")
        got = _finish(sink, "rawblast drop", 10, terminate=True)
    finally:
        kernel.stop_process(sink)
    metrics = frame_rates(counters, sent["sent"], sent["elapsed"])
    offered = sent["sent"] + sent["refused"]
    loop = counters.get("loop") or {}
    if loop.get("batches"):                   # where the switch counts its loop's batches
        metrics["frames_per_batch"] = loop.get("frames_in", 0) / loop["batches"]
    if "ring_rx_drops" in loop:               # lost because the switch's receive ring was full
        metrics["ring_rx_drops"] = loop["ring_rx_drops"]
    metrics.update({"refused": sent["refused"], "flows": sent["flows"],
                    "generator_cpu_ns_per_frame": (sent["cpu_s"] * 1e9 / sent["sent"]
                                                   if sent["sent"] else None),
                    "generator_cores": (sent["cpu_s"] / sent["elapsed"]
                                        if sent["elapsed"] else None),
                    "next_hop_mac": dst_mac, "stopped": got["dropped"],
                    "loss_pct": 100.0 * (1 - got["dropped"] / offered) if offered else None})
    return metrics
