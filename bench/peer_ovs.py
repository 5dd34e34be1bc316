"""Bench peer: Open vSwitch's userspace datapath (datapath_type=netdev) with
the two namespaces on its TAP ports, without or with userspace TSO; or
(``ovs-afxdp``) on veth pairs whose other ends are its AF_XDP ports (type
afxdp, XDP mode best-effort: native on veth), polled by its PMD threads.

The suite runs its own private OVS (Debian package ``openvswitch-switch``),
never the system's: a fresh database in a temporary directory, an
``ovsdb-server`` listening on a socket there, and ``ovs-vswitchd`` started
inside a namespace of its own so that its TAPs (and the datapath's internal
``ovs-netdev`` TAP) never collide with another instance. Steps:

    ovsdb-tool create DIR/conf.db /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server DIR/conf.db --remote=punix:DIR/db.sock ...
    ovs-vsctl --no-wait init [-- set Open_vSwitch . other_config:userspace-tso-enable=true]
    ovs-vswitchd unix:DIR/db.sock ...                      (inside its namespace)
    ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev
    ovs-vsctl add-port br0 TAP -- set interface TAP type=tap      (x2)

then each TAP is moved into its endpoint's namespace and configured there.
The bridge forwards with the NORMAL action (MAC learning), as a user would.
For afxdp: a veth pair per endpoint, one end in ovs-vswitchd's namespace added
with ``type=afxdp options:xdp-mode=best-effort``, the other moved to the
endpoint.  OVS builds without AF_XDP refuse the type: the peer is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from pyctl import kernel
from pyctl.kernel import NetNamespace, ethtool

from bench.peers import TAP_TXQUEUELEN, Peer, configure

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd")


class OvsNetdevPeer(Peer):
    def __init__(self, tso: bool, afxdp: bool = False):
        super().__init__("ovs-afxdp" if afxdp else "ovs-netdev-tso" if tso else "ovs-netdev",
                         "Open vSwitch userspace datapath over "
                         + ("AF_XDP on veth (PMD threads)" if afxdp else "TAP")
                         + (", userspace TSO" if tso else ""))
        self.tso = tso
        self.afxdp = afxdp
        self.polls_when_idle = afxdp        # its PMD threads spin on the AF_XDP rings
        self.dir = ""
        self.vswitchd: subprocess.Popen | None = None

    def unavailable(self):
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing or not os.path.exists(SCHEMA):
            return ("Open vSwitch is not installed (apt-get install openvswitch-switch); "
                    f"missing: {', '.join(missing) or SCHEMA}")
        return None

    def _vsctl(self, *args, wait=True):
        argv = ["ovs-vsctl", f"--db=unix:{self.dir}/db.sock", "--timeout=20"]
        if not wait:
            argv.append("--no-wait")
        proc = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"ovs-vsctl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def setup(self, a, b, registry):
        self.dir = tempfile.mkdtemp(prefix="tapswitch-bench-ovs-")
        workdir = self.dir
        registry.register(f"directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
        env = dict(os.environ, OVS_RUNDIR=workdir, OVS_DBDIR=workdir, OVS_LOGDIR=workdir,
                   OVS_SYSCONFDIR=workdir)
        subprocess.run(["ovsdb-tool", "create", f"{workdir}/conf.db", SCHEMA],
                       check=True, capture_output=True, timeout=30)
        self._start(["ovsdb-server", f"{workdir}/conf.db", f"--remote=punix:{workdir}/db.sock",
                     f"--unixctl={workdir}/ovsdb-server.ctl",
                     f"--log-file={workdir}/ovsdb-server.log"], registry,
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_socket(f"{workdir}/db.sock")
        self._vsctl("init", wait=False)
        if self.tso:
            self._vsctl("set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true",
                        wait=False)
        mid = NetNamespace(prefix="tsbov", registry=registry)
        self.vswitchd = self._start(
            ["ovs-vswitchd", f"unix:{workdir}/db.sock", f"--unixctl={workdir}/vswitchd.ctl",
             f"--log-file={workdir}/ovs-vswitchd.log"], registry, ns=mid,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        if self.afxdp:
            self._afxdp_ports(a, b, mid, registry)
            return
        taps = kernel.unique_name("boa"), kernel.unique_name("bob")
        for tap in taps:
            self._vsctl("add-port", "br0", tap, "--", "set", "interface", tap, "type=tap")
        for ep, tap in zip((a, b), taps):
            ep.ifname = kernel.move_link(tap, ep.ns, src=mid)
            configure(ep, txqueuelen=TAP_TXQUEUELEN)

    def _afxdp_ports(self, a, b, mid, registry):
        for ep, tag in ((a, "boa"), (b, "bob")):
            ep.ifname, outer = kernel.create_veth(kernel.unique_name(tag), kernel.unique_name("bsx"),
                                                  netns_a=ep.ns, netns_b=mid, registry=registry)
            mid.link_up(outer)
            for feature in ("tx-checksum", "tso", "gso"):    # AF_XDP carries no partial checksums
                ethtool.set_feature(ep.ifname, feature, False, netns=ep.ns)
            self._vsctl("add-port", "br0", outer, "--", "set", "interface", outer, "type=afxdp",
                        "options:xdp-mode=best-effort", "options:n_rxq=1")
            configure(ep)

    def _wait_for_socket(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"ovsdb-server did not start; see {self.dir}/ovsdb-server.log")
            time.sleep(0.02)

    def pids(self):
        alive = self.vswitchd is not None and self.vswitchd.poll() is None
        return [self.vswitchd.pid] if alive else []
