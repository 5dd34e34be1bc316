"""What the control sockets' clients may take: connection slots, requests per second, and
what happens when the process runs out of file descriptors.  ``ControlServer`` asks
``Admission`` before each accept and each request; the limits are ``[daemon.control]``
(``pyctl.config.ControlLimits``; docs/security.md).

- Slots: each namespace socket holds at most ``connections_per_socket`` connections, all
  of them together ``connections``; the admin socket has its own ``admin_connections``,
  which no namespace socket can take.  A socket without a free slot is not accepted from
  (it is taken off the server's epoll set, so a full backlog costs nothing): new clients
  wait in the listen backlog until a slot frees, and the refusal is counted.
- Out of fds (EMFILE/ENFILE, whatever used them): accepting pauses, from 50 ms doubling up
  to 1 s, instead of retrying at once in a busy loop; the admin socket first spends the
  one fd kept in reserve for it, so an operator can still get in.
- Requests: a token bucket per namespace socket (``requests_per_second``, ``requests_burst``);
  a request beyond it waits, unread, until a token comes (backpressure, not an error).
- Log lines that one client per attempt could cause (accept errors, connections opened
  and closed, full sockets) are rate-limited per call site.

The slot limits are cut down at start to what RLIMIT_NOFILE leaves (with room for the
daemon's own fds), with a warning.
"""
from __future__ import annotations

import errno
import logging
import os
import resource

from pyctl.config.spec import ControlLimits
from pyctl.ops.logsetup import LogLimiter
from pyctl.ops.ratelimit import TokenBucket

__all__ = ["Admission", "SocketCounters", "fit_to_fd_limit"]

log = logging.getLogger("tapswitch.control")

FD_HEADROOM = 64             # fds kept for the daemon's own use (TAPs, files, netlink)
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 1.0
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class SocketCounters:
    """What one listening socket refused or held back, for ``stats``."""
    __slots__ = ("connections", "full", "throttled", "idle_closed", "refused")

    def __init__(self):
        self.connections = 0      # open now
        self.full = 0             # times it had no free slot (clients left in the backlog)
        self.throttled = 0        # requests that waited for the rate limit
        self.idle_closed = 0      # connections closed for idling
        self.refused = 0          # requests refused for their size or nesting

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


def fit_to_fd_limit(limits: ControlLimits) -> ControlLimits:
    """``limits`` with the slot counts cut down to what RLIMIT_NOFILE leaves free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 32
    room = max(2, soft - in_use - FD_HEADROOM)
    if limits.connections + limits.admin_connections <= room:
        return limits
    admin = min(limits.admin_connections, max(1, room // 8))
    fitted = ControlLimits(**{**vars(limits), "admin_connections": admin,
                              "connections": max(1, min(limits.connections, room - admin))})
    log.warning("control sockets: %d + %d connections do not fit in RLIMIT_NOFILE %d "
                "(%d fds in use): limited to %d + %d admin", limits.connections,
                limits.admin_connections, soft, in_use, fitted.connections, admin)
    return fitted


class Admission:
    """The slots, buckets and fd back-off of one ``ControlServer`` (see the module doc)."""

    def __init__(self, limits: ControlLimits):
        self.limits = fit_to_fd_limit(limits)
        self.namespace_connections = 0
        self.accept_errors = 0
        self.admin_reserve_used = 0
        self.backoff_until = 0.0
        self._backoff = 0.0
        self._reserve = self._open_reserve()
        self.accept_log = LogLimiter(log, rate=0.2, burst=5)
        self.connection_log = LogLimiter(log, rate=2.0, burst=50)

    def set_limits(self, limits: ControlLimits, listeners, now: float) -> None:
        """New limits (a reload), fitted to RLIMIT_NOFILE: slots hold for the next accept,
        each socket's request bucket keeps its tokens up to the new burst and earns them at
        the new rate (rate 0: no limit; from 0: a new, full bucket)."""
        old = self.limits
        self.limits = fit_to_fd_limit(limits)
        rate, burst = self.limits.requests_per_second, self.limits.requests_burst
        if (old.requests_per_second, old.requests_burst) == (rate, burst):
            return
        for listener in listeners:
            if listener.bucket is None:
                continue
            if rate == 0 or old.requests_per_second == 0:
                listener.bucket = None
            else:
                listener.bucket.retune(float(rate), burst, now)

    # ---------------------------------------------------------------- slots

    def has_room(self, listener) -> bool:
        conns = listener.counters.connections
        if listener.binding.admin:
            return conns < self.limits.admin_connections
        return (conns < self.limits.connections_per_socket
                and self.namespace_connections < self.limits.connections)

    def total_full(self) -> bool:
        return self.namespace_connections >= self.limits.connections

    def full(self, listener) -> None:
        """``listener`` has no slot: counted, and said (rate-limited)."""
        listener.counters.full += 1
        binding = listener.binding
        if binding.admin or listener.counters.connections >= self.limits.connections_per_socket:
            limit, which = (self.limits.admin_connections if binding.admin
                            else self.limits.connections_per_socket), "this socket's"
        else:
            limit, which = self.limits.connections, "the namespace sockets' total"
        self.accept_log.log(logging.WARNING, "control socket %s is full (%s limit of %d "
                            "connections): new clients wait in its backlog", binding.path,
                            which, limit)

    def opened(self, listener) -> None:
        listener.counters.connections += 1
        if not listener.binding.admin:
            self.namespace_connections += 1
        self._backoff = 0.0

    def closed(self, listener) -> None:
        listener.counters.connections -= 1
        if not listener.binding.admin:
            self.namespace_connections -= 1
        if self._reserve is None:
            self._reserve = self._open_reserve()

    # ---------------------------------------------------------------- out of fds

    def spend_reserve(self, listener, exc: OSError) -> bool:
        """For the admin socket out of fds: free the reserved one (True) if it is still kept."""
        if not listener.binding.admin or exc.errno not in _OUT_OF_FDS or self._reserve is None:
            return False
        os.close(self._reserve)
        self._reserve = None
        self.admin_reserve_used += 1
        log.warning("out of file descriptors: the admin socket used its reserved one")
        return True

    def accept_failed(self, listener, exc: OSError, now: float) -> float:
        """Count and log (rate-limited) a failed accept; the time accepting may resume."""
        self.accept_errors += 1
        self._backoff = min(BACKOFF_MAX, self._backoff * 2 or BACKOFF_FIRST)
        self.backoff_until = now + self._backoff
        self.accept_log.log(logging.WARNING, "accept on %s failed: %s; accepting pauses for "
                            "%.2f s", listener.binding.path, exc, self._backoff)
        return self.backoff_until

    def _open_reserve(self) -> int | None:
        try:
            return os.open("/", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    # ---------------------------------------------------------------- requests

    def request_wait(self, listener, now: float) -> float:
        """0.0 if a request of ``listener``'s clients may be served now, else the wait."""
        rate = self.limits.requests_per_second
        if listener.binding.admin or rate == 0:
            return 0.0
        if listener.bucket is None:
            listener.bucket = TokenBucket(float(rate), self.limits.requests_burst, now)
        return listener.bucket.wait(now)

    def close(self) -> None:
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
