"""The tapswitch daemon: the model, the fast path, the packet loop, the slow
path and the control socket, put together.

Two threads.  The *packet thread* runs ``PacketLoop.serve()``: the compiled loop,
which never needs the GIL; it hands the frames the slow path must see to a bounded
queue (the slow handoff, ``loop.slow_fd`` says when) and takes the datapath's lock
only for each batch.  The *control thread* (the one that calls ``run()``) does
everything in Python: the control socket, the compiler and the TAPs, the slow path
(ARP, ICMP, IGMP, neighbours) and the housekeeping tick, waiting on one epoll set
(the wake-up pipe, the control socket, the slow handoff's eventfd).  Table changes
reach the packet thread between two batches, under the datapath's update lock,
whose handoff lets the control thread in even while the loop never idles.  So a
burst of control work or of slow-path frames costs forwarding at most one control
step's wait for the lock, never Python's time.  ``[daemon] cpus`` pins the packet
thread (``stats()``: ``packet_thread``, where it runs); the control thread is not pinned.

Every change of the model goes through ``Daemon.change()``: the model's transaction,
then the compiler's diff and the TAPs' reconciliation; if any of it fails, all of it
is undone.  Another thread (the in-process test-rig API) talks to a running daemon
with ``Daemon.call(func)``, which runs ``func`` in the control thread and hands back
its result or exception.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import sys
import threading
import time
from concurrent.futures import Future

import fastpath
from fastpath import verdicts
from pyctl import errors, kernel
from pyctl.compile.compiler import Compiler
from pyctl.config import DaemonSettings
from pyctl.config.validate import MAX_NAMESPACES, MAX_PORTS
from pyctl.control.counters import (counted, format_counters, format_loop_totals,
                                    select as select_counters)
from pyctl.control.server import ControlServer
from pyctl.daemon import attach_port, metrics
from pyctl.daemon.capture import Captures
from pyctl.daemon.daemon_verbs import DaemonDispatcher, register_daemon_verbs
from pyctl.daemon.metrics_http import MetricsListener
from pyctl.daemon.ownership import Ownership
from pyctl.daemon.port_manager import PortManager
from pyctl.daemon.dhcp import DhcpServer
from pyctl.daemon.dhcp6 import Dhcp6Server, server_duid
from pyctl.daemon.view import PlanView
from pyctl.model.events import NamespaceDestroyed
from pyctl.daemon.live_limits import igmp_config, slowpath_config
from pyctl.daemon.multicast import Multicast, group_counters, group_keys
from pyctl.daemon.slowpath import PeerMac, SlowPath
from pyctl.control.verbs import standard_dispatcher

log = logging.getLogger("tapswitch.daemon")

__all__ = ["Daemon"]

TICK_S = 0.1
NETNS_CHECK_S = 1.0     # how often the ports' kernel namespaces are checked for deletion


class Daemon:
    """A running switch.  ``start()``, then ``run()`` until ``stop()``; ``close()`` cleans up."""

    def __init__(self, switch, settings: DaemonSettings | None = None, *,
                 max_namespaces=MAX_NAMESPACES, max_ports=MAX_PORTS, slot_size=65536 + 256,
                 registry: kernel.CleanupRegistry | None = None, out=None):
        self.switch = switch
        self.settings = settings or DaemonSettings()
        self.out = out if out is not None else sys.stdout
        self.registry = registry if registry is not None else kernel.CleanupRegistry()
        # The model refuses what the tables cannot hold (TableFull, naming the table).
        switch.set_capacity(namespaces=max_namespaces, ports=max_ports)
        self.datapath = fastpath.Datapath(max_namespaces=max_namespaces, max_ports=max_ports)
        self.compiler = Compiler(switch, self.datapath, link_mtu=attach_port.link_mtu)
        self.loop = fastpath.PacketLoop(self.datapath, batch_size=self.settings.batch_size,
                                        slot_size=slot_size, backend=self.settings.io_backend,
                                        poll_us=self.poll_us,
                                        tx_cost_limit_us=self.settings.tx_cost_limit_us,
                                        tx_cost_share_pct=self.settings.tx_cost_share_pct)
        limits = self.settings.slowpath
        self.view = PlanView(self.compiler, self.datapath)
        self.ports = PortManager(switch, self.loop, self.registry)
        self.slowpath = SlowPath(self.view, slowpath_config(limits), datapath=self.datapath,
                                 dhcp_ports=self.ports.dhcp_ports)
        # Each namespace's share of the slow path: what is over it the packet thread
        # refuses (counted per namespace and share) before Python sees it.
        for name, (rate, burst) in limits.shares.items():
            self.datapath.set_slow_share(name, rate, burst)
        self.dhcp = DhcpServer(self.ports.dhcp_port)
        self.dhcp6 = Dhcp6Server(self.ports.dhcp_port, server_duid(self.settings.socket))
        self.multicast = Multicast(switch, self.view, self.change, igmp_config(limits))
        self.captures = Captures(self.datapath, switch)
        self.control = None
        self.metrics_http = None        # the HTTP listener, when [daemon] metrics is set
        self._calls = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poller = select.epoll()       # the control thread's wait (see the top)
        self._stopping = False
        self._closed = False
        self._thread = None                 # the control thread (run()'s)
        self._packet_error = None           # what ended the packet thread, if not stop()
        self._next_tick = 0.0
        self._next_netns_check = 0.0
        self._loop_failures = 0         # read errors + EOFs of the loop already acted on
        self.packet_tid = None          # the native id of the packet thread (_forward)
        self._unsubscribe = None
        self.started_at = None

    @property
    def poll_us(self):
        """The loop's polling after a busy batch: ``[daemon] poll_us``, but only for a
        packet thread on CPUs of its own (``[daemon] cpus``): unpinned, it shares every
        core with the tenants and polling would take their time (docs/io.md)."""
        return self.settings.poll_us if self.settings.cpus else 0

    # ------------------------------------------------------------------ setup

    def start(self, control=True):
        """Program the fast path, open the ports and the control socket.  What a dead
        daemon of the same state file left in the kernel is taken over or removed first
        (``pyctl.daemon.ownership``)."""
        try:
            self.ports.ownership = Ownership.open(self.settings.state_path, self.registry)
            self.apply()
            self.ports.ownership.finish_reclaim()
            self.multicast.attach()
            self._poller.register(self._wake_r, select.EPOLLIN)
            self._poller.register(self.loop.slow_fd, select.EPOLLIN)
            if control:
                base = standard_dispatcher()
                register_daemon_verbs(self, base)
                self.control = ControlServer(self.switch, self.settings.socket,
                                             dispatcher=DaemonDispatcher(self, base),
                                             socket_dir=self.settings.socket_dir,
                                             mode=self.settings.socket_mode,
                                             limits=self.settings.control)
                self._poller.register(self.control.fileno(), select.EPOLLIN)
            if self.settings.metrics is not None:
                self.metrics_http = MetricsListener(self.settings.metrics,
                                                    self.metrics_text).start()
            self._unsubscribe = self.switch.subscribe(self._on_model_event)
        except BaseException:
            self.close(report=False)
            raise
        self.started_at = time.monotonic()
        log.info("tapswitch running: %d ports, I/O backend %s", len(self.ports.open), self.loop.backend)
        return self

    # ------------------------------------------------------------------ changes

    def apply(self):
        """Bring the fast path and the TAPs in line with the model.

        Each half is all-or-nothing on its own (the compiler undoes its writes,
        the port manager closes what it opened); ``change()`` puts them together."""
        self.compiler.sync()
        self.ports.reconcile()
        self.slowpath.adverts.changed()
        for pid in self.ports.take_closed():
            self.slowpath.forget_port(pid)
            self.dhcp.forget_port(pid)
            self.dhcp6.forget_port(pid)

    def refresh_attached(self) -> list[str]:
        """Read the attached interfaces' MTUs again (a reload does): each ``attach`` port
        whose interface's MTU moved is compiled and opened anew with it.  Returns
        "port NAME: MTU N" for each."""
        moved = self.ports.attached_mtu_moved()
        if not moved:
            return []
        self.compiler.mark_ports(moved)
        self.ports.reopen(moved)
        self.apply()
        return [f"port {self.ports.open[pid].name}: MTU {self.ports.open[pid].tap.mtu} "
                f"(its interface's)" for pid in sorted(moved) if pid in self.ports.open]

    @contextlib.contextmanager
    def change(self):
        """``with daemon.change() as sw:`` -- verbs on ``sw`` are applied together or not at all."""
        try:
            with self.switch.transaction():
                yield self.switch
                self.apply()
        except BaseException:
            # The transaction put the model back: bring the tables and TAPs back to it.
            try:
                self.apply()
            except Exception:  # pragma: no cover - re-applying a plan that worked before
                log.exception("could not restore the previous plan")
            raise

    def _on_model_event(self, event):
        # Changes made outside change() (the Python API): apply them now.  A
        # refusal here cannot undo the model's change: it is logged and the
        # tables keep the last plan that worked.
        if self.compiler.synced_version != self.switch.version:
            try:
                self.apply()
            except errors.TapswitchError:
                log.exception("could not apply %s", event.kind)
        # Told after the change was applied (inside change(), events wait for its end):
        # what the slow path keeps of a destroyed namespace goes, from the datapath too.
        if isinstance(event, NamespaceDestroyed):
            for gone in event.destroyed:
                self.slowpath.forget_namespace(gone.namespace.id)
        self.captures.refresh()

    # ------------------------------------------------------------------ running

    def run(self, duration=None):
        """Forward until ``stop()`` (or for ``duration`` seconds): the packet thread
        forwards, the calling thread is the control thread (see the top)."""
        self._thread = threading.get_ident()
        deadline = None if duration is None else time.monotonic() + duration
        packets = threading.Thread(target=self._forward, name="tapswitch-packets", daemon=True)
        packets.start()
        try:
            while not self._stopping and self._packet_error is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                wait = max(0.0, self._next_tick - now)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                self._service(self._poller.poll(wait))
        finally:
            self.loop.stop()
            packets.join()
        if self._packet_error is not None:
            raise RuntimeError("the packet thread failed") from self._packet_error
        return self

    def _place_packet_thread(self):
        """Pin the calling thread (the packet thread, _forward) to ``[daemon] cpus``."""
        self.packet_tid = threading.get_native_id()
        if self.settings.cpus:
            try:
                os.sched_setaffinity(0, self.settings.cpus)      # 0: this thread only
            except OSError as exc:
                raise errors.InvalidArgument(
                    f"[daemon] cpus {list(self.settings.cpus)}: {exc.strerror}") from None
            log.info("packet thread %d on CPUs %s", self.packet_tid, list(self.settings.cpus))

    def placement(self):
        """Where the packet thread runs: {"tid", "cpus"} (cpus: its affinity now), or
        None before run()."""
        if self.packet_tid is None:
            return None
        try:
            cpus = sorted(os.sched_getaffinity(self.packet_tid))
        except OSError:                 # the thread ended
            return None
        return {"tid": self.packet_tid, "cpus": cpus}

    def _forward(self):
        """The packet thread."""
        try:
            self._place_packet_thread()
            self.loop.serve()
        except BaseException as exc:       # run() raises it in the control thread
            log.exception("the packet thread failed")
            self._packet_error = exc
            self._wake()

    def _service(self, events):
        for fd, _ in events:
            if fd == self._wake_r:
                self._drain_wake()
            elif fd == self.loop.slow_fd:
                self._slow_path(self.loop.slow_frames())
            elif self.control is not None and fd == self.control.fileno():
                self.control.poll(0)
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + TICK_S
            self.captures.tick(now)         # drains the capture ring: per tick, not per batch
            self._check_ports(now)
            self._learned(self._emit(self.slowpath.tick()))
            self.dhcp.tick(now)
            self.dhcp6.tick(now)
            self._send(self.multicast.tick(now, self.ports.open))
        self._run_calls()

    def _check_ports(self, now):
        """Ports that failed under the daemon (TAP or kernel namespace deleted from
        outside): out of service, with the reason (``ctl ports``, ``ctl stats``)."""
        loop = self.loop.stats()
        failures = loop["read_errors"] + loop["read_eof"]
        failed = len(self.ports.failed)
        if failures != self._loop_failures:
            self._loop_failures = failures
            self.ports.check_loop()
        if now >= self._next_netns_check:
            self._next_netns_check = now + NETNS_CHECK_S
            self.ports.check_netns()
            self.ports.check_links()
        if len(self.ports.failed) != failed:
            self.slowpath.adverts.changed()     # a failed port advertises no more

    def _slow_path(self, frames):
        learned = []
        for port_id, reason, data in frames:
            if reason == verdicts.REASON_IGMP or reason == verdicts.REASON_MLD:
                self._send(self.multicast.handle(port_id, data, time.monotonic()))
            elif reason == verdicts.REASON_DHCP:
                server = self.dhcp6 if data[12:14] == b"\x86\xdd" else self.dhcp
                self._send(server.handle(port_id, data, time.monotonic()))
            else:
                learned += self._emit(self.slowpath.handle(port_id, reason, data))
        self._learned(learned)

    def _emit(self, output) -> list:
        """Send an output's frames; its learned facts, for ``_learned`` once the round's
        frames have all left."""
        self._send(output.frames)
        return output.learned

    def _learned(self, facts):
        # After every frame of the round: those that waited for a neighbour's MAC, and
        # those of the same flow the fast path handed up before this round, leave before
        # the fast path learns the MAC (a peer MAC here, a neighbour at settle()), so no
        # later frame of the flow, forwarded by the fast path, overtakes them.
        for fact in facts:
            if isinstance(fact, PeerMac) and fact.port_id in self.ports.open:
                self.datapath.set_peer_mac(fact.port_id, fact.mac)
        self.slowpath.settle()

    def _send(self, frames):
        for port_id, frame in frames:
            if port_id in self.ports.open and self.loop.send(port_id, frame) and self.captures.active:
                self.captures.sent(port_id, frame)

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _run_calls(self):
        while True:
            try:
                func, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(func())
                except BaseException as exc:
                    future.set_exception(exc)

    def call(self, func, timeout=30.0):
        """Run ``func()`` in the control thread; its result or exception."""
        if self._thread is None or self._thread == threading.get_ident():
            return func()
        return self.submit(func).result(timeout)

    def submit(self, func) -> Future:
        """Queue ``func()`` for the daemon's thread, between batches; does not wait (safe
        from a signal handler: SIGHUP's reload)."""
        future = Future()
        self._calls.put((func, future))
        self._wake()
        return future

    def _wake(self):
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    def stop(self):
        """Make ``run()`` return (safe from any thread and from a signal handler)."""
        self._stopping = True
        self._wake()

    # ------------------------------------------------------------------ reading

    def counters(self, session=None, namespace=None, port=None, format=None):
        """The fast path's counters, named, limited to what ``session`` sees and filtered
        (pyctl.control.counters.select); ``format="prometheus"``: the metrics of that view
        as text (pyctl.daemon.metrics)."""
        if format not in (None, "json", "prometheus"):
            raise errors.InvalidArgument(f"format must be json or prometheus, not {format!r}")
        api = self.switch if session is None else session.api
        ns_ids, port_ids = counted(api, namespace=namespace, port=port)
        keys = () if port is not None else group_keys(api, self.datapath, namespace)
        raw = self.datapath.counters(namespaces=ns_ids, ports=port_ids, groups=keys)
        for ns_id, value in raw["namespaces"].items():
            value["slowpath_drops"] = self.slowpath.counters.dropped_by(ns_id)
        out = select_counters(raw, api, namespace=namespace, port=port)
        out["groups"] = {} if port is not None else group_counters(raw["groups"], api, namespace)
        if format == "prometheus":
            return metrics.exposition(self, api, out, whole=namespace is None and port is None)
        return out

    def metrics_text(self):
        """The admin's metrics, read on the daemon's thread (the HTTP listener's render)."""
        return self.call(lambda: self.counters(format="prometheus"), timeout=5.0)

    def memberships(self, session):
        """The multicast memberships ``session`` sees (the ``multicast`` verb)."""
        return self.multicast.memberships(session.api, time.monotonic())

    def stats(self, session=None):
        """The daemon's counters: all of them for the administrator (``session`` None or
        the admin socket's); a namespace socket's client only its subtree's ports' states
        and what the slow path dropped of its subtree's frames (the loop's, slow path's and
        snooper's counters are the whole switch's)."""
        api = self.switch if session is None else session.api
        dropped = self.slowpath.counters.visible(api, self.switch)
        if api.acting is not None:
            visible = [p.id for p in api.ports()]
            return {"ports_up": sum(p in self.ports.open for p in visible),
                    "ports_failed": sum(p in self.ports.failed for p in visible),
                    "slowpath_drops": dropped, "uptime_s": self._uptime()}
        return {"loop": self.loop.stats(), "backend": self.loop.backend,
                "slowpath": dict(self.slowpath.counters), "slowpath_drops": dropped,
                "slowpath_holds": self.slowpath.gauges(),
                "igmp": dict(self.multicast.counters), "dhcp": dict(self.dhcp.counters),
                "dhcp6": dict(self.dhcp6.counters),
                "rings": self.ports.ring_stats(),
                "slowpath_shares": {name: {"rate": rate, "burst": burst} for name, (rate, burst)
                                    in self.datapath.slow_shares().items()},
                "capture": {**self.datapath.capture_stats(), "captures": self.captures.count},
                "ports_up": len(self.ports.open), "ports_failed": len(self.ports.failed),
                "packet_thread": self.placement(),
                "uptime_s": self._uptime()}

    def _uptime(self):
        return round(time.monotonic() - (self.started_at or time.monotonic()), 3)

    # ------------------------------------------------------------------ teardown

    def close(self, report=True):
        """Stop serving, close every TAP, remove what the daemon made in the kernel."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.multicast.detach()
        if report and self.started_at is not None:
            try:
                print(format_counters(self.counters(), title="final counters"), file=self.out)
            except (OSError, ValueError) as exc:   # stdout gone (a closed pipe): clean up anyway
                log.warning("could not print the final counters: %s", exc)
        if self.metrics_http is not None:
            self.metrics_http.close()
        self.captures.close()
        if self.control is not None:
            self.control.close()
        self.ports.close_all()
        problems = self.registry.cleanup()
        for what, exc in problems:
            log.warning("cleanup of %s failed: %s", what, exc)
        if isinstance(self.ports.ownership, Ownership):
            self.ports.ownership.close()
        self._poller.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        # Its epoll fd, eventfd and io_uring ring now, not when a collection frees the
        # daemon's reference cycles.  Last: Busy if run() still runs in another thread.
        self.loop.close()
        if report and self.started_at is not None:
            try:                    # with what the ports' last kicks dropped (stats after close)
                print(format_loop_totals(self.loop.stats(), title="packet loop at exit"),
                      file=self.out)
            except (OSError, ValueError) as exc:
                log.warning("could not print the packet loop's totals: %s", exc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

