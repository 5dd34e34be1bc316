"""A Topology's life cycle: ``start()`` (the switch in a thread of this process, or a
child daemon), ``close()`` (everything the topology made is removed, and checked gone),
the context manager, and the Ctrl-C and exit-time safety nets around them.

``Lifecycle`` is a part of ``pyctl.rig.topology.Topology`` (it uses its state:
``mode``, ``daemon``, ``_child``, ``_handles``, ...); see that module for the
promises (nothing left behind, ``TopologyLeak`` when a killed child could not
clean up).
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading

from pyctl import errors, kernel

__all__ = ["Lifecycle", "TopologyLeak"]

log = logging.getLogger("tapswitch.topology")

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


class Lifecycle:
    """Starting and closing a topology (mixed into ``Topology``)."""

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
                                  batch_size=self.batch_size, cpus=self.cpus, poll_us=self.poll_us)
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
                                  batch_size=self.batch_size, cpus=self.cpus, poll_us=self.poll_us)
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
        for proc in self._processes:
            kernel.stop_process(proc)
        self._processes.clear()
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
