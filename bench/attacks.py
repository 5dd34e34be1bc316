"""What a hostile tenant does, one function per attack, for the hostile-tenant benchmark
(bench/hostile.py) and the tests that check each attack is refused or counted.

An attack is a context manager function taking the ``Scene`` of bench/hostile.py (the
switch's topology, the attacker tenant and its control socket, the victims): it starts the
attack on entry, keeps it going in the background while the victims are measured, stops it
on exit and yields a dict that grows with what it did (the row's notes).  Register it with
``@attack("name")``; ``python -m bench.hostile --attacks name`` then runs it.

Attacks that need no topology (a control socket path is enough) are plain context
managers below the registry: ``control_socket_flood(path)``; the attacks run them in a
process of their own inside the attacker's kernel namespace (``Scene.attacker_process``:
``python -m bench.attacks control-socket-flood PATH`` prints "ready", attacks until its
stdin closes, then prints its notes as JSON).
"""
from __future__ import annotations

import contextlib
import errno
import json
import socket
import sys
import tempfile
import time

from pyctl.control.client import ControlClient

from bench.attack_frames import FLOODS, running

__all__ = ["ATTACKS", "attack", "control_socket_flood"]

ATTACKS: dict = {}


def attack(name: str):
    """Register ``func(scene)`` (a generator: set up, ``yield notes``, tear down) as ``name``."""
    def register(func):
        ATTACKS[name] = contextlib.contextmanager(func)
        return func
    return register


# ------------------------------------------------------------------ item 15

def _connect_nonblocking(path: str) -> socket.socket | None:
    """A connection to ``path`` if the server (or its backlog) takes it now, else None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EAGAIN, errno.ECONNREFUSED, errno.EMFILE, errno.ENFILE):
            return None
        raise
    return sock


@contextlib.contextmanager
def control_socket_flood(path: str, idle: int = 5000, persist: float = 3.0,
                         burst_every: float = 0.05, burst: int = 200):
    """``idle`` connections opened to the control socket ``path`` and left idle (a connect
    the backlog has no room for is tried again every millisecond for the first ``persist``
    seconds, once after that), and from a thread, every ``burst_every`` s, ``burst``
    connects closed at once, for the duration."""
    notes = {"idle_wanted": idle, "idle_open": 0, "refused": 0, "burst_connects": 0}
    held = []

    def bursts(stop):
        while not stop.wait(burst_every):
            for _ in range(burst):
                sock = _connect_nonblocking(path)
                if sock is None:
                    notes["refused"] += 1
                else:
                    notes["burst_connects"] += 1
                    sock.close()

    try:
        persist_until = time.monotonic() + persist
        for _ in range(idle):
            sock = _connect_nonblocking(path)
            while sock is None and time.monotonic() < persist_until:
                time.sleep(0.001)
                sock = _connect_nonblocking(path)
            if sock is None:
                notes["refused"] += 1
            else:
                held.append(sock)
        notes["idle_open"] = len(held)
        with running(bursts):
            yield notes
    finally:
        for sock in held:
            sock.close()


@attack("control-socket")
def control_socket(scene):
    """Item 15: thousands of idle connections and connect bursts on the attacker's own
    (L3) control socket, the daemon held to 1,024 open files as a service manager would."""
    scene.limit_daemon_files(1024)
    notes = {"daemon_cpu_ms_per_s_before": scene.daemon_cpu_ms_per_s()}
    proc = scene.attacker_process("control-socket-flood", scene.attacker_socket())
    try:
        notes["daemon_cpu_ms_per_s_under"] = scene.daemon_cpu_ms_per_s()
        notes["admin_ping_ms"] = scene.admin_ping_ms()
        yield notes
    finally:
        notes.update(scene.stop_attacker(proc))


# ------------------------------------------------------------------ items 10, 11, 14: floods

def _switch_figures(scene, namespace: str) -> dict:
    """What the switch counted that these attacks are about: the loop's refusals, the
    IGMP snooper's counters, ``namespace``'s refused slow-path frames."""
    with ControlClient(scene.admin) as admin:
        stats = admin.call("stats")
        counters = admin.call("counters", namespace=namespace)
    loop = stats["loop"]
    return {"slow_refused": loop["slow_refused"], "slow_ns_full": loop["slow_ns_full"],
            "slow_overflow": loop["slow_overflow"],
            "vnet_too_many_segments": loop["vnet_too_many_segments"],
            "tx_cost_held": loop["tx_cost_held"],
            "igmp": stats.get("igmp", {}),
            "ns_slow_refused": counters["namespaces"][namespace].get("slow_refused", {})}


def _delta(before: dict, after: dict) -> dict:
    out = {}
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()
                        if isinstance(v, int) and v - before.get(key, {}).get(k, 0)}
        else:
            out[key] = value - before.get(key, 0)
    return out


@contextlib.contextmanager
def _attacking(scene, *argv: str):
    """``python -m bench.attacks ARGV...`` in the attacker's namespace: its notes, what
    the switch counted meanwhile (``switch``), the admin socket's answer time under it."""
    before = _switch_figures(scene, scene.attacker.name)
    proc = scene.attacker_process(*argv)
    notes: dict = {}
    try:
        notes["admin_ping_ms"] = scene.admin_ping_ms()
        yield notes
    finally:
        notes.update(scene.stop_attacker(proc))
        notes["switch"] = _delta(before, _switch_figures(scene, scene.attacker.name))


@attack("slow-path-flood")
def slow_path_flood(scene):
    """Item 14: ARP requests for the gateway and pings to it, 20,000 frames/s; a victim's
    own pings to the gateway (its share of the slow path) are counted too."""
    x = scene.attacker
    with _attacking(scene, "slow-path-flood", x.port, x.ip, scene.gateway, "20000") as notes:
        notes["victim_gateway_pings_lost"] = scene.victim_gateway_pings_lost()
        yield notes


@attack("igmp-flood")
def igmp_flood(scene):
    """Item 10: 1,000 IGMPv3 reports of 100 new groups each, then the same again, at
    1,000 reports/s."""
    x = scene.attacker
    try:
        with _attacking(scene, "igmp-flood", x.port, x.ip, "1000", "100", "1000") as notes:
            yield notes
    finally:
        with ControlClient(scene.admin) as admin:
            notes["attacker_groups"] = len(admin.call("groups", namespace=x.name))


# ------------------------------------------------------------------ item 11: super-frames

@attack("super-frames")
def super_frames(scene):
    """Item 11: 50 super-frames a second whose virtio-net header says gso_size 1 (64,000
    segments each), from the attacker to a tenant behind a plain port (no offloads: the
    switch would cut them in software)."""
    x, sink = scene.attacker, scene.plain_tenant()
    with _attacking(scene, "super-frames", x.port, x.ip, sink.ip, "50") as notes:
        yield notes


# ------------------------------------------------------------------ a slow stack

SLOW_STACK_FILTERS = 20000      # tc u32 filters on the attacker's ingress, none matching
SLOW_STACK_RATE = 10000         # the accomplice's datagrams a second


def _port_cost(scene, namespace: str) -> dict:
    """What writing to ``namespace``'s port costs the packet thread (the ``ports`` verb)."""
    with ControlClient(scene.admin) as admin:
        port = admin.call("ports", namespace=namespace)[0]
    return {key: port.get(key)
            for key in ("tx_cost_us", "tx_cost_excess_us", "tx_cost_held", "tx_cost_drops")}


@attack("slow-stack")
def slow_stack(scene):
    """The attacker makes its own kernel stack slow -- 20,000 tc filters on its ingress,
    which every frame it receives walks, inside the switch's write to it -- and an
    accomplice (tenant z) sends it 10,000 ordinary datagrams a second.  The switch holds
    its port to its share of the packet thread (tx_cost_limit_us, fastpath/tx_cost.pxi)."""
    yield from _expensive_frames(scene, SLOW_STACK_FILTERS, every=1)


SPARSE_STACK_EVERY = 5          # one frame in this many walks the filters
SPARSE_STACK_FILTERS = 40000    # with 20,000 (~330 us a walk here with a warm cache) the
                                # frames' average sits at the limit: held or not by chance


@attack("sparse-stack")
def sparse_stack(scene):
    """slow-stack, but only one frame in five is expensive (40,000 filters): a filter
    first in line lets datagrams to UDP port 10 by at once, and the accomplice sends four
    of every five there.  Each expensive frame is a lone outlier to the port's clamped
    estimate, which stays under the limit; what the frames take beyond it adds up in the
    port's excess, and that holds it (fastpath/tx_cost.pxi, "Excess")."""
    yield from _expensive_frames(scene, SPARSE_STACK_FILTERS, every=SPARSE_STACK_EVERY)


def _expensive_frames(scene, filters: int, every: int):
    x, y = scene.attacker, scene.accomplice()
    lines = "".join(f"filter add dev {x.port} parent ffff: protocol ip prio 2 u32 match ip "
                    f"dst 1.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}/32 classid 1:1\n"
                    for k in range(filters))
    if every > 1:                   # frames to port 10 match first, walk none of them
        lines = (f"filter add dev {x.port} parent ffff: protocol ip prio 1 u32 match ip "
                 f"dport 10 0xffff classid 1:2\n") + lines
    with tempfile.NamedTemporaryFile("w", prefix="tapswitch-filters-", suffix=".tc") as batch:
        batch.write(lines)
        batch.flush()
        x.run(["tc", "qdisc", "add", "dev", x.port, "ingress"], timeout=30)
        try:
            x.run(["tc", "-batch", batch.name], timeout=120)
        except BaseException:
            x.run(["tc", "qdisc", "del", "dev", x.port, "ingress"], timeout=30, check=False)
            raise
    before = _switch_figures(scene, x.name)
    proc = scene.attacker_process("udp-flood", x.ip, str(SLOW_STACK_RATE), str(every),
                                  tenant=y)
    notes: dict = {"filters": filters, "expensive_every": every}
    try:
        yield notes
    finally:
        try:
            notes.update(scene.stop_attacker(proc))
            notes["switch"] = _delta(before, _switch_figures(scene, x.name))
            notes["attacker_port"] = _port_cost(scene, x.name)
            notes["victim_ports"] = {v.name: _port_cost(scene, v.name) for v in (scene.a, scene.b)}
        finally:
            x.run(["tc", "qdisc", "del", "dev", x.port, "ingress"], timeout=30, check=False)


# ------------------------------------------------------------------ item 13: control work

@contextlib.contextmanager
def control_churn(admin_path: str, tenant_path: str, namespace: str, address: str):
    """From two threads until left: push/pull cycles of ``address`` into ``namespace``
    over the admin socket, and ``counters`` over a tenant's own socket."""
    notes = {"push_pull_cycles": 0, "counters_reads": 0}

    def push_pull(stop):
        with ControlClient(admin_path) as admin:
            while not stop.is_set():
                admin.call("pull", address=address, namespace=namespace)
                admin.call("push", address=address, namespace=namespace)
                notes["push_pull_cycles"] += 1

    def counters(stop):
        with ControlClient(tenant_path) as tenant:
            while not stop.is_set():
                tenant.call("counters")
                notes["counters_reads"] += 1
    started = time.monotonic()
    try:
        with running(push_pull, counters):
            yield notes
    finally:
        seconds = time.monotonic() - started
        notes["push_pull_per_s"] = round(notes["push_pull_cycles"] / seconds, 1)
        notes["counters_per_s"] = round(notes["counters_reads"] / seconds, 1)


@attack("control-ops")
def control_ops(scene):
    """Item 13: push/pull cycles on the admin socket as fast as they are answered, and
    the attacker looping on ``counters`` on its own socket, both from the attacker's
    namespace (an L3 y without a port holds the address that moves)."""
    with ControlClient(scene.admin) as admin:
        admin.call("create", name="y", kind="l3", parent="init")
        admin.call("assign-and-push", address="10.0.0.9/24", namespace="y")
    try:
        with _attacking(scene, "control-churn", scene.admin, scene.attacker_socket(), "y",
                        "10.0.0.9/24") as notes:
            yield notes
    finally:
        with ControlClient(scene.admin) as admin:
            admin.call("destroy", namespace="y")


# ------------------------------------------------------------------ as a process

_PROCESS_ATTACKS = {"control-socket-flood": control_socket_flood, "control-churn": control_churn,
                    **FLOODS}


def main(argv: list[str]) -> int:
    """``python -m bench.attacks NAME ARG...``: attack until stdin closes, then the notes."""
    name, args = argv[0], argv[1:]
    with _PROCESS_ATTACKS[name](*args) as notes:
        print("ready", flush=True)
        sys.stdin.read()
    print(json.dumps(notes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
