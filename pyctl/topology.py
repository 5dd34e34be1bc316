"""Embedding tapswitch in a test rig: a topology of kernel network namespaces
hung on a switch that runs inside the calling process.

    with Topology() as topo:
        topo.add_address("init", "10.0.0.1/24")        # the switch's own address
        web = topo.tenant("web", "10.0.0.2/24")         # an L3, its TAP in a kernel netns
        db = topo.tenant("db", "10.0.0.3/24")
        topo.start()
        db.call(serve_once)  /  web.run(["ip", "addr"])  /  web.socket(...)
        topo.push("10.0.0.9/24", "db"); topo.destroy("db"); topo.counters()

The switch's packet loop runs on its own thread without the GIL; every
change made from the test goes to that thread between batches
(``Daemon.call``).  Leaving the ``with`` block (normally, by an exception or
by Ctrl-C) stops the loop and removes every TAP, kernel namespace and
socket the topology made.  Kernel objects get names unique to the topology
(a per-process tag plus a counter), so topologies in one process or in
several never collide.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import os
import shutil
import tempfile
import threading

from pyctl import errors, kernel
from pyctl.config import DaemonSettings
from pyctl.daemon import Daemon
from pyctl.model import Switch

__all__ = ["Topology", "Tenant"]

_serial = itertools.count()


@dataclasses.dataclass
class Tenant:
    """An L3 namespace of the switch with a real kernel stack behind its TAP."""
    topology: "Topology"
    name: str
    address: str                  # interface address, e.g. "10.0.0.2/24"
    netns_name: str
    port: str

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def netns(self) -> kernel.NetNamespace:
        return self.topology._netns_of(self)

    def run(self, argv, **kwargs):
        """Run a command inside the tenant's kernel namespace (subprocess.CompletedProcess)."""
        return self.netns.run(argv, **kwargs)

    def call(self, func, *args, timeout=60.0, **kwargs):
        """Run a picklable callable inside the tenant's kernel namespace; its result."""
        return self.netns.call(func, *args, timeout=timeout, **kwargs)

    def socket(self, *args, **kwargs):
        """A socket created inside the tenant's kernel namespace."""
        return self.netns.socket(*args, **kwargs)


class Topology:
    def __init__(self, *, batch_size=64, vnet_hdr=False, control=True, prefix="ts"):
        self.id = f"{kernel.process_tag()}{next(_serial):x}"[-8:]
        self.prefix = prefix
        self.switch = Switch()
        self.tenants: dict[str, Tenant] = {}
        self.vnet_hdr = vnet_hdr
        self.control = control
        self.batch_size = batch_size
        self.daemon: Daemon | None = None
        self._thread: threading.Thread | None = None
        self._rundir = None
        self._counter = itertools.count()
        self._error: BaseException | None = None

    # ------------------------------------------------------------ building

    def _apply(self, func):
        if self.daemon is None:
            with self.switch.transaction():
                return func(self.switch)

        def in_daemon():
            with self.daemon.change() as sw:
                return func(sw)
        return self.daemon.call(in_daemon)

    def l2(self, name, *addresses, parent="init"):
        """An L2 namespace (own address space and routes) with its own addresses."""
        def build(sw):
            ns = sw.create(name, kind="l2", parent=parent)
            for address in addresses:
                sw.add_address(name, address)
            return ns
        return self._apply(build)

    def tenant(self, name, address, *, parent="init", gateway=None, vnet_hdr=None,
               offloads=None, txqueuelen=None) -> Tenant:
        """An L3 namespace holding ``address`` (assigned and pushed in one step), its
        TAP moved into a fresh kernel namespace, configured and up, default route
        through the switch's own address on that subnet (``gateway``, found in the
        parent L2 when not given)."""
        iface = ipaddress.ip_interface(address)
        tag = next(self._counter)
        netns_name = f"{self.prefix}-{self.id}-{name}"[:64]
        port_name = kernel.unique_name(f"t{tag}")
        vnet = self.vnet_hdr if vnet_hdr is None else vnet_hdr

        def build(sw):
            gw = gateway if gateway is not None else self._gateway_for(sw, parent, iface)
            sw.create(name, kind="l3", parent=parent)
            sw.assign_and_push(str(iface), name)
            options = {"netns": netns_name, "address": str(iface), "vnet_hdr": vnet}
            if gw is not None:
                options["gateway"] = gw
            if vnet:
                options["offloads"] = list(offloads if offloads is not None else ["csum", "tso4", "tso6"])
            if txqueuelen is not None:
                options["txqueuelen"] = txqueuelen
            sw.add_port(port_name, name, options=options)
        self._apply(build)
        tenant = Tenant(self, name, str(iface), netns_name, port_name)
        self.tenants[name] = tenant
        return tenant

    @staticmethod
    def _gateway_for(sw, parent, iface):
        for text in sw.addresses(parent):
            own = ipaddress.ip_interface(str(text))
            if own.version == 4 and not own.ip.is_loopback and iface.ip in own.network:
                return str(own.ip)
        return None

    # ------------------------------------------------------------ live verbs

    def add_address(self, ns, address):
        return self._apply(lambda sw: sw.add_address(ns, address))

    def push(self, address, ns):
        return self._apply(lambda sw: sw.push(address, ns))

    def pull(self, address, ns):
        return self._apply(lambda sw: sw.pull(address, ns))

    def assign_and_push(self, address, ns):
        return self._apply(lambda sw: sw.assign_and_push(address, ns))

    def add_route(self, ns, dst, via=None, port=None):
        return self._apply(lambda sw: sw.add_route(ns, dst, via=via, port=port))

    def join(self, ns, group):
        return self._apply(lambda sw: sw.join(ns, group))

    def leave(self, ns, group):
        return self._apply(lambda sw: sw.leave(ns, group))

    def destroy(self, ns, recursive=False):
        result = self._apply(lambda sw: sw.destroy(ns, recursive=recursive))
        for name in [t for t in self.tenants if not self._exists(t)]:
            del self.tenants[name]
        return result

    def _exists(self, name):
        try:
            self.switch.namespace(name)
            return True
        except errors.NotFound:
            return False

    def counters(self):
        return self._read(lambda: self.daemon.counters())

    def stats(self):
        return self._read(lambda: self.daemon.stats())

    def _read(self, func):
        if self.daemon is None:
            raise errors.InvalidArgument("the topology is not started")
        return self.daemon.call(func)

    @property
    def socket_path(self):
        return None if self.daemon is None or self.daemon.control is None else self.daemon.settings.socket

    def _netns_of(self, tenant):
        def find():
            for entry in self.daemon.ports.open.values():
                if entry.name == tenant.port:
                    return entry.netns
            raise errors.NotFound(f"tenant {tenant.name!r} has no open port")
        return self._read(find)

    # ------------------------------------------------------------ life cycle

    def start(self):
        """Open the TAPs and kernel namespaces and start the packet loop thread."""
        if self.daemon is not None:
            return self
        self._rundir = tempfile.mkdtemp(prefix=f"tapswitch-{self.id}-")
        os.chmod(self._rundir, 0o700)
        settings = DaemonSettings(socket=os.path.join(self._rundir, "control.sock"),
                                  batch_size=self.batch_size)
        daemon = Daemon(self.switch, settings, out=open(os.devnull, "w"))
        try:
            daemon.start(control=self.control)
        except BaseException:
            daemon.out.close()
            shutil.rmtree(self._rundir, ignore_errors=True)
            raise
        self.daemon = daemon
        self._thread = threading.Thread(target=self._run, name=f"tapswitch-{self.id}", daemon=True)
        self._thread.start()
        daemon._thread = self._thread.ident      # calls from now on go to the loop thread
        return self

    def _run(self):
        try:
            self.daemon.run()
        except BaseException as exc:   # surfaced by close()
            self._error = exc

    def close(self):
        """Stop the loop, remove every TAP, kernel namespace and socket made."""
        daemon, self.daemon = self.daemon, None
        if daemon is None:
            return
        try:
            daemon.stop()
            if self._thread is not None:
                self._thread.join(timeout=10)
        finally:
            daemon.close(report=False)
            daemon.out.close()
            shutil.rmtree(self._rundir, ignore_errors=True)
        if self._error is not None:
            raise RuntimeError("the packet loop thread failed") from self._error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
