"""Logging for the daemon and the CLI: one handler on stderr, text or JSON lines, and a
filter that rate-limits repeated warnings.

``configure(level, fmt)`` is called once by the ``tapswitch`` command (``--log-level``,
``--log-format``).  Every logger of the project is under ``tapswitch``; control operations
are logged by ``tapswitch.audit`` at INFO (who: the socket's namespace and the peer's
pid/uid; what; with what result), so the default level shows them.

Text lines: ``2026-12-06T15:04:05.123Z WARNING tapswitch.daemon: message``.  JSON lines: one
object per record with ``ts``, ``level``, ``logger``, ``msg`` and any ``extra=`` fields the
call gave (the audit log gives ``namespace``, ``pid``, ``uid``, ``verb``, ``result``), plus
``exc`` with the traceback when there is one.

Rate limiting: a flood (bad frames, a misbehaving client) must not flood the log.  Records at
WARNING and above are limited per message template (the format string, not the formatted
text, so "bad frame from %s" counts as one kind whatever the address): a burst of ``burst``,
then ``rate`` per second.  The next record that passes says how many were suppressed.
``LogLimiter`` does the same at one call site, at any level, whatever handler is installed
(the control socket's accept errors and connection lines: one per client, under a flood).
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time

from pyctl.ops.ratelimit import TokenBucket

__all__ = ["configure", "JsonFormatter", "TextFormatter", "RateLimitFilter", "LogLimiter",
           "LEVELS", "FORMATS"]

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
ROOT = "tapswitch"

# attributes every LogRecord has: anything else came from ``extra=``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _timestamp(created: float) -> str:
    seconds = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIMESTAMP LEVEL LOGGER: message`` with an ISO 8601 UTC timestamp."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": _timestamp(record.created), "level": record.levelname,
               "logger": record.name, "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class RateLimitFilter(logging.Filter):
    """Token bucket per (logger, level, message template) for records at ``min_level`` and
    above.  The table of templates is bounded (templates are code constants; ``max_keys``
    guards against a caller that formats before logging)."""

    def __init__(self, rate: float = 1.0, burst: int = 10, min_level: int = logging.WARNING,
                 max_keys: int = 4096, clock=time.monotonic):
        super().__init__()
        self.rate, self.burst, self.min_level = rate, burst, min_level
        self.max_keys, self.clock = max_keys, clock
        self._buckets: dict[tuple, list] = {}     # key -> [TokenBucket, suppressed since]
        self._lock = threading.Lock()
        self.suppressed_total = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            entry = self._buckets.get(key)
            if entry is None:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.pop(next(iter(self._buckets)))
                entry = self._buckets[key] = [TokenBucket(self.rate, self.burst, now), 0]
            if not entry[0].take(now):
                entry[1] += 1
                self.suppressed_total += 1
                return False
            suppressed, entry[1] = entry[1], 0
        if suppressed:
            record.suppressed = suppressed
            record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
        return True


class LogLimiter:
    """``RateLimitFilter``'s bucket per message template, applied before a record is handed
    to ``logger``: ``limiter.log(logging.WARNING, "accept on %s failed: %s", path, exc)``."""

    def __init__(self, logger: logging.Logger, rate: float = 1.0, burst: int = 10,
                 clock=time.monotonic):
        self.logger = logger
        self._filter = RateLimitFilter(rate, burst, min_level=logging.NOTSET, clock=clock)

    @property
    def suppressed(self) -> int:
        """Records held back so far."""
        return self._filter.suppressed_total

    def log(self, level: int, msg: str, *args) -> None:
        if not self.logger.isEnabledFor(level):
            return
        record = self.logger.makeRecord(self.logger.name, level, "(limited)", 0, msg, args, None)
        if self._filter.filter(record):
            self.logger.handle(record)


def configure(level: str = "info", fmt: str = "text", stream=None) -> logging.Handler:
    """Log the project's records at ``level`` and above to ``stream`` (stderr) as ``fmt``.
    Replaces a handler an earlier call installed; returns the handler."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RateLimitFilter())
    handler._tapswitch = True
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if getattr(h, "_tapswitch", False)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler


def unconfigure(handler: logging.Handler) -> None:
    """Take out a handler ``configure`` installed (the ``tapswitch`` command does when it
    returns, so a caller that runs it in-process, a test, gets its logging back)."""
    logger = logging.getLogger(ROOT)
    if handler in logger.handlers:
        logger.removeHandler(handler)
        handler.flush()
    if not any(getattr(h, "_tapswitch", False) for h in logger.handlers):
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
