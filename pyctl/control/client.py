"""The control socket's client: ``ControlClient(path).call(verb, **args)``.

A refused request raises the exception class of its code (pyctl.errors, or
pyctl.control.protocol's for wire errors), so callers handle a remote refusal exactly
like a local one::

    with ControlClient("/run/tapswitch/control.sock") as ctl:
        ctl.call("assign-and-push", address="10.0.0.5/24", namespace="web")
        ctl.call("addresses", namespace="web")    # -> ['127.0.0.1/8', '::1/128', '10.0.0.5/24']

Connecting waits for room: a blocking connect (a busy server's listen backlog full is
waited out, up to ``timeout``, not refused at once), tried again on EAGAIN until the
timeout.  A connection the server closed for idling (its ``ETIMEDOUT`` notice, id null)
is made again before the next request; the request was not seen by the server, so it
is sent once more on the new connection.
"""
from __future__ import annotations

import errno
import itertools
import os
import select
import socket
import struct
import time
from typing import Any

from pyctl import errors

from pyctl.control import protocol

__all__ = ["ControlClient", "ConnectionFailed", "default_socket_path"]

DEFAULT_SOCKET = "/run/tapswitch/control.sock"


class ConnectionFailed(errors.TapswitchError):
    """The daemon cannot be reached, or it closed the connection."""

    code = "ECONNREFUSED"


def _connect(path: str, timeout: float | None) -> socket.socket:
    """A connected socket, ``timeout`` on its reads and writes.  The connect blocks while
    the server's backlog is full (SO_SNDTIMEO bounds it); EAGAIN is tried again until
    the timeout, with short pauses."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            if deadline is not None:
                left = max(0.001, deadline - time.monotonic())
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                struct.pack("ll", int(left), int(left % 1 * 1e6)))
            sock.connect(path)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 0))
            sock.settimeout(timeout)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno not in (errno.EAGAIN, errno.EINTR) or (
                    deadline is not None and time.monotonic() >= deadline):
                why = "timed out (the server has no room)" if exc.errno == errno.EAGAIN \
                    else exc.strerror or exc
                raise ConnectionFailed(f"cannot connect to {path}: {why}") from None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def default_socket_path() -> str:
    """``$TAPSWITCH_SOCKET`` if set, else /run/tapswitch/control.sock."""
    return os.environ.get("TAPSWITCH_SOCKET") or DEFAULT_SOCKET


class ControlClient:
    """One connection to a tapswitch control socket (blocking, with a timeout)."""

    def __init__(self, path: str | None = None, *, timeout: float | None = 10.0):
        self.path = path or default_socket_path()
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._buf = bytearray()
        self._sock = _connect(self.path, timeout)

    def call(self, verb: str, **args: Any) -> Any:
        """Send one request and return its result, or raise its error.

        Arguments whose value is None are left out (the server's default applies).
        """
        request_id = next(self._ids)
        args = {k: v for k, v in args.items() if v is not None}
        line = protocol.encode_request(request_id, verb, args)
        if len(line) > protocol.MAX_LINE + 1:
            raise protocol.MessageTooLong(f"request is {len(line)} bytes, the limit is "
                                          f"{protocol.MAX_LINE}")
        if self._hung_up():
            self._reconnect()
        reply = self._exchange(line)
        if reply.id is None and reply.code == protocol.IDLE_CLOSE:
            self._reconnect()      # closed for idling before it read the request: send again
            reply = self._exchange(line)
        if reply.id != request_id:
            raise protocol.BadMessage(f"reply for request {reply.id!r} while waiting for "
                                      f"{request_id} ({reply.code}: {reply.message})")
        if not reply.ok:
            raise protocol.error_from_code(reply.code, reply.message)
        return reply.result

    def _read_line(self) -> bytes:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return line
            if len(self._buf) > protocol.MAX_REPLY:
                raise protocol.MessageTooLong("reply line too long")
            try:
                data = self._sock.recv(1 << 16)
            except TimeoutError:
                raise ConnectionFailed(f"no reply from {self.path} in time") from None
            except OSError as exc:
                raise ConnectionFailed(f"reading from {self.path} failed: "
                                       f"{exc.strerror or exc}") from None
            if not data:
                raise ConnectionFailed(f"{self.path} closed the connection")
            self._buf += data

    def _exchange(self, line: bytes) -> protocol.Reply:
        try:
            self._sock.sendall(line)
        except OSError as exc:
            # The server closed the connection; if it said why first, that is the reply.
            try:
                return protocol.decode_reply(self._read_line())
            except ConnectionFailed:
                raise ConnectionFailed(f"sending to {self.path} failed: "
                                       f"{exc.strerror or exc}") from None
        return protocol.decode_reply(self._read_line())

    def _hung_up(self) -> bool:
        """Whether the server closed this connection (for idling, or it went away) while no
        request of ours was out: nothing sent on it since was seen."""
        if self._sock.fileno() < 0:      # a reconnect failed: try again
            return True
        poller = select.poll()            # not select(): the fd may be above FD_SETSIZE
        poller.register(self._sock, select.POLLIN)
        try:
            while poller.poll(0):
                data = self._sock.recv(1 << 16)
                if not data:
                    return True
                self._buf += data
        except OSError:
            return True
        nl = self._buf.find(b"\n")
        if nl < 0:
            return False
        try:
            notice = protocol.decode_reply(bytes(self._buf[:nl]))
        except protocol.BadMessage:
            return False
        return notice.id is None and notice.code == protocol.IDLE_CLOSE

    def _reconnect(self) -> None:
        self._sock.close()
        self._buf.clear()
        self._sock = _connect(self.path, self.timeout)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
