"""Embedding tapswitch in a test rig: tenants with real kernel network stacks,
hung on a switch that runs inside the test process or as a child daemon.

    with Topology() as topo:                            # mode="thread" (default) or "process"
        topo.address_add("init", "10.0.0.1/24")         # the switch's own address (the gateway)
        web = topo.tenant("web", "10.0.0.2/24")         # an L3, its TAP in its own kernel netns
        db = topo.tenant("db", "10.0.0.3/24", "fd00::3/64")   # both families
                                                        # (cpus=[0]: its processes run there)
        topo.start()
        db.call(serve_once)  /  web.run(["ip", "addr"])  /  web.socket(...)
        topo.push("10.0.0.9/24", "db"); topo.destroy("db"); topo.counters()

Modes.  ``"thread"``: the switch (``pyctl.daemon.daemon.Daemon``) runs in this
process, its packet loop on its own thread, without the GIL while it
forwards; every change goes to that thread between batches.  ``"process"``:
the switch is a child ``python -m pyctl run CONFIG.toml`` driven through its
control socket (``pyctl.rig.topology_child``).  The API is the same; only
``topo.daemon`` (thread) and ``topo.process`` (process) differ.

Placement.  ``Topology(cpus=[1], poll_us=...)`` pins the switch's packet thread
(``[daemon] cpus`` / ``poll_us``); ``tenant(..., cpus=[0])`` runs the
processes started in that tenant (``run``, ``popen``, ``call``) on those CPUs.
docs/io.md says which placements suit bulk TCP and which latency.

Building works before ``start()`` (into a draft model, validated as you go)
and after it (live, each call atomic: a refused call leaves the switch and the
kernel as they were).  The verbs are the control socket's, with the same
names (``address-add`` -> ``address_add``) and arguments, made from the verb
table (``pyctl.rig.verbs``).  Configuring verbs return None; reads
(``addresses()``, ``routes()``, ``owner()``, ... , ``counters()``) return what
the control socket would, in both modes; ``namespaces()`` gives the names.
Starting and closing are in ``pyctl.rig.lifecycle``.

Leaving the ``with`` block -- normally, by an exception, or by Ctrl-C --
stops the switch and removes every TAP, kernel namespace, socket file and
process the topology made; ``close()`` does the same and may be called any
number of times.  Ctrl-C during ``start()``/``close()`` is held until the
kernel objects are consistent, then raised.  Afterwards the topology checks
that none of its kernel objects survived (a killed child cannot clean up):
it removes any it finds and raises ``TopologyLeak`` naming them.

Names of kernel objects are unique per topology: ``<prefix>-<id>-<tenant>``
for namespaces and ``t<n><tag><n>`` for TAPs, where the id and the tag hold a
random per-process tag (``pyctl.kernel.process_tag``) and a counter, so
topologies in one process or in several never collide; addresses live inside
the tenants' private namespaces, so two topologies may use the same ones.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import re
import threading

from pyctl import errors, kernel
from pyctl.model.state import ROOT_NAME
from pyctl.model.switch import Switch
from pyctl.rig.lifecycle import Lifecycle, TopologyLeak
from pyctl.rig.tenant import Tenant
from pyctl.rig.verbs import RigVerbs

__all__ = ["Topology", "Tenant", "TopologyLeak", "MODES", "KINDS"]


def _flatten(address, more):
    out = []
    for item in (address, *more):
        out.extend(item if isinstance(item, (list, tuple)) else [item])
    return out

log = logging.getLogger("tapswitch.topology")

MODES = ("thread", "process")
KINDS = ("tap", "veth", "xdp", "auto")      # of the tenants' ports (attach: an interface of yours)
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")
_serial = itertools.count()


class Topology(RigVerbs, Lifecycle):
    """A switch and its tenants, made and removed together (see the module docstring)."""

    def __init__(self, mode="thread", *, batch_size=64, vnet_hdr=False, control=True,
                 prefix="ts", start_timeout=30.0, stop_timeout=5.0, kind="tap", cpus=None,
                 poll_us=0):
        if mode not in MODES:
            raise errors.InvalidArgument(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "process" and not control:
            raise errors.InvalidArgument("a child daemon is driven through its control socket: "
                                         "mode='process' needs control=True")
        if kind not in KINDS:
            raise errors.InvalidArgument(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise errors.InvalidArgument(f"prefix must be 1-16 letters, digits, '-' or '_', "
                                         f"starting with a letter or digit: {prefix!r}")
        from pyctl.config.cpus import check_cpus, check_poll_us
        self.cpus = None if cpus is None else check_cpus(cpus)     # the packet thread's
        self.poll_us = check_poll_us(poll_us)
        self.mode = mode
        self.id = f"{kernel.process_tag()}{next(_serial):x}"
        self.prefix = prefix
        self.vnet_hdr, self.control, self.batch_size = vnet_hdr, control, batch_size
        self.kind = kind                    # the tenants' port kind unless tenant() says
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.tenants: dict[str, Tenant] = {}
        self.daemon = None                  # mode "thread": the running pyctl.daemon.daemon.Daemon
        self.leftovers: list[str] = []      # kernel objects close() had to remove itself
        self._switch = Switch()
        self._state = "new"                 # new -> started -> closed
        self._lock = threading.RLock()
        self._child = None                  # mode "process": topology_child.ChildDaemon
        self._thread: threading.Thread | None = None
        self._loop_error: BaseException | None = None
        self._rundir: str | None = None
        self._netns_names: set[str] = set()     # every kernel name this topology chose ...
        self._foreign: set[str] = set()         # ... minus those someone else had made first
        self._port_names: set[str] = set()
        self._handles: dict[str, kernel.NetNamespace] = {}
        self._processes: list = []          # Tenant.popen()'s, stopped by close()
        self._ports = itertools.count()

    def __repr__(self):
        return f"<Topology {self.id} mode={self.mode} {self._state}, tenants {sorted(self.tenants)}>"

    # ------------------------------------------------------------ state

    @property
    def started(self) -> bool:
        return self._state == "started"

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def switch(self) -> Switch:
        """The model: the draft before start(), the live one in thread mode.

        In process mode the live model is the child's: use the verbs here,
        ``addresses()``/``namespaces()`` or ``client()``."""
        if self.mode == "process" and self._state != "new":
            raise errors.NotSupported("in process mode the model lives in the child daemon")
        return self._switch

    @property
    def process(self):
        """The child daemon's subprocess.Popen (mode "process", once started)."""
        return None if self._child is None else self._child.proc

    @property
    def socket_path(self) -> str | None:
        """The admin control socket of the running switch (None without one)."""
        if self._state != "started":
            return None
        if self._child is not None:
            return self._child.socket
        return None if self.daemon is None or self.daemon.control is None else self.daemon.settings.socket

    def client(self):
        """A new ``ControlClient`` on the admin socket (close it when done)."""
        from pyctl.control.client import ControlClient
        if self.socket_path is None:
            raise errors.InvalidArgument("the topology has no control socket "
                                         "(not started, or control=False)")
        return ControlClient(self.socket_path)

    # ------------------------------------------------------------ applying changes

    def _live(self) -> bool:
        if self._state == "closed":
            raise errors.InvalidArgument(f"topology {self.id} is closed")
        return self._state == "started"

    def _in_model(self, func):
        """``func(switch)`` as one transaction: on the draft, or in the daemon's thread."""
        if not self._live():
            with self._switch.transaction():
                return func(self._switch)
        self._check_loop()

        def in_daemon():
            with self.daemon.change() as sw:
                return func(sw)
        return self.daemon.call(in_daemon)

    def _check_loop(self):
        if self._thread is not None and not self._thread.is_alive():
            raise RuntimeError("the packet loop thread has stopped") from self._loop_error

    def _do(self, steps):
        """Apply ``steps``, all or nothing: ``[(model_func, (verb, args), undo), ...]``,
        ``undo`` a list of (verb, args) that takes the step back in a child daemon."""
        if not self._live() or self._child is None:
            def all_steps(sw):
                for func, _, _ in steps:
                    func(sw)
            self._in_model(all_steps)
            return
        done = []
        try:
            for _, (verb, args), undo in steps:
                self._child.call(verb, **args)
                done.append(undo)
        except BaseException:
            for undo in reversed(done):
                for verb, args in undo:
                    try:
                        self._child.call(verb, **args)
                    except Exception as exc:   # keep undoing; the first error is raised
                        log.warning("could not undo %s %s: %s", verb, args, exc)
            raise

    def _read(self, func, verb, **args):
        if self._child is not None and self._live():
            return self._child.call(verb, **args)
        if self._live():
            self._check_loop()
            return self.daemon.call(lambda: func(self._switch))
        return func(self._switch)

    # ------------------------------------------------------------ building

    def l2(self, name, *addresses, parent=ROOT_NAME):
        """An L2 namespace (its own address space and routes) holding ``addresses``."""
        steps = [(lambda sw: sw.create(name, kind="l2", parent=parent),
                  ("create", {"name": name, "kind": "l2", "parent": parent}),
                  [("destroy", {"namespace": name, "recursive": True})])]
        steps += [(lambda sw, a=a: sw.address_add(name, a),
                   ("address-add", {"namespace": name, "address": a}), []) for a in addresses]
        self._do(steps)
        return name

    def tenant(self, name, address, *more, parent=ROOT_NAME, gateway=None, vnet_hdr=None,
               offloads=None, txqueuelen=None, mtu=None, kind=None, dhcp=False,
               dhcp_server=False, cpus=None, ring_frames=None) -> Tenant:
        """An L3 namespace holding ``address`` (and ``more``: one address, a list, or
        several; IPv4 and IPv6 mixed, each assigned and pushed in one step), its port (of
        ``kind``, default the topology's: a TAP, or a veth pair's end) in a new kernel
        namespace, configured and up, with a default route per family through
        ``gateway`` (one address or a list): by default the parent L2's own address on
        each family's first subnet (none: no default route of that family).
        ``dhcp_server``: its port is a DHCP server the L2 trusts (port option
        ``dhcp_server``).  ``cpus``: where the processes started in it (``run``,
        ``popen``, ``call``) run::

            topo.tenant("web", "10.0.0.2/24", "fd00::2/64")
            topo.tenant("db", ["10.0.0.3/24", "fd00::3/64"], gateway=["10.0.0.1", "fd00::1"])

        ``dhcp=True``: the port gets no address (nor route): the switch serves it by
        DHCP, and DHCP clients run in the tenant take the IPv4 addresses from its DHCPv4
        server, the IPv6 ones from its DHCPv6 server (its router advertisements say so).  ``vnet_hdr``, ``offloads`` and
        ``txqueuelen`` are a TAP's; ``ring_frames`` a ring kind's (port option)."""
        interfaces = [ipaddress.ip_interface(a) for a in _flatten(address, more)]
        if not interfaces:
            raise errors.InvalidArgument(f"tenant {name!r} needs at least one address")
        if cpus is not None:
            from pyctl.config.cpus import check_cpus
            cpus = check_cpus(cpus)
        netns_name = f"{self.prefix}-{self.id}-{name}"
        port_name = kernel.unique_name(f"t{next(self._ports)}")
        kind = self.kind if kind is None else kind
        vnet = (self.vnet_hdr if vnet_hdr is None else vnet_hdr) if kind == "tap" else vnet_hdr
        if gateway is None:
            gateway = self._gateways_for(parent, interfaces)
        texts = [str(i) for i in interfaces]
        options = {"netns": netns_name}
        if not dhcp:
            options["address"] = texts[0] if len(texts) == 1 else texts
            if gateway:
                options["gateway"] = gateway
        if kind != "tap":
            options["kind"] = kind
        if vnet is not None:
            options["vnet_hdr"] = vnet
        if vnet:
            options["offloads"] = list(offloads if offloads is not None else ["csum", "tso4", "tso6"])
        elif offloads is not None:
            options["offloads"] = list(offloads)
        if txqueuelen is not None:
            options["txqueuelen"] = txqueuelen
        if mtu is not None:
            options["mtu"] = mtu
        if ring_frames is not None:
            options["ring_frames"] = ring_frames
        if dhcp_server:
            options["dhcp_server"] = True
        self._claim(netns_name)
        self._port_names.add(port_name)
        self._l3_with_port(name, parent, texts, port_name, options)
        tenant = Tenant(self, name, texts[0], netns_name, port_name, parent, kind=kind,
                        addresses=tuple(texts), cpus=cpus)
        self.tenants[name] = tenant
        return tenant

    def attach(self, name, interface, address, *more, parent=ROOT_NAME, lease_time=None,
               ring_frames=None) -> str:
        """An L3 namespace holding ``address`` (and ``more``, as ``tenant`` takes them;
        assigned and pushed in one step) served through ``interface``, which exists
        already in the switch's namespace (a VM's TAP that its emulator holds): a port of
        kind attach, neither moved nor configured; the endpoint behind it takes its IPv4
        address from the switch's DHCP server (leases of ``lease_time`` seconds).
        ``ring_frames``: its receive ring's size (port option).  Returns the namespace's
        name."""
        texts = [str(ipaddress.ip_interface(a)) for a in _flatten(address, more)]
        if not texts:
            raise errors.InvalidArgument(f"attached L3 {name!r} needs at least one address")
        options = {"kind": "attach"}
        if lease_time is not None:
            options["dhcp_lease_time"] = lease_time
        if ring_frames is not None:
            options["ring_frames"] = ring_frames
        self._l3_with_port(name, parent, texts, interface, options)
        return name

    def _l3_with_port(self, name, parent, texts, port_name, options):
        """Create L3 ``name`` under ``parent`` holding the addresses ``texts`` (each
        assigned and pushed) and its port ``port_name``: all or nothing (``_do``)."""
        steps = [(lambda sw: sw.create(name, kind="l3", parent=parent),
                  ("create", {"name": name, "kind": "l3", "parent": parent}),
                  [("destroy", {"namespace": name})])]
        steps += [(lambda sw, t=text: sw.assign_and_push(t, name),
                   ("assign-and-push", {"address": text, "namespace": name}),
                   [("pull", {"address": text, "namespace": name}),
                    ("address-del", {"namespace": parent, "address": text})]) for text in texts]
        steps.append((lambda sw: sw.port_add(port_name, name, options=options),
                      ("port-add", {"name": port_name, "namespace": name, "options": options}),
                      [("port-del", {"name": port_name})]))
        self._do(steps)

    def _claim(self, netns_name):
        """Record a kernel namespace name as ours; one that exists already is
        someone else's: refused here, and never removed by close()."""
        if netns_name in kernel.list_netns():
            raise errors.AlreadyExists(f"kernel network namespace {netns_name!r} exists already")
        self._netns_names.add(netns_name)

    def _mark_foreign(self):
        """Names made by someone else since they were claimed (the switch will refuse them)."""
        self._foreign |= self._netns_names & set(kernel.list_netns())

    def _gateways_for(self, parent, interfaces):
        """Per family, the parent's own address on the subnet of that family's first
        address: one string, a list of two, or None."""
        own = [ipaddress.ip_interface(text) for text in self.addresses(parent)]
        found = []
        for version in (4, 6):
            first = next((i for i in interfaces if i.version == version), None)
            gw = None if first is None else next(
                (o.ip for o in own if o.version == version and not o.ip.is_loopback
                 and first.ip in o.network), None)
            if gw is not None:
                found.append(str(gw))
        return found[0] if len(found) == 1 else (found or None)

    # ------------------------------------------------------------ verbs of its own
    # The other verbs come from the verb table (pyctl.rig.verbs).

    def destroy(self, namespace, recursive=False):
        """Destroy a namespace (an L3's addresses go back to its parent, its TAP and
        kernel namespace are removed)."""
        self._change("destroy", {"namespace": namespace, "recursive": recursive})
        alive = set(self.namespaces())
        for name in [t for t in self.tenants if t not in alive]:
            tenant = self.tenants.pop(name)
            handle = self._handles.pop(tenant.netns_name, None)
            if handle is not None:
                handle.remove()

    def namespaces(self) -> list[str]:
        """Names of every namespace, parents first."""
        return [ns["name"] for ns in self._query("namespaces", {})]

    def counters(self, namespace=None, port=None, format=None):
        """The switch's packet and drop counters, by namespace and port name (``namespace``:
        that one and its ports; ``port``: that port; ``format="prometheus"``: as text)."""
        return self._running_read(
            lambda: self.daemon.counters(namespace=namespace, port=port, format=format),
            "counters", namespace=namespace, port=port, format=format)

    def stats(self):
        """The packet loop's, the slow path's and the IGMP snooper's counters."""
        return self._running_read(lambda: self.daemon.stats(), "stats")

    def _running_read(self, func, verb, **args):
        if not self._live():
            raise errors.InvalidArgument("the topology is not started")
        if self._child is not None:
            return self._child.call(verb, **args)
        self._check_loop()
        return self.daemon.call(func)

    def _netns_of(self, tenant):
        if not self._live():
            raise errors.InvalidArgument(f"tenant {tenant.name!r} has no kernel namespace "
                                         f"until the topology is started")
        if self.tenants.get(tenant.name) is not tenant:
            raise errors.NotFound(f"tenant {tenant.name!r} was destroyed")
        with self._lock:
            handle = self._handles.get(tenant.netns_name)
            if handle is None:
                handle = self._handles[tenant.netns_name] = kernel.NetNamespace.attach(tenant.netns_name)
            return handle
