"""The cleanup registry: everything a namespace, link or process the kernel layer makes
registers its undo here, and ``cleanup()`` runs them in reverse order (the process-wide
``registry`` at exit, a private one per test or topology)."""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass

from pyctl.kernel.errors import _GONE

log = logging.getLogger("tapswitch.kernel")


@dataclass
class _Entry:
    key: int
    what: str
    undo: object          # callable()


class CleanupRegistry:
    """Records how to undo everything created through this module and undoes
    it in reverse order. ``cleanup()`` never raises: objects already gone are
    skipped silently, other failures are logged and returned.

    Only the process that registered an entry undoes it: a forked child
    (``NetNamespace.call``) never tears down its parent's objects.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: list[_Entry] = []
        self._keys = itertools.count(1)
        self._owner = os.getpid()

    def register(self, what: str, undo) -> int:
        """Record ``undo`` (a no-argument callable) for object ``what``; returns
        a key for ``forget``."""
        with self._lock:
            key = next(self._keys)
            self._entries.append(_Entry(key, what, undo))
            return key

    def forget(self, key: int) -> None:
        """Drop an entry whose object was removed explicitly."""
        with self._lock:
            self._entries = [e for e in self._entries if e.key != key]

    def pending(self) -> list[str]:
        """Descriptions of the objects still to undo, oldest first."""
        with self._lock:
            return [e.what for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def cleanup(self) -> list[tuple[str, BaseException]]:
        """Undo every entry, newest first. Returns the (what, error) failures."""
        if os.getpid() != self._owner:
            return []
        failures = []
        while True:
            with self._lock:
                if not self._entries:
                    break
                entry = self._entries.pop()
            try:
                entry.undo()
            except OSError as exc:
                if exc.errno not in _GONE:
                    failures.append((entry.what, exc))
            except Exception as exc:  # keep going: the rest must still go
                failures.append((entry.what, exc))
        for what, exc in failures:
            log.warning("cleanup of %s failed: %s", what, exc)
        return failures

    def install_signal_handlers(self, signums=(signal.SIGTERM, signal.SIGINT)) -> None:
        """On these signals: clean up, then behave as before (previous Python
        handler, KeyboardInterrupt for SIGINT, SystemExit(128+n) otherwise).
        Must be called from the main thread."""
        for signum in signums:
            previous = signal.getsignal(signum)

            def handler(num, frame, previous=previous):
                self.cleanup()
                if callable(previous) and previous not in (signal.default_int_handler,):
                    return previous(num, frame)
                if num == signal.SIGINT:
                    raise KeyboardInterrupt
                raise SystemExit(128 + num)

            signal.signal(signum, handler)


registry = CleanupRegistry()
"""The process-wide registry; ``atexit`` runs its cleanup."""

atexit.register(registry.cleanup)


def _stop_process(proc: subprocess.Popen, grace: float = 2.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def stop_process(proc: subprocess.Popen, registry: CleanupRegistry | None = None,
                 grace: float = 2.0) -> None:
    """Terminate (then kill) a process started with ``popen`` and forget it."""
    _stop_process(proc, grace)
    key = getattr(proc, "registry_key", None)
    if key is not None:
        (registry or globals()["registry"]).forget(key)
