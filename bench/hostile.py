"""``python -m bench.hostile``: the hostile-tenant section of the benchmark (issue 14).

A child ``tapswitch run`` (the test rig's process mode) carries two victim tenants, a and
b, and an attacker, x, each an L3 with its TAP in its own kernel namespace, under the L2
init (10.0.0.1, the gateway).  The victims exchange a UDP request/reply stream
(bench/csrc/udpblast.c ``rtt``: one 64-byte request at a time, each round trip timed, a
request without a reply within 1 s lost), then a's UDP blast of 64-byte frames to b
(throughput: frames per second b received).  For each attack the victims are measured
first with no attack, then under it, in the same run and topology; a row gives p50/p99/max
RTT, loss and throughput of both, and whether the target of issue 14 holds: under attack,
p99 at most 2x the no-attack p99 plus 1 ms, and no loss.

    python -m bench.hostile                                  # every attack, 10,000 requests
    python -m bench.hostile --attacks control-socket --count 20000 --json hostile.json
    python -m bench.hostile --attacks slow-path-flood,igmp-flood,control-ops
    python -m bench.hostile --kind veth                      # the tenants on veth/AF_PACKET ports

``--kind`` (tap, veth, xdp, auto) is the tenants' port kind (issue 17): the same attacks and
targets through each.

The attacks are in bench/attacks.py, one function each, given the ``Scene`` below.
Needs root (kernel namespaces, TAPs).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

from pyctl import errors, kernel
from pyctl.control.client import ControlClient
from pyctl.daemon import port_kinds
from pyctl.rig.topology import KINDS, Topology

from bench import cbuild
from bench.attacks import ATTACKS
from bench.loads import _finish, _json_line, cpu_ns
from bench.peers import wait_ready

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTT_PAYLOAD = 18                 # a 64-byte frame on the wire (bench/loads.py)
TARGET_FACTOR, TARGET_SLACK_US = 2.0, 1000.0
GATEWAY = "10.0.0.1"


class Scene:
    """What an attack may use: the topology, the victims and the attacker (tenants of
    ``pyctl.rig``), the child daemon's pid and admin socket."""

    def __init__(self, topo: Topology):
        self.topo = topo
        self.a, self.b = topo.tenants["a"], topo.tenants["b"]
        self.attacker = topo.tenants["x"]
        self.gateway = GATEWAY
        self.daemon_pid = topo.process.pid
        self.admin = topo.socket_path
        self._attacker_socket: str | None = None
        self._files_limit = resource.prlimit(self.daemon_pid, resource.RLIMIT_NOFILE)

    def attacker_socket(self) -> str:
        """The attacker's own control socket (an L3's: it may only read), opened once."""
        if self._attacker_socket is None:
            with ControlClient(self.admin) as admin:
                self._attacker_socket = admin.call("socket-add", namespace="x")["path"]
        return self._attacker_socket

    def limit_daemon_files(self, limit: int) -> None:
        """Hold the daemon to ``limit`` open files (the soft limit, as a service manager
        sets it; undone after the attack)."""
        resource.prlimit(self.daemon_pid, resource.RLIMIT_NOFILE, (limit, self._files_limit[1]))

    def admin_ping_ms(self, timeout: float = 10.0) -> float | str:
        """How long the admin socket takes to connect and answer a ping, in ms (or why it
        did not, as text: an attack that silences the operator is a finding, not a crash)."""
        started = time.monotonic()
        try:
            with ControlClient(self.admin, timeout=timeout) as admin:
                admin.call("ping")
        except errors.TapswitchError as exc:
            return f"{exc.code}: {exc.message}"
        return round((time.monotonic() - started) * 1000, 2)

    def daemon_cpu_ms_per_s(self, seconds: float = 2.0) -> float:
        """The daemon's CPU use over ``seconds`` with no victim traffic, in ms per second."""
        before = cpu_ns([self.daemon_pid])
        time.sleep(seconds)
        return round((cpu_ns([self.daemon_pid]) - before) / 1e6 / seconds, 2)

    def attacker_process(self, *argv: str, tenant=None) -> subprocess.Popen:
        """``python -m bench.attacks ARGV...`` inside the attacker's kernel namespace (or
        ``tenant``'s: an accomplice's): its own process (and fds), as a tenant's would
        be.  ``stop_attacker`` ends it."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))}
        tenant = tenant or self.attacker
        proc = tenant.netns.popen([sys.executable, "-m", "bench.attacks", *argv],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, env=env)
        wait_ready(proc, f"attacker {' '.join(argv)}")
        return proc

    def stop_attacker(self, proc: subprocess.Popen) -> dict:
        """Close its stdin (its cue to stop) and read the notes it prints as JSON."""
        out, err = proc.communicate(input="", timeout=60)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"attacker failed ({proc.returncode}): {err.strip()[-500:]}")
        return json.loads(lines[-1])

    def victim_gateway_pings_lost(self, count: int = 50) -> int:
        """Of ``count`` pings a sends to the gateway (the slow path answers them), how
        many got no answer."""
        return pings(self.a, self.gateway, count)["lost"]

    def plain_tenant(self):
        """Tenant s (10.0.0.5), made the first time it is asked for: a TAP without offloads
        (no virtio-net header: the switch cuts super-frames for it in software), or a port
        of the topology's other kind as that kind comes (veth: with virtio-net headers;
        xdp: without)."""
        if "s" not in self.topo.tenants:
            self.topo.tenant("s", "10.0.0.5/24",
                             vnet_hdr=False if self.topo.kind == "tap" else None)
        return self.topo.tenants["s"]

    def accomplice(self):
        """Tenant z (10.0.0.6), made the first time it is asked for: a second tenant the
        attacker controls, on a port of the topology's kind."""
        if "z" not in self.topo.tenants:
            self.topo.tenant("z", "10.0.0.6/24")
        return self.topo.tenants["z"]

    def restore(self) -> None:
        resource.prlimit(self.daemon_pid, resource.RLIMIT_NOFILE, self._files_limit)


def pings(tenant, dst: str, count: int, interval: float = 0.02) -> dict:
    """``count`` pings from ``tenant`` to ``dst``, one every ``interval`` s: how many got
    no answer (``lost``) and the round trips of those that did (``rtt_ms``, in order)."""
    out = tenant.run(["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", dst],
                     timeout=count * (interval + 0.1) + 30, check=False).stdout
    rtts = [float(m) for m in re.findall(r"time=([0-9.]+) ms$", out, re.MULTILINE)]
    summary = re.search(r"(\d+) received", out)
    if summary is None:
        raise RuntimeError(f"ping printed no summary: {out.strip()[-300:]}")
    return {"count": count, "lost": count - int(summary.group(1)), "rtt_ms": rtts}


def build_scene(topo: Topology) -> Scene:
    """The scene on ``topo``, a new topology in process mode with offloads
    (``Topology("process", vnet_hdr=True, ...)``; the caller closes it): the gateway, the
    victims a and b, the attacker x, started."""
    topo.address_add("init", f"{GATEWAY}/24")
    for name, address in (("a", "10.0.0.2/24"), ("b", "10.0.0.3/24"), ("x", "10.0.0.4/24")):
        topo.tenant(name, address)
    topo.start()
    return Scene(topo)


def victims_rtt(scene: Scene, count: int) -> dict:
    """``count`` UDP request/replies a -> b -> a: min/median/p99/max (us), count, lost, and
    the CPU the daemon used meanwhile (``daemon_cpu_ms``: what the attack cost the switch,
    apart from what the attacker's own work costs a shared machine)."""
    blast = cbuild.tool("udpblast")
    port = "29000"
    echo = scene.b.netns.popen([blast, "echo", scene.b.ip, port, str(count + 60)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(echo, "udpblast echo")
        cpu_before = cpu_ns([scene.daemon_pid])
        client = scene.a.run([blast, "rtt", scene.b.ip, port, str(RTT_PAYLOAD), str(count)],
                             timeout=count * 1.0 + 60, check=False)
        cpu = cpu_ns([scene.daemon_pid]) - cpu_before
    finally:
        kernel.stop_process(echo)
    lines = [line for line in client.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"udpblast rtt printed nothing: {client.stderr.strip()}")
    return {**json.loads(lines[-1]), "daemon_cpu_ms": round(cpu / 1e6, 1)}


def victims_throughput(scene: Scene, seconds: float) -> dict:
    """a blasts 64-byte frames at b for ``seconds``: frames per second sent and received."""
    blast = cbuild.tool("udpblast")
    port = "29001"
    sink = scene.b.netns.popen([blast, "sink", scene.b.ip, port, str(int(seconds + 30))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(sink, "udpblast sink")
        gen = scene.a.run([blast, "send", scene.b.ip, port, str(RTT_PAYLOAD), str(seconds)],
                          timeout=seconds + 60)
        time.sleep(0.2)                              # the last frames in flight
        got = _finish(sink, "udpblast sink", 10, terminate=True)
    finally:
        kernel.stop_process(sink)
    sent = _json_line(gen.stdout, "udpblast send")
    elapsed = sent["elapsed"] or seconds
    return {"sent_pps": round(sent["sent"] / elapsed), "received_pps": round(got["received"] / elapsed)}


def measure(scene: Scene, count: int, seconds: float) -> dict:
    """The victims' RTT figures and, when ``seconds``, their throughput."""
    figures = victims_rtt(scene, count)
    if seconds:
        figures["throughput"] = victims_throughput(scene, seconds)
    return figures


def _row(name: str, base: dict, under: dict, notes: dict) -> dict:
    limit = base["p99_us"] * TARGET_FACTOR + TARGET_SLACK_US if base.get("count") else 0.0
    met = bool(under.get("count")) and under["p99_us"] <= limit and under["lost"] == 0 \
        and base.get("lost", 1) == 0
    return {"attack": name, "base": base, "attack_run": under, "notes": notes,
            "p99_limit_us": round(limit, 1), "target_met": met}


def run(attacks: list[str], count: int, seconds: float = 2.0, kind: str = "tap") -> list[dict]:
    import contextlib
    rows = []
    with contextlib.ExitStack() as stack:
        scene = build_scene(stack.enter_context(
            Topology("process", vnet_hdr=True, prefix="tshost", kind=kind)))
        victims_rtt(scene, 200)                      # warm-up: ARP, caches
        for name in attacks:
            base = measure(scene, count, seconds)
            try:
                with ATTACKS[name](scene) as notes:
                    under = measure(scene, count, seconds)
            finally:
                scene.restore()
            rows.append(_row(name, base, under, notes))
            print(format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    def figs(r):
        tput = r.get("throughput", {}).get("received_pps")
        tput = f"{tput / 1000:7.1f}" if tput is not None else "      -"
        if not r.get("count"):
            return "no replies".ljust(36) + " " + tput
        return (f"{r['median_us']:7.0f} {r['p99_us']:7.0f} {r['max_us']:8.0f} "
                f"{r['lost']:5d} {r['daemon_cpu_ms']:7.0f} {tput}")
    verdict = "met" if row["target_met"] else f"MISSED (p99 <= {row['p99_limit_us']:.0f} us)"
    notes = " ".join(f"{key}={value}" for key, value in row["notes"].items())
    return (f"{row['attack']:<16} {figs(row['base'])} | {figs(row['attack_run'])}  {verdict}\n"
            f"{'':<16} {notes}")


HEADER = (f"{'attack':<16} {'no attack: p50':>14} {'p99':>7} {'max':>8} {'lost':>5} "
          f"{'cpu ms':>7} {'kpps':>7} | {'attack: p50':>7} {'p99':>7} {'max':>8} {'lost':>5} "
          f"{'cpu ms':>7} {'kpps':>7}  target\n(RTT in us; cpu: the daemon's during the RTT run; "
          f"kpps: the victims' 64-byte UDP throughput, thousands of frames/s received)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hostile",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--attacks", default=",".join(ATTACKS),
                   help=f"comma-separated, of: {', '.join(ATTACKS)} (default: all)")
    p.add_argument("--count", type=int, default=10000, help="request/replies per measurement")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="seconds of the throughput measurement (0: none)")
    p.add_argument("--kind", default="tap", choices=KINDS,
                   help="the tenants' port kind (default: tap)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.attacks.split(",") if n.strip()]
    unknown = [n for n in names if n not in ATTACKS]
    if unknown or not names:
        p.error(f"unknown attack {', '.join(unknown) or '(none)'}; known: {', '.join(ATTACKS)}")
    if os.geteuid() != 0:
        print("bench.hostile: needs root (kernel namespaces and TAPs)", file=sys.stderr)
        return 2
    why = None if args.kind == "auto" else port_kinds.unavailable(args.kind)
    if why is not None:
        print(f"bench.hostile: port kind {args.kind}: {why}", file=sys.stderr)
        return 2
    print(f"tenants' port kind: {args.kind}", flush=True)
    print(HEADER, flush=True)
    rows = run(names, args.count, args.seconds, args.kind)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"count": args.count, "seconds": args.seconds, "kind": args.kind,
                       "rows": rows, "tag": kernel.process_tag()},   # in every kernel name
                      f, indent=2)
    return 0 if all(r["target_met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
