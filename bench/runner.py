"""Runs the end-to-end bench: sets every peer up between its own two kernel
namespaces, then measures test by test, interleaved across placements and
peers, for each repetition (so drift on a noisy machine hits all peers alike;
each repetition starts with the next peer, so that where a peer comes in a
repetition's order, which measurably matters here, falls on every peer alike),
printing progress. Each measurement first applies its placement
(bench/placement.py) to the peer's switch processes; the load's sender and
receiver start on theirs. Everything is torn down at the end, also on Ctrl-C
or failure (pyctl.kernel's cleanup registry)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pyctl import kernel

from bench import loads, placement as placement_mod, udp64raw
from bench.peers import PEERS, Endpoint

TESTS = ("tcp1", "tcp1v6", "tcp4", "udp64", "udp64raw", "rtt")
IPV6_TESTS = ("tcp1v6",)         # measured over the endpoints' IPv6 addresses


@dataclass
class Plan:
    peers: list[str]
    tests: list[str]
    reps: int = 3
    seconds: float = 5.0
    tcp_tool: str = "auto"
    rtt_count: int = loads.RTT_COUNT
    quick: bool = False             # --quick: a smoke test (the report and plots say so)
    placements: list[str] = field(default_factory=lambda: ["unpinned"])   # bench/placement.py

    def expected_seconds(self, test: str) -> float:
        """A guess of one measurement's wall time, for the time-left estimate."""
        return {"rtt": 1.0 + self.rtt_count * 60e-6}.get(test, self.seconds + 1.0)


@dataclass
class Run:
    plan: Plan
    peers: dict = field(default_factory=dict)       # name -> {"status", "reason", "description"}
    samples: list = field(default_factory=list)
    interrupted: bool = False
    placements: list = field(default_factory=list)  # Placement.as_dict() of each, in plan order


def _measure(pair: loads.Pair, test: str, plan: Plan, tool: str,
             place: placement_mod.Placement) -> dict:
    if test == "tcp1":
        return loads.tcp(pair, 1, plan.seconds, tool, place)
    if test == "tcp1v6":
        return loads.tcp(pair, 1, plan.seconds, tool, place, family=6)
    if test == "tcp4":
        return loads.tcp(pair, 4, plan.seconds, tool, place)
    if test == "udp64":
        return loads.udp64(pair, plan.seconds, place)
    if test == "udp64raw":
        return udp64raw.udp64raw(pair, plan.seconds, place)
    if test == "rtt":
        return loads.rtt(pair, plan.rtt_count, place)
    raise ValueError(f"unknown test {test!r}; known: {', '.join(TESTS)}")


def headline(test: str, m: dict) -> str:
    if test.startswith("tcp"):
        extra = "".join(f", {label} {m[key]:{fmt}}" for key, label, fmt in (
            ("sender_on_cpu", "sender on CPU", ".2f"), ("sender_runq", "waiting", ".2f"),
            ("frames_per_wake", "frames/wake", ".1f"), ("syscalls_per_gb", "syscalls/GB", ".0f"))
            if key in m)
        return f"{m['gbps']:.2f} Gbit/s{extra}"
    if test == "udp64":
        return (f"{m['delivered_kpps']:.0f} kfps delivered, {m['received_kpps']:.0f} read, "
                f"sent {m['sent_kpps']:.0f}")
    if test == "udp64raw":
        return (f"{m['delivered_kpps']:.0f} kfps delivered, sent {m['sent_kpps']:.0f} "
                f"({m['refused']} refused), stopped at b {m['stopped']}")
    return f"median {m['median_us']:.1f} us, p99 {m['p99_us']:.1f} us"


def rep_order(names: list, rep: int) -> list:
    """The peers in the order repetition ``rep`` (from 1) measures them: ``names``
    rotated by rep - 1, so each peer comes first, second, ... equally often."""
    k = (rep - 1) % len(names) if names else 0
    return names[k:] + names[:k]


def _fmt_time(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 60}m{s % 60:02d}s"


def _setup_peers(plan: Plan, run: Run, registry, log) -> dict:
    pairs = {}
    ipv6 = any(t in IPV6_TESTS for t in plan.tests)
    for name in plan.peers:
        peer = PEERS[name]()
        run.peers[name] = {"description": peer.description}
        reason = peer.unavailable()
        if reason:
            run.peers[name].update(status="skipped", reason=reason)
            log(f"  {name}: skipped: {reason}")
            continue
        index = list(PEERS).index(name)
        try:
            a, b = (Endpoint(None, f"10.77.{index}.{host}/24",
                             netns_name=kernel.unique_name(f"tsbn{side}", 64),
                             cidr6=f"fd77:{index}::{host}/64" if ipv6 else "")
                    for side, host in (("a", 1), ("b", 2)))
            if not peer.creates_namespaces:
                for ep in (a, b):
                    ep.ns = kernel.NetNamespace(ep.netns_name, registry=registry)
            registry.register(f"peer {name}", peer.teardown)
            peer.setup(a, b, registry)
            for ns in (a.ns, b.ns) if not ipv6 else ():   # no IPv6 chatter in the counters
                ns.set_sysctl("net.ipv6.conf.all.disable_ipv6", 1)
                ns.set_sysctl("net.ipv6.conf.default.disable_ipv6", 1)
        except Exception as exc:
            peer.teardown()
            run.peers[name].update(status="failed", reason=f"setup: {exc}")
            log(f"  {name}: setup failed: {exc}")
            continue
        run.peers[name].update(peer.facts, status="ok")
        pairs[name] = loads.Pair(peer, a, b)
        log(f"  {name}: ready ({a.ns.name}/{a.ifname} <-> {b.ns.name}/{b.ifname})")
    return pairs


def hold_idle_pollers(pairs: dict, measured: str | None) -> list[str]:
    """Let only ``measured`` (None: none) of the peers that poll when idle run: the others
    are stopped, so their spinning threads take no core from the peer being measured.
    Returns the names held."""
    held = []
    for name, pair in pairs.items():
        if pair.peer.polls_when_idle:
            pair.peer.hold(name != measured)
            if name != measured:
                held.append(name)
    return held


def run_bench(plan: Plan, log=print, registry: kernel.CleanupRegistry | None = None) -> Run:
    """Measure ``plan``; returns every sample. Cleans up whatever happens;
    on KeyboardInterrupt returns what was measured with ``interrupted`` set."""
    for name in plan.peers:
        if name not in PEERS:
            raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    for test in plan.tests:
        if test not in TESTS:
            raise ValueError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    places = [placement_mod.parse(p) for p in plan.placements]
    if len({p.name for p in places}) != len(places):
        raise ValueError(f"a placement is given twice: {plan.placements}")
    registry = registry if registry is not None else kernel.registry
    run = Run(plan, placements=[p.as_dict() for p in places])
    tool = loads.tcp_tool(plan.tcp_tool) if any(t.startswith("tcp") for t in plan.tests) else None
    pairs: dict = {}
    try:
        log(f"setting up {len(plan.peers)} peers")
        for place in places:
            log(f"placement {place.describe()}")
        pairs = _setup_peers(plan, run, registry, log)
        schedule = [(rep, test, place, name) for rep in range(1, plan.reps + 1)
                    for test in plan.tests for place in places
                    for name in rep_order(list(pairs), rep)]
        expected = [plan.expected_seconds(t) for _, t, _, _ in schedule]
        started = time.monotonic()
        for i, (rep, test, place, name) in enumerate(schedule):
            done_expected = sum(expected[:i])
            scale = (time.monotonic() - started) / done_expected if done_expected else 1.0
            left = sum(expected[i:]) * scale
            where = f" {place.name:<9}" if len(places) > 1 else ""
            log(f"[{i + 1:>3}/{len(schedule)}] rep {rep}/{plan.reps}{where}  {name:<24}{test:<6}"
                f"~{_fmt_time(left)} left", end="  ", flush=True)
            sample = {"peer": name, "test": test, "rep": rep, "time": time.time(),
                      "placement": place.name}
            try:
                sample["held"] = hold_idle_pollers(pairs, name)
                sample["switch_threads_pinned"] = len(place.pin("switch", pairs[name].peer.switch_pids()))
                sample["metrics"] = _measure(pairs[name], test, plan, tool, place)
                log(headline(test, sample["metrics"]))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                sample["error"] = f"{type(exc).__name__}: {exc}"
                log(f"FAILED: {sample['error']}")
            run.samples.append(sample)
    except KeyboardInterrupt:
        run.interrupted = True
        log("\ninterrupted: cleaning up, keeping the samples measured so far")
    finally:
        for pair in pairs.values():          # continued, so that teardown can stop them
            if pair.peer.polls_when_idle:
                pair.peer.hold(False)
        failures = registry.cleanup()
        if failures:
            log(f"cleanup problems: {failures}")
    return run
