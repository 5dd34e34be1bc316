"""Embedding tapswitch in a test rig: tenants with real kernel network stacks,
hung on a switch that runs inside the test process or as a child daemon.

    with Topology() as topo:                            # mode="thread" (default) or "process"
        topo.add_address("init", "10.0.0.1/24")         # the switch's own address (the gateway)
        web = topo.tenant("web", "10.0.0.2/24")         # an L3, its TAP in its own kernel netns
        db = topo.tenant("db", "10.0.0.3/24")
        topo.start()
        db.call(serve_once)  /  web.run(["ip", "addr"])  /  web.socket(...)
        topo.push("10.0.0.9/24", "db"); topo.destroy("db"); topo.counters()

Modes.  ``"thread"``: the switch (``pyctl.daemon.daemon.Daemon``) runs in this
process, its packet loop on its own thread, without the GIL while it
forwards; every change goes to that thread between batches.  ``"process"``:
the switch is a child ``python -m pyctl run CONFIG.toml`` driven through its
control socket (``pyctl.rig.topology_child``).  The API is the same; only
``topo.daemon`` (thread) and ``topo.process`` (process) differ.

Building works before ``start()`` (into a draft model, validated as you go)
and after it (live, each call atomic: a refused call leaves the switch and the
kernel as they were).  Live verbs return None; read state with
``addresses()``, ``namespaces()``, ``counters()``.

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

import atexit
import contextlib
import dataclasses
import ipaddress
import itertools
import logging
import os
import re
import shutil
import signal
import tempfile
import threading

from pyctl import errors, kernel
from pyctl.model.switch import Switch
from pyctl.model.state import ROOT_NAME

__all__ = ["Topology", "Tenant", "TopologyLeak", "MODES"]

log = logging.getLogger("tapswitch.topology")

MODES = ("thread", "process")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")
_serial = itertools.count()
_open: set = set()            # started, not yet closed: closed at exit if the caller forgot


class TopologyLeak(errors.TapswitchError):
    """Kernel objects of a closed topology were still there (they have been removed)."""

    code = "EBUSY"


@atexit.register
def _close_forgotten():
    for topo in list(_open):
        with contextlib.suppress(Exception):
            topo.close()


@contextlib.contextmanager
def _sigint_held():
    """Hold Ctrl-C while kernel objects are made or removed; deliver it afterwards.

    Yields an Event that is set when a Ctrl-C arrived (long waits poll it and
    give up early).  Only the main thread receives signals: elsewhere this
    holds nothing."""
    arrived = threading.Event()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is None):     # not installed from Python
        yield arrived
        return
    previous = signal.signal(signal.SIGINT, lambda *_: arrived.set())
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)
    if arrived.is_set():
        if previous is signal.default_int_handler:
            raise KeyboardInterrupt
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)


@dataclasses.dataclass
class Tenant:
    """An L3 namespace of the switch with a real kernel stack behind its TAP."""
    topology: "Topology"
    name: str
    address: str                  # interface address, e.g. "10.0.0.2/24"
    netns_name: str               # the kernel network namespace its TAP lives in
    port: str                     # the TAP's name
    parent: str = ROOT_NAME

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def netns(self) -> kernel.NetNamespace:
        """A handle on the tenant's kernel namespace (the topology started)."""
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
    """A switch and its tenants, made and removed together (see the module docstring)."""

    def __init__(self, mode="thread", *, batch_size=64, vnet_hdr=False, control=True,
                 prefix="ts", start_timeout=30.0, stop_timeout=5.0):
        if mode not in MODES:
            raise errors.InvalidArgument(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "process" and not control:
            raise errors.InvalidArgument("a child daemon is driven through its control socket: "
                                         "mode='process' needs control=True")
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise errors.InvalidArgument(f"prefix must be 1-16 letters, digits, '-' or '_', "
                                         f"starting with a letter or digit: {prefix!r}")
        self.mode = mode
        self.id = f"{kernel.process_tag()}{next(_serial):x}"
        self.prefix = prefix
        self.vnet_hdr, self.control, self.batch_size = vnet_hdr, control, batch_size
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
        steps += [(lambda sw, a=a: sw.add_address(name, a),
                   ("address-add", {"namespace": name, "address": a}), []) for a in addresses]
        self._do(steps)
        return name

    def tenant(self, name, address, *, parent=ROOT_NAME, gateway=None, vnet_hdr=None,
               offloads=None, txqueuelen=None, mtu=None) -> Tenant:
        """An L3 namespace holding ``address`` (assigned and pushed in one step), its
        TAP in a new kernel namespace, configured and up, with a default route
        through ``gateway``: by default the parent L2's own address on that subnet
        (none: no default route)."""
        iface = ipaddress.ip_interface(address)
        netns_name = f"{self.prefix}-{self.id}-{name}"
        port_name = kernel.unique_name(f"t{next(self._ports)}")
        vnet = self.vnet_hdr if vnet_hdr is None else vnet_hdr
        if gateway is None:
            gateway = self._gateway_for(parent, iface)
        options = {"netns": netns_name, "address": str(iface), "vnet_hdr": vnet}
        if gateway is not None:
            options["gateway"] = str(gateway)
        if vnet:
            options["offloads"] = list(offloads if offloads is not None else ["csum", "tso4", "tso6"])
        if txqueuelen is not None:
            options["txqueuelen"] = txqueuelen
        if mtu is not None:
            options["mtu"] = mtu
        self._claim(netns_name)
        self._port_names.add(port_name)
        self._do([
            (lambda sw: sw.create(name, kind="l3", parent=parent),
             ("create", {"name": name, "kind": "l3", "parent": parent}),
             [("destroy", {"namespace": name})]),
            (lambda sw: sw.assign_and_push(str(iface), name),
             ("assign-and-push", {"address": str(iface), "namespace": name}),
             [("pull", {"address": str(iface), "namespace": name}),
              ("address-del", {"namespace": parent, "address": str(iface)})]),
            (lambda sw: sw.add_port(port_name, name, options=options),
             ("port-add", {"name": port_name, "namespace": name, "options": options}),
             [("port-del", {"name": port_name})]),
        ])
        tenant = Tenant(self, name, str(iface), netns_name, port_name, parent)
        self.tenants[name] = tenant
        return tenant

    def _claim(self, netns_name):
        """Record a kernel namespace name as ours; one that exists already is
        someone else's: refused here, and never removed by close()."""
        if netns_name in kernel.list_netns():
            raise errors.AlreadyExists(f"kernel network namespace {netns_name!r} exists already")
        self._netns_names.add(netns_name)

    def _mark_foreign(self):
        """Names made by someone else since they were claimed (the switch will refuse them)."""
        self._foreign |= self._netns_names & set(kernel.list_netns())

    def _gateway_for(self, parent, iface):
        for text in self.addresses(parent):
            own = ipaddress.ip_interface(text)
            if own.version == 4 and not own.ip.is_loopback and iface.ip in own.network:
                return str(own.ip)
        return None

    # ------------------------------------------------------------ live verbs

    def add_address(self, ns, address):
        self._do([(lambda sw: sw.add_address(ns, address),
                   ("address-add", {"namespace": ns, "address": address}), [])])

    def del_address(self, ns, address):
        self._do([(lambda sw: sw.del_address(ns, address),
                   ("address-del", {"namespace": ns, "address": address}), [])])

    def push(self, address, ns):
        self._do([(lambda sw: sw.push(address, ns),
                   ("push", {"address": address, "namespace": ns}), [])])

    def pull(self, address, ns):
        self._do([(lambda sw: sw.pull(address, ns),
                   ("pull", {"address": address, "namespace": ns}), [])])

    def assign_and_push(self, address, ns):
        self._do([(lambda sw: sw.assign_and_push(address, ns),
                   ("assign-and-push", {"address": address, "namespace": ns}), [])])

    def add_route(self, ns, dst, via=None, port=None):
        self._do([(lambda sw: sw.add_route(ns, dst, via=via, port=port),
                   ("route-add", {"namespace": ns, "prefix": dst, "via": via, "port": port}), [])])

    def join(self, ns, group):
        self._do([(lambda sw: sw.join(ns, group),
                   ("join", {"group": group, "namespace": ns}), [])])

    def leave(self, ns, group):
        self._do([(lambda sw: sw.leave(ns, group),
                   ("leave", {"group": group, "namespace": ns}), [])])

    def destroy(self, ns, recursive=False):
        """Destroy a namespace (an L3's addresses go back to its parent, its TAP and
        kernel namespace are removed)."""
        self._do([(lambda sw: sw.destroy(ns, recursive=recursive),
                   ("destroy", {"namespace": ns, "recursive": recursive}), [])])
        alive = set(self.namespaces())
        for name in [t for t in self.tenants if t not in alive]:
            tenant = self.tenants.pop(name)
            handle = self._handles.pop(tenant.netns_name, None)
            if handle is not None:
                handle.remove()

    # ------------------------------------------------------------ reading

    def namespaces(self) -> list[str]:
        """Names of every namespace, parents first."""
        found = self._read(lambda sw: [{"name": ns.name} for ns in sw.namespaces()], "namespaces")
        return [ns["name"] for ns in found]

    def addresses(self, ns) -> list[str]:
        """A namespace's addresses (loopback included) as ``"a.b.c.d/len"`` strings."""
        return [str(a) for a in self._read(lambda sw: sw.addresses(ns), "addresses", namespace=ns)]

    def counters(self):
        """The switch's packet and drop counters, by namespace and port name."""
        return self._running_read(lambda: self.daemon.counters(), "counters")

    def stats(self):
        """The packet loop's and the slow path's counters."""
        return self._running_read(lambda: self.daemon.stats(), "stats")

    def _running_read(self, func, verb):
        if not self._live():
            raise errors.InvalidArgument("the topology is not started")
        if self._child is not None:
            return self._child.call(verb)
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

    # ------------------------------------------------------------ life cycle

    def start(self):
        """Open the TAPs and kernel namespaces and start the switch; returns self."""
        with self._lock:
            if self._state == "started":
                return self
            self._live()                                    # refuses a closed topology
            try:
                with _sigint_held() as interrupted:
                    self._mark_foreign()
                    self._rundir = tempfile.mkdtemp(prefix=f"tapswitch-{self.id}-")
                    self._state = "started"
                    _open.add(self)
                    if self.mode == "thread":
                        self._start_thread()
                    else:
                        self._start_child(interrupted)
            except BaseException as exc:
                try:
                    self.close()
                except Exception as close_exc:     # the reason start failed matters more
                    exc.add_note(f"tapswitch: cleaning up also failed: {close_exc!r}")
                raise
        return self

    def _start_thread(self):
        from pyctl.config import DaemonSettings
        from pyctl.daemon.daemon import Daemon
        settings = DaemonSettings(socket=os.path.join(self._rundir, "control.sock"),
                                  batch_size=self.batch_size)
        out = open(os.devnull, "w")
        daemon = None
        try:
            daemon = Daemon(self._switch, settings, out=out)
            daemon.start(control=self.control)          # closes itself if it fails
        except BaseException:
            out.close()
            raise
        self.daemon = daemon
        self._thread = threading.Thread(target=self._run_loop, name=f"tapswitch-{self.id}",
                                        daemon=True)
        self._thread.start()
        daemon._thread = self._thread.ident      # calls from now on go to the loop thread

    def _run_loop(self):
        try:
            self.daemon.run()
        except BaseException as exc:   # surfaced by the next call and by close()
            self._loop_error = exc
            log.exception("the packet loop of topology %s failed", self.id)

    def _start_child(self, interrupted):
        from pyctl.rig.topology_child import ChildDaemon, config_toml
        self._child = ChildDaemon(self._rundir)
        text, joins = config_toml(self._switch, socket=self._child.socket,
                                  batch_size=self.batch_size)
        self._child.start(text, timeout=self.start_timeout, interrupted=interrupted)
        for ns, group in joins:
            self._child.call("join", group=group, namespace=ns)

    def close(self):
        """Stop the switch and remove every TAP, kernel namespace, file and process
        the topology made.  Idempotent.  Raises TopologyLeak if kernel objects
        outlived the switch, RuntimeError if the packet loop or the child failed."""
        with self._lock:
            if self._state == "closed":
                return
            was_started, self._state = self._state == "started", "closed"
            if not was_started:
                return
            try:
                with _sigint_held():
                    problem = self._teardown()
            finally:
                _open.discard(self)
        if problem is not None:
            raise problem

    def _teardown(self):
        """Everything close() undoes, each step even if an earlier one failed; the
        first problem found (returned, not raised)."""
        problems = []
        for handle in self._handles.values():
            handle.remove()
        self._handles.clear()
        if self.daemon is not None:
            problems += self._stop_thread()
        if self._child is not None:
            returncode, killed = self._child.stop(self.stop_timeout)
            if killed:
                problems.append(RuntimeError(
                    f"the child daemon ignored SIGTERM for {self.stop_timeout:g} s and was killed"))
            elif returncode not in (0, None, -signal.SIGTERM):   # -SIGTERM: stopped before it
                                                                 # installed its handler
                problems.append(RuntimeError(f"the child daemon exited with status {returncode}: "
                                             f"{self._child.output.strip()[-2000:]}"))
        if self._rundir is not None:
            shutil.rmtree(self._rundir, ignore_errors=True)
        from pyctl.rig.topology_child import sweep
        try:
            self.leftovers = sweep(self._netns_names - self._foreign, self._port_names)
        except Exception as exc:     # pragma: no cover - the kernel refused a removal
            problems.append(exc)
        if self.leftovers:
            problems.append(TopologyLeak(f"topology {self.id} left {', '.join(self.leftovers)} "
                                         f"behind (now removed)"))
        for extra in problems[1:]:
            log.warning("closing topology %s: %s", self.id, extra)
        return problems[0] if problems else None

    def _stop_thread(self):
        daemon, problems = self.daemon, []
        daemon.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.stop_timeout + 5)
            if self._thread.is_alive():
                problems.append(RuntimeError(f"the packet loop thread of topology {self.id} "
                                             f"did not stop"))
        try:
            daemon.close(report=False)
        except Exception as exc:
            problems.append(exc)
        finally:
            daemon.out.close()
            self.daemon = None
        if self._loop_error is not None:
            problems.append(RuntimeError(f"the packet loop of topology {self.id} failed: "
                                         f"{self._loop_error!r}"))
        return problems

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except Exception as close_exc:
            if exc is None:
                raise
            # The test's own failure matters more: keep it, note the cleanup's.
            exc.add_note(f"tapswitch: closing topology {self.id} also failed: {close_exc!r}")
        return False
