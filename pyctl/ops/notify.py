"""The service manager's notification protocol (``sd_notify``), without a dependency.

When systemd starts a ``Type=notify`` service it sets ``NOTIFY_SOCKET`` to a Unix datagram
socket (a path, or an abstract name written with a leading ``@``).  The service sends
newline-separated ``KEY=VALUE`` assignments to it: ``READY=1`` once it serves,
``RELOADING=1`` (with ``MONOTONIC_USEC``) when a reload starts and ``READY=1`` again when it
is done, ``STOPPING=1`` when it shuts down, ``STATUS=...`` as free text.  Without
``NOTIFY_SOCKET`` every call is a no-op, so the daemon calls it unconditionally.
"""
from __future__ import annotations

import os
import socket
import time

__all__ = ["Notifier"]


class Notifier:
    """Sends notifications to ``NOTIFY_SOCKET`` (read once, at construction)."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or ""
        if address.startswith("@"):
            address = "\0" + address[1:]          # abstract namespace
        self.address = address
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, **fields) -> bool:
        """Send ``KEY=VALUE`` lines (keys upper-cased); False when disabled or refused.
        A service manager that went away must not stop the daemon: errors are counted."""
        if not self.address:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(payload.encode(), self.address)
        except OSError:
            self.failed += 1
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = {"READY": 1}
        if status:
            fields["STATUS"] = status
        return self.notify(**fields)

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (>= 253, Type=notify-reload) match the reload it asked for
        return self.notify(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)
