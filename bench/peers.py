"""Bench peers: what connects the two kernel namespaces of a measurement.

A peer is a plug-in with four parts: ``unavailable()`` (None, or why it cannot
run here), ``setup(a, b, registry)`` (connect ``a.ns`` and ``b.ns`` and leave
in each an interface named ``ep.ifname`` with ``ep.cidr``, up), ``teardown()``
and ``pids()`` (the switch's processes, whose CPU time the bench reads; empty
for kernel peers). Everything a peer creates goes through ``pyctl.kernel`` or
is recorded in the registry it is given, so the bench removes it even on
Ctrl-C. ``PEERS`` at the bottom lists them in table order.
"""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from pyctl import kernel
from pyctl.kernel import CleanupRegistry, NetNamespace

from bench import cbuild

TAP_TXQUEUELEN = 10000       # PLATFORM.md: the default 1,000 drops bursts
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

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]


@dataclass
class Peer:
    name: str = "peer"
    description: str = ""
    procs: list = field(default_factory=list)
    creates_namespaces = False      # True: setup makes (or has made) a.ns and b.ns itself

    def unavailable(self) -> str | None:
        return None

    def setup(self, a: Endpoint, b: Endpoint, registry: CleanupRegistry) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        for proc in reversed(self.procs):
            kernel.stop_process(proc)
        self.procs.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

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
    ep.ns.configure(ep.ifname, address=ep.cidr, txqueuelen=txqueuelen)


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


class MinimalForwarderPeer(TapProcessPeer):
    """bench/csrc/minifwd.c: one read and one write per frame, no lookups."""

    def __init__(self, vnet: bool):
        super().__init__("minimal-forwarder-vnet" if vnet else "minimal-forwarder",
                         "C, one read + one write per frame"
                         + (", virtio-net header + TSO" if vnet else ""))
        self.vnet = vnet

    def unavailable(self):
        try:
            cbuild.tool("minifwd")
        except cbuild.ToolUnavailable as exc:
            return str(exc)
        return None

    def command(self, tap_a, tap_b):
        return [cbuild.tool("minifwd")] + (["--vnet"] if self.vnet else []) + [tap_a, tap_b]


def _ovs(tso: bool) -> Peer:
    from bench.peer_ovs import OvsNetdevPeer    # it builds on the classes above
    return OvsNetdevPeer(tso=tso)


class TapswitchPeer(Peer):
    """tapswitch in the L3 configuration of the mission: one L2 with the
    switch's address .254, each namespace an L3 tenant owning its address,
    behind a TAP moved into its kernel namespace. Run as ``tapswitch run``
    from a generated config file."""

    creates_namespaces = True       # the daemon creates its ports' kernel namespaces

    def __init__(self, offloads: bool):
        super().__init__("tapswitch" if offloads else "tapswitch-nooffload",
                         "tapswitch daemon, L3 tenants" + (", vnet header + TSO" if offloads else ""))
        self.offloads = offloads
        self.workdir: str | None = None

    def unavailable(self):
        for module in ("pyctl.cli", "pyctl.daemon"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not there yet (the daemon is being built)"
        return None

    def config_text(self, a: Endpoint, b: Endpoint) -> str:
        net = a.cidr.rsplit(".", 1)[0]
        lines = [
            "[daemon]",
            f'socket = "{self.workdir}/control.sock"',
            f'socket_dir = "{self.workdir}/ns"',
            "",
            "[[namespace]]", 'name = "bench"', 'kind = "l2"', f'addresses = ["{net}.254/24"]', "",
        ]
        for tenant, ep in (("ta", a), ("tb", b)):
            lines += ["[[namespace]]", f'name = "{tenant}"', 'kind = "l3"', 'parent = "bench"',
                      f'addresses = ["{ep.cidr}"]', ""]
        for tenant, ep in (("ta", a), ("tb", b)):
            lines += ["[[port]]", f'name = "{ep.ifname}"', f'namespace = "{tenant}"',
                      f"txqueuelen = {TAP_TXQUEUELEN}", f'netns = "{ep.netns_name}"',
                      f'address = "{ep.cidr}"', f'gateway = "{net}.254"']
            if self.offloads:
                lines += ["vnet_hdr = true", 'offloads = ["csum", "tso4", "tso6"]']
            lines.append("")
        return "\n".join(lines)

    def setup(self, a, b, registry):
        self.workdir = tempfile.mkdtemp(prefix="tapswitch-bench-")
        workdir = self.workdir
        registry.register(f"directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
        a.ifname, b.ifname = kernel.unique_name("tsa"), kernel.unique_name("tsb")
        config = os.path.join(workdir, "bench.toml")
        with open(config, "w") as f:
            f.write(self.config_text(a, b))
        proc = self._start([sys.executable, "-m", "pyctl.cli", "run", config], registry,
                           stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        while not all(self._ready(ep) for ep in (a, b)):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = stop_and_read_stderr(proc)
                raise RuntimeError(f"tapswitch did not start: {err.strip()[-500:]}")
            time.sleep(0.05)


    @staticmethod
    def _ready(ep: Endpoint) -> bool:
        if ep.ns is None:
            if ep.netns_name not in kernel.list_netns():
                return False
            ep.ns = NetNamespace.attach(ep.netns_name)
        return ep.ns.has_link(ep.ifname) and ep.cidr in ep.ns.addresses(ep.ifname)


# In table order. To add a peer: subclass Peer (or TapProcessPeer for a
# process that opens two TAPs) and add a factory here.
PEERS = {
    "veth": VethPeer,
    "linux-bridge": LinuxBridgePeer,
    "naive-python": NaivePythonPeer,
    "minimal-forwarder": lambda: MinimalForwarderPeer(vnet=False),
    "minimal-forwarder-vnet": lambda: MinimalForwarderPeer(vnet=True),
    "ovs-netdev": lambda: _ovs(tso=False),
    "ovs-netdev-tso": lambda: _ovs(tso=True),
    # ---- tapswitch registration point: the daemon, with and without offloads.
    "tapswitch": lambda: TapswitchPeer(offloads=True),
    "tapswitch-nooffload": lambda: TapswitchPeer(offloads=False),
}
