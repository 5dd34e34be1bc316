"""The control socket's client: ``ControlClient(path).call(verb, **args)``.

A refused request raises the exception class of its code (pyctl.errors, or
pyctl.control.protocol's for wire errors), so callers handle a remote refusal exactly
like a local one::

    with ControlClient("/run/tapswitch/control.sock") as ctl:
        ctl.call("assign-and-push", address="10.0.0.5/24", namespace="web")
        ctl.call("addresses", namespace="web")    # -> ['127.0.0.1/8', '::1/128', '10.0.0.5/24']
"""
from __future__ import annotations

import itertools
import os
import socket
from typing import Any

from pyctl import errors

from pyctl.control import protocol

__all__ = ["ControlClient", "ConnectionFailed", "default_socket_path"]

DEFAULT_SOCKET = "/run/tapswitch/control.sock"


class ConnectionFailed(errors.TapswitchError):
    """The daemon cannot be reached, or it closed the connection."""

    code = "ECONNREFUSED"


def default_socket_path() -> str:
    """``$TAPSWITCH_SOCKET`` if set, else /run/tapswitch/control.sock."""
    return os.environ.get("TAPSWITCH_SOCKET") or DEFAULT_SOCKET


class ControlClient:
    """One connection to a tapswitch control socket (blocking, with a timeout)."""

    def __init__(self, path: str | None = None, *, timeout: float | None = 10.0):
        self.path = path or default_socket_path()
        self._ids = itertools.count(1)
        self._buf = bytearray()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except OSError as exc:
            self._sock.close()
            raise ConnectionFailed(f"cannot connect to {self.path}: {exc.strerror or exc}") from None

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
        try:
            self._sock.sendall(line)
        except OSError as exc:
            raise ConnectionFailed(f"sending to {self.path} failed: {exc.strerror or exc}") from None
        reply = protocol.decode_reply(self._read_line())
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

    def close(self) -> None:
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
