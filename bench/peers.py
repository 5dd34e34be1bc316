"""Bench peers: what connects the two kernel namespaces of a measurement.

A peer is a plug-in with four parts: ``unavailable()`` (None, or why it cannot
run here), ``setup(a, b, registry)`` (connect ``a.ns`` and ``b.ns`` and leave
in each an interface named ``ep.ifname`` with ``ep.cidr``, up), ``teardown()``
and ``pids()`` (the switch's processes, whose CPU time the bench reads; empty
for kernel peers); ``switch_pids()`` (the processes a placement pins, bench/placement.py)
and ``loop_stats()`` (the switch's own loop counters, where it has them) are optional;
``facts`` holds what setup learned (saved with the results). Everything a peer creates goes through ``pyctl.kernel`` or
is recorded in the registry it is given, so the bench removes it even on
Ctrl-C. ``PEERS`` at the bottom lists them in table order.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from pyctl import kernel

from pyctl.kernel import netns_exec
from pyctl.kernel import CleanupRegistry, NetNamespace

from bench import cbuild

TAP_TXQUEUELEN = 10000       # PLATFORM.md: the default 1,000 drops bursts
# Every name the bench gives a kernel namespace or a link starts with one of
# these (then pyctl.kernel.unique_name's process tag and counter), so a leak
# check can tell the bench's leftovers from other users'.
NETNS_PREFIXES = ("tsbna", "tsbnb", "tsbbr", "tsbov")
LINK_PREFIXES = ("bva", "bvb", "bri", "bro", "bta", "btb", "boa", "bob", "bsa", "bsb", "bsx")
READY_TIMEOUT = 15.0


class PeerUnavailable(RuntimeError):
    """The peer cannot run on this machine; the message says why and what to install."""


@dataclass
class Endpoint:
    """One side of a measurement: a namespace and the address it gets. For a
    peer that creates the namespaces itself (``creates_namespaces``), ``ns``
    is None until its setup attaches to the one named ``netns_name``."""
    ns: NetNamespace | None
    cidr: str                       # "10.77.3.1/24"
    ifname: str = ""                # the interface inside ns, set by the peer's setup
    netns_name: str = ""
    cidr6: str = ""                 # "fd77:3::1/64" when the plan measures over IPv6 too

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]

    @property
    def ip6(self) -> str:
        return self.cidr6.split("/")[0]

    @property
    def addresses(self):
        """What its interface gets: the IPv4 address, and the IPv6 one if any."""
        return [self.cidr, self.cidr6] if self.cidr6 else self.cidr


@dataclass
class Peer:
    name: str = "peer"
    description: str = ""
    procs: list = field(default_factory=list)
    facts: dict = field(default_factory=dict)   # what setup learned (e.g. the I/O backend), saved
    creates_namespaces = False      # True: setup makes (or has made) a.ns and b.ns itself
    polls_when_idle = False         # True: its threads spin with no traffic (PMD polling), so
                                    # the runner holds them (SIGSTOP) while others are measured

    def unavailable(self) -> str | None:
        return None

    def setup(self, a: Endpoint, b: Endpoint, registry: CleanupRegistry) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        for proc in reversed(self.procs):
            kernel.stop_process(proc)
        self.procs.clear()

    def hold(self, held: bool) -> None:
        """Stop (``held``) or continue the peer's processes: a peer that polls when idle
        would otherwise take a core from every other peer's measurement."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP if held else signal.SIGCONT)
            except ProcessLookupError:
                pass

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def switch_pids(self) -> list[int]:
        """The processes a placement pins to the switch's CPUs: all of the peer's."""
        return [p.pid for p in self.procs if p.poll() is None]

    def loop_stats(self) -> dict | None:
        """The switch's packet-loop counters now (None: it does not report them)."""
        return None

    def _start(self, argv, registry, ns: NetNamespace | None = None, **kw) -> subprocess.Popen:
        """Start a helper process (in ``ns`` or the host), recorded for cleanup."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        if ns is not None:
            proc = ns.popen(argv, **kw)
        else:
            proc = subprocess.Popen(argv, **kw)
            proc.registry_key = registry.register(
                f"process {proc.pid} ({self.name})", lambda: kernel.stop_process(proc))
        self.procs.append(proc)
        return proc


def configure(ep: Endpoint, txqueuelen: int | None = None) -> None:
    ep.ns.configure(ep.ifname, address=ep.addresses, txqueuelen=txqueuelen)


def wait_ready(proc: subprocess.Popen, what: str, timeout: float = READY_TIMEOUT,
               marker: str = "ready") -> None:
    """Wait for a line starting with ``marker`` on a helper's stdout; fail
    with its stderr if it exits or stays silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(marker):
                return
            if line == "":
                break
        elif proc.poll() is not None:
            break
    err = stop_and_read_stderr(proc)
    raise RuntimeError(f"{what} did not start (exit {proc.returncode}): {err.strip()[-500:]}")


def stop_and_read_stderr(proc: subprocess.Popen, grace: float = 3.0) -> str:
    """Stop a helper (if still running) and return what it wrote on stderr."""
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    except ValueError:            # streams already closed
        err = ""
    kernel.stop_process(proc)
    return err or ''


class VethPeer(Peer):
    """A veth pair straight between the two namespaces: the kernel's own path."""

    def __init__(self):
        super().__init__("veth", "veth pair between the namespaces (upper limit)")

    def setup(self, a, b, registry):
        a.ifname, b.ifname = kernel.create_veth(
            kernel.unique_name("bva"), kernel.unique_name("bvb"),
            netns_a=a.ns, netns_b=b.ns, registry=registry)
        configure(a)
        configure(b)


class LinuxBridgePeer(Peer):
    """Each namespace on a veth to a Linux bridge (in a third namespace)."""

    def __init__(self):
        super().__init__("linux-bridge", "veths to a Linux bridge")

    def setup(self, a, b, registry):
        mid = NetNamespace(prefix="tsbbr", registry=registry)
        br = kernel.create_bridge("br0", netns=mid, registry=registry)
        for ep in (a, b):
            ep.ifname, outer = kernel.create_veth(
                kernel.unique_name("bri"), kernel.unique_name("bro"),
                netns_a=ep.ns, netns_b=mid, registry=registry)
            kernel.set_master(outer, br, netns=mid)
            configure(ep)


class TapProcessPeer(Peer):
    """A forwarder process that opens two TAPs; the bench moves them into the
    namespaces and configures them there (pytun's calls fail after a move)."""

    def command(self, tap_a: str, tap_b: str) -> list[str]:
        raise NotImplementedError

    def setup(self, a, b, registry):
        taps = kernel.unique_name("bta"), kernel.unique_name("btb")
        proc = self._start(self.command(*taps), registry)
        wait_ready(proc, self.name)
        for ep, tap in zip((a, b), taps):
            ep.ifname = kernel.move_link(tap, ep.ns)
            configure(ep, txqueuelen=TAP_TXQUEUELEN)


class NaivePythonPeer(TapProcessPeer):
    def __init__(self):
        super().__init__("naive-python", "pytun + select TAP bridge in Python")

    def command(self, tap_a, tap_b):
        return [sys.executable, "-m", "bench.naive_bridge", tap_a, tap_b]


class CToolPeer(TapProcessPeer):
    """A TAP forwarder built from bench/csrc/TOOL.c (bench/cbuild.py)."""

    TOOL = ""

    def unavailable(self):
        try:
            cbuild.tool(self.TOOL)
        except cbuild.ToolUnavailable as exc:
            return str(exc)
        return None


class MinimalForwarderPeer(CToolPeer):
    """bench/csrc/minifwd.c: one read and one write per frame, no lookups."""

    TOOL = "minifwd"

    def __init__(self, vnet: bool):
        super().__init__("minimal-forwarder-vnet" if vnet else "minimal-forwarder",
                         "C, one read + one write per frame"
                         + (", virtio-net header + TSO" if vnet else ""))
        self.vnet = vnet

    def command(self, tap_a, tap_b):
        return [cbuild.tool(self.TOOL)] + (["--vnet"] if self.vnet else []) + [tap_a, tap_b]


class UringForwarderPeer(CToolPeer):
    """bench/csrc/urfwd.c: minifwd --vnet's forwarding with its reads (multishot, into
    provided buffers) and writes through one io_uring."""

    TOOL = "urfwd"

    def __init__(self):
        super().__init__("minimal-forwarder-uring",
                         "C, reads and writes through one io_uring, virtio-net header + TSO")

    def command(self, tap_a, tap_b):
        return [cbuild.tool(self.TOOL), tap_a, tap_b]


def _ovs(tso: bool, afxdp: bool = False) -> Peer:
    from bench.peer_ovs import OvsNetdevPeer    # it builds on the classes above
    return OvsNetdevPeer(tso=tso, afxdp=afxdp)


class TapswitchPeer(Peer):
    """tapswitch in the L3 configuration of the mission: one L2 ("bench", the
    switch's address .254), each namespace an L3 tenant of it owning its
    address, behind a TAP the daemon moves into that kernel namespace (which
    the daemon creates, so ``creates_namespaces``). Runs ``tapswitch run``
    on a generated config file; its stdout/stderr go to files in a private
    directory. The daemon's "ports up, I/O backend X" line is the ready
    signal; X is kept in ``facts`` and, when a backend was asked for, must
    name it. The CPU time the bench reads is the daemon process's (all its
    threads: packet loop, slow path, control socket)."""

    creates_namespaces = True
    BACKEND_KEY = "io_backend"      # [daemon] key that selects the packet loop's I/O backend
    STOP_GRACE = 15.0               # the daemon removes its TAPs and namespaces on SIGTERM

    TREE_ENV = "TAPSWITCH_BENCH_TREE"   # the tapswitch-tree peer's source tree

    def __init__(self, name: str, offloads: bool, backend: str | None = None,
                 poll_us: int = 0, tree: bool = False, kind: str = "tap",
                 ring_frames: int | None = None):
        super().__init__(name, "tapswitch daemon, L3 tenants of one L2"
                         + {"tap": "", "veth": ", veth ports (AF_PACKET rings)",
                            "xdp": ", xdp ports (AF_XDP)"}[kind]
                         + ("" if kind != "tap" else ", vnet header + TSO" if offloads
                            else ", no offloads")
                         + (f", io_backend={backend}" if backend else "")
                         + (f", poll_us={poll_us} (cpus = the pinned placement's switch CPU)"
                            if poll_us else "")
                         + (f", ring_frames={ring_frames}" if ring_frames else ""))
        self.offloads = offloads
        self.backend = backend
        self.kind = kind                # the tenants' port kind
        self.ring_frames = ring_frames  # their receive rings' size (a ring kind's)
        self.poll_us = poll_us
        self.wants_tree = tree
        self.tree = os.environ.get(self.TREE_ENV) if tree else None
        if tree:
            self.description += f", the daemon of the tree in ${self.TREE_ENV} ({self.tree})"
        self.workdir: str | None = None
        self.endpoints: tuple[Endpoint, ...] = ()

    def unavailable(self):
        if self.tree is not None and not os.path.isdir(os.path.join(self.tree, "pyctl")):
            return f"${self.TREE_ENV} does not name a tapswitch source tree: {self.tree!r}"
        if self.wants_tree and self.tree is None:
            return f"set ${self.TREE_ENV} to a built tapswitch tree (e.g. a worktree of main)"
        for module in ("pyctl.cli", "pyctl.daemon.daemon", "fastpath._core"):
            try:
                if importlib.util.find_spec(module) is None:
                    return f"{module} is missing (build with: pip install -e '.[test]')"
            except ImportError as exc:
                return f"{module} cannot be imported: {exc}"
        if self.kind != "tap":
            from pyctl.daemon.port_kinds import unavailable
            why = unavailable(self.kind)
            if why is not None:
                return f"port kind {self.kind}: {why}"
        if self.backend:          # is the backend built and allowed here, and can the config select it?
            import fastpath
            usable = fastpath.io_backends() if hasattr(fastpath, "io_backends") else ()
            if self.backend not in usable:
                return (f"I/O backend {self.backend!r} is not usable here "
                        f"(usable: {', '.join(usable) or 'none reported by this build'})")
            from pyctl import config as config_mod
            probe = Endpoint(None, "10.77.0.1/24", "tsprobe0", "tsprobe0")
            try:
                config_mod.load_config(self.config_text(probe, Endpoint(None, "10.77.0.2/24",
                                                                          "tsprobe1", "tsprobe1")))
            except config_mod.ConfigError as exc:
                return f"this tapswitch cannot select I/O backend {self.backend!r}: {exc.reason}"
        return None

    def config_text(self, a: Endpoint, b: Endpoint) -> str:
        net = a.cidr.rsplit(".", 1)[0]
        own, gateways = [f"{net}.254/24"], [f"{net}.254"]
        if a.cidr6:                   # the L2's IPv6 address on the same /64: the tenants' gateway
            net6 = a.cidr6.split("::", 1)[0]
            own.append(f"{net6}::fe/64")
            gateways.append(f"{net6}::fe")
        workdir = self.workdir or "/nonexistent"
        lines = ["[daemon]", f'socket = "{workdir}/control.sock"', f'socket_dir = "{workdir}/ns"']
        if self.backend:
            lines.append(f'{self.BACKEND_KEY} = "{self.backend}"')
        if self.poll_us:        # polling needs a packet thread with CPUs of its own
            from bench.placement import parse
            lines += [f"poll_us = {self.poll_us}", f"cpus = {list(parse('pinned').switch)}"]
        lines += ["", "[[namespace]]", 'name = "bench"', 'kind = "l2"',
                  f"addresses = {json.dumps(own)}", ""]
        for tenant, ep in (("ta", a), ("tb", b)):
            mine = [ep.cidr] + ([ep.cidr6] if ep.cidr6 else [])
            lines += ["[[namespace]]", f'name = "{tenant}"', 'kind = "l3"', 'parent = "bench"',
                      f"addresses = {json.dumps(mine)}", ""]
        for tenant, ep in (("ta", a), ("tb", b)):
            lines += ["[[port]]", f'name = "{ep.ifname}"', f'namespace = "{tenant}"',
                      f'netns = "{ep.netns_name}"', f"address = {json.dumps(ep.addresses)}",
                      f"gateway = {json.dumps(gateways)}"]
            if self.kind != "tap":
                lines.append(f'kind = "{self.kind}"')
                if self.ring_frames:
                    lines.append(f"ring_frames = {self.ring_frames}")
            else:
                lines.append(f"txqueuelen = {TAP_TXQUEUELEN}")
            if self.offloads and self.kind == "tap":
                lines += ["vnet_hdr = true", 'offloads = ["csum", "tso4", "tso6"]']
            lines.append("")
        return "\n".join(lines)

    @staticmethod
    def daemon_argv(config: str) -> list[str]:
        return [sys.executable, "-m", "pyctl.cli", "run", config]

    def daemon_where(self) -> dict:
        """The daemon's environment and working directory: a tree peer's runs in its
        tree (``python -m`` puts the working directory first on sys.path, before
        PYTHONPATH: started from another tree, it would run that tree's code)."""
        if not self.tree:
            return {}
        return {"env": dict(os.environ, PYTHONPATH=self.tree), "cwd": self.tree}

    def setup(self, a, b, registry):
        self.workdir = workdir = tempfile.mkdtemp(prefix="tapswitch-bench-")
        registry.register(f"directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
        self.endpoints = (a, b)
        a.ifname, b.ifname = kernel.unique_name("bsa"), kernel.unique_name("bsb")
        config = os.path.join(workdir, "bench.toml")
        with open(config, "w") as f:
            f.write(self.config_text(a, b))
        out_path, err_path = os.path.join(workdir, "daemon.out"), os.path.join(workdir, "daemon.err")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = self._start(self.daemon_argv(config), registry, stdout=out, stderr=err,
                               **self.daemon_where())
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            backend = self._ready_line(out_path)
            if backend is not None and all(self._ready(ep) for ep in (a, b)):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                self.teardown()
                with open(err_path) as f:
                    raise RuntimeError(f"tapswitch did not start (exit {proc.returncode}): "
                                       f"{f.read().strip()[-500:]}")
            time.sleep(0.05)
        self.facts = {"backend": backend, "daemon_pid": proc.pid}
        if self.backend and self.backend not in backend:
            raise RuntimeError(f"asked for I/O backend {self.backend!r}, the daemon runs {backend!r}")

    def loop_stats(self):
        """The daemon's packet-loop counters (``tapswitch ctl stats``), with
        ``ring_rx_drops``: the frames the kernel dropped because a ring port's receive
        ring was full (AF_PACKET's tp_drops; AF_XDP's rx_dropped + rx_ring_full)."""
        from pyctl.control.client import ControlClient
        with ControlClient(os.path.join(self.workdir, "control.sock")) as client:
            stats = client.call("stats")
        loop = dict(stats["loop"])
        rings = stats.get("rings") or {}
        if rings:
            loop["ring_rx_drops"] = sum(r.get("drops", 0) + r.get("rx_dropped", 0)
                                        + r.get("rx_ring_full", 0) for r in rings.values())
        return loop

    @staticmethod
    def _ready_line(path: str) -> str | None:
        """The I/O backend named in the daemon's "tapswitch: N ports up, I/O
        backend X, control socket S" line, or None before it is printed."""
        with open(path) as f:
            for line in f:
                if line.startswith("tapswitch:") and "I/O backend " in line:
                    return line.split("I/O backend ", 1)[1].split(",", 1)[0].strip()
        return None

    @staticmethod
    def _ready(ep: Endpoint) -> bool:
        if ep.ns is None:
            if ep.netns_name not in kernel.list_netns():
                return False
            ep.ns = NetNamespace.attach(ep.netns_name)
        return ep.ns.has_link(ep.ifname) and ep.cidr in ep.ns.addresses(ep.ifname)

    def teardown(self):
        """SIGTERM the daemon and give it time to remove its TAPs and
        namespaces; if it had to be killed, remove what it left behind."""
        for proc in self.procs:
            kernel.stop_process(proc, grace=self.STOP_GRACE)
        self.procs.clear()
        for ep in self.endpoints:
            if ep.ns is not None:
                ep.ns.remove()              # an attached handle: only closes our fd
            if ep.netns_name in kernel.list_netns():
                netns_exec.remove_named_netns(os.path.join(kernel.NETNS_RUN_DIR, ep.netns_name))
        self.endpoints = ()


# In table order. To add a peer: subclass Peer (or TapProcessPeer for a
# process that opens two TAPs) and add a factory here.
PEERS = {
    "veth": VethPeer,
    "linux-bridge": LinuxBridgePeer,
    "naive-python": NaivePythonPeer,
    "minimal-forwarder": lambda: MinimalForwarderPeer(vnet=False),
    "minimal-forwarder-vnet": lambda: MinimalForwarderPeer(vnet=True),
    # the same with reads through io_uring (issue 18: what that gives a TAP forwarder)
    "minimal-forwarder-uring": UringForwarderPeer,
    "ovs-netdev": lambda: _ovs(tso=False),
    "ovs-netdev-tso": lambda: _ovs(tso=True),
    "ovs-afxdp": lambda: _ovs(tso=False, afxdp=True),
    # tapswitch with the daemon's default I/O backend ("auto"; the one it ran
    # is in the results' peer facts), with and without offloads, and with the
    # backend chosen ([daemon] io_backend), with offloads.
    "tapswitch": lambda: TapswitchPeer("tapswitch", offloads=True),
    "tapswitch-nooffload": lambda: TapswitchPeer("tapswitch-nooffload", offloads=False),
    "tapswitch-epoll": lambda: TapswitchPeer("tapswitch-epoll", offloads=True, backend="epoll"),
    "tapswitch-uring": lambda: TapswitchPeer("tapswitch-uring", offloads=True, backend="io_uring"),
    # tapswitch with other port kinds (issue 17): veth pairs served through AF_PACKET rings
    # (virtio-net headers: TSO kept), and through AF_XDP (no super-frames).
    "tapswitch-veth": lambda: TapswitchPeer("tapswitch-veth", offloads=True, kind="veth"),
    "tapswitch-xdp": lambda: TapswitchPeer("tapswitch-xdp", offloads=False, kind="xdp"),
    # veth ports with receive rings 4x deeper than the default (port option ring_frames):
    # what the depth does to the frames lost while the packet thread is off its core
    "tapswitch-veth-ring4k": lambda: TapswitchPeer("tapswitch-veth-ring4k", offloads=True,
                                                   kind="veth", ring_frames=4096),
    # polling 50 us after each busy batch ([daemon] poll_us); it turns itself off where
    # the loop finds its core shared
    "tapswitch-poll": lambda: TapswitchPeer("tapswitch-poll", offloads=True, poll_us=50),
    # the daemon of another built tree ($TAPSWITCH_BENCH_TREE, e.g. main's worktree):
    # before/after comparisons in one run
    "tapswitch-tree": lambda: TapswitchPeer("tapswitch-tree", offloads=True, tree=True),
    "tapswitch-veth-tree": lambda: TapswitchPeer("tapswitch-veth-tree", offloads=True,
                                                 kind="veth", tree=True),
}
