"""The audit log of control operations, and their count by verb and result.

Every request the dispatcher serves ends in ``Audit.record()``: who (the socket's
namespace, whether it is the admin socket, the peer's pid/uid/gid from SO_PEERCRED),
what (the verb and its arguments as sent), the result (``ok`` or the error code) and how
long it took.  It goes to the logger ``tapswitch.audit``:

- at INFO, so the default level shows it: every verb that configures (access ``config``,
  ``member``, ``admin``) and every refusal, of any verb (an L3 trying a configuring verb
  is a line even though nothing changed);
- at DEBUG: a read that succeeded (``counters`` polled every few seconds would otherwise
  bury the changes).

The text line reads ``audit: web (pid=42 uid=0 gid=0): address-add namespace=web
address=10.0.0.5/24 -> EPERM: ...``; with ``--log-format json`` the same record carries the
fields ``namespace``, ``admin``, ``socket``, ``pid``, ``uid``, ``gid``, ``verb``,
``arguments``, ``result``, ``error`` and ``ms``.

``counts`` holds the operations by (namespace of the socket, verb, result) for the metrics;
a verb the server does not know is counted as ``(unknown)`` so a client cannot grow the
table with made-up names.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

__all__ = ["Audit", "UNKNOWN_VERB", "audit_log"]

audit_log = logging.getLogger("tapswitch.audit")
UNKNOWN_VERB = "(unknown)"
_ARG_TEXT_LIMIT = 200           # a text line shows at most this much of one argument


def _arg_text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _ARG_TEXT_LIMIT else text[:_ARG_TEXT_LIMIT] + "..."


class Audit:
    """Logs each control operation and counts them by (verb, result)."""

    def __init__(self, logger: logging.Logger = audit_log):
        self.logger = logger
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()      # metrics are read from the HTTP listener's thread

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.counts)

    def record(self, session, verb: str, access: str | None, args: dict[str, Any],
               code: str | None, message: str | None, seconds: float) -> None:
        """One operation: ``access`` None when the verb is unknown; ``code`` None when it
        succeeded."""
        result = code or "ok"
        binding, peer = session.binding, session.peer
        namespace = "init" if binding.admin else binding.name
        with self._lock:
            self.counts[(namespace, verb if access is not None else UNKNOWN_VERB, result)] += 1
        level = logging.DEBUG if code is None and access == "read" else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        who = f"admin socket (init)" if binding.admin else namespace
        shown = " ".join(f"{k}={_arg_text(v)}" for k, v in args.items() if v is not None)
        outcome = "ok" if code is None else f"{code}: {message}"
        self.logger.log(level, "%s (pid=%d uid=%d gid=%d): %s%s -> %s", who, peer.pid, peer.uid,
                        peer.gid, verb, f" {shown}" if shown else "", outcome,
                        extra={"namespace": namespace, "admin": binding.admin,
                               "socket": binding.path, "pid": peer.pid, "uid": peer.uid,
                               "gid": peer.gid, "verb": verb, "arguments": args,
                               "result": result, "error": message,
                               "ms": round(seconds * 1000, 3)})
