"""The control socket server: Unix stream sockets speaking pyctl.control.protocol.

How a client is bound to a namespace: by the socket it connects to.

- The admin socket (``path``, mode 0600) acts as the root L2 with every
  capability.
- ``bind_namespace(name)`` adds a socket file ``<socket_dir>/<name>.sock``
  (directory 0700, file 0600 unless told otherwise) whose connections act as
  that namespace, exactly as ``switch.as_namespace(name)`` does: bind-mount
  only that file into a container and the container can do what its
  namespace may do and nothing more.  An L3 socket is refused every
  configuring verb except join/leave of its own membership; an L2 socket
  reaches only its own subtree.  Destroying the namespace closes its socket.

Peer credentials (SO_PEERCRED) are logged for every connection and every
configuring request.

The server owns no thread and no event loop.  It is non-blocking and driven
from outside: watch ``fileno()`` (one epoll fd that is readable whenever a
listener or a connection needs service) and call ``poll(0)``; or watch each
of ``filenos()`` and call ``handle_ready(fd)``.  ``serve_forever()`` is the
same machinery in a loop, for tests and tools.

The namespace sockets are in ``pyctl.control.bindings``, the socket files and
peer credentials in ``pyctl.control.sockets``.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import socket

from pyctl import errors

from pyctl.control import protocol
from pyctl.control.bindings import Binding, Bindings, Listener
from pyctl.control.dispatch import Dispatcher, Session
from pyctl.control.sockets import Peer, check_path, clear_stale, listen, make_dir, peer_of
from pyctl.control.verbs import standard_dispatcher

__all__ = ["ControlServer", "Binding", "Peer"]

log = logging.getLogger("pyctl.control.server")

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_RECV_SIZE = 64 * 1024
_OUTPUT_HIGH_WATER = 1 << 20       # stop reading requests from a client this far behind
_OUTPUT_LIMIT = protocol.MAX_REPLY  # drop a client that stopped reading its replies
_ACCEPT_BURST = 32


class _Connection:
    def __init__(self, sock: socket.socket, binding: Binding, peer: Peer, session: Session):
        self.sock, self.binding, self.peer, self.session = sock, binding, peer, session
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.discarding = False    # skipping the rest of an oversize line
        self.eof = False           # the peer shut down its side: close once replies are out
        self.events = READ


class ControlServer(Bindings):
    """The control socket(s) of one switch, driven by the caller's event loop."""

    def __init__(self, switch, path: str, *, dispatcher: Dispatcher | None = None,
                 socket_dir: str | None = None, mode: int = 0o600, dir_mode: int = 0o700,
                 uid: int | None = None, gid: int | None = None):
        self.switch = switch
        self.dispatcher = dispatcher if dispatcher is not None else standard_dispatcher()
        self.path = check_path(path)
        self.socket_dir = socket_dir or os.path.join(os.path.dirname(self.path) or ".", "ns")
        self.mode, self.dir_mode = mode, dir_mode
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[int, Listener] = {}
        self._connections: dict[int, _Connection] = {}
        self._by_name: dict[str, int] = {}       # bound namespace name -> listener fd
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, READ, None)
        self._stopping = False
        self._prune_pending = False
        self._closed = False
        self._unsubscribe = None
        try:
            make_dir(os.path.dirname(self.path), dir_mode)
            clear_stale(self.path)
            sock = listen(self.path, mode, uid, gid)
        except BaseException:
            self._close_selector()
            raise
        self._add_listener(sock, Binding(self.path, None, "(admin)", switch))
        subscribe = getattr(switch, "subscribe", None)
        if subscribe is not None:
            self._unsubscribe = subscribe(self._on_event)
        log.info("control socket listening on %s (admin)", self.path)

    # ------------------------------------------------------------- driving

    def fileno(self) -> int:
        """One fd, readable whenever ``poll(0)`` has work (an epoll fd on Linux)."""
        return self._selector.fileno()

    def filenos(self) -> list[int]:
        """Every listening and connected fd, for loops that watch them one by one."""
        return list(self._listeners) + list(self._connections)

    def write_filenos(self) -> list[int]:
        """Connections with replies waiting for the socket to drain (watch for writability)."""
        return [fd for fd, c in self._connections.items() if c.outbuf]

    def poll(self, timeout: float | None = 0) -> int:
        """Serve what is ready, waiting at most ``timeout`` seconds; returns events handled."""
        handled = 0
        for key, events in self._selector.select(timeout):
            if key.fd == self._wake_r:
                self._drain_wake()
                if self._prune_pending:
                    self._prune()
                continue
            self.handle_ready(key.fd, events)
            handled += 1
        return handled

    def handle_ready(self, fd: int, events: int = READ | WRITE) -> None:
        """Accept, read, dispatch, reply: whatever ``fd`` is ready for.  Never blocks."""
        if fd in self._listeners:
            self._accept(self._listeners[fd])
            return
        conn = self._connections.get(fd)
        if conn is None:
            return  # closed while the caller's loop still held the event
        if events & WRITE and conn.outbuf:
            self._flush(conn)
        if events & READ and fd in self._connections and conn.events & READ:
            self._read(conn)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until ``stop()`` (which may be called from another thread)."""
        while not self._stopping:
            self.poll(poll_interval)
        self._stopping = False

    def stop(self) -> None:
        """Make ``serve_forever`` return (safe from any thread)."""
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 256):
                pass
        except BlockingIOError:
            pass

    # ---------------------------------------------------------- connections

    def _accept(self, listener: Listener) -> None:
        for _ in range(_ACCEPT_BURST):
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:   # EMFILE and friends: leave it in the backlog
                log.warning("accept on %s failed: %s", listener.binding.path, exc)
                return
            sock.setblocking(False)
            peer = peer_of(sock)
            binding = listener.binding
            session = Session(self, self.switch, binding, peer)
            conn = _Connection(sock, binding, peer, session)
            self._connections[sock.fileno()] = conn
            self._selector.register(sock.fileno(), READ, None)
            log.info("connection on %s (%s) from %s", binding.path,
                     "admin" if binding.admin else f"as {binding.name}", peer)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(conn, f"read failed: {exc}")
            return
        if not data:
            conn.eof = True
            if conn.inbuf and not conn.discarding:   # a last request without its newline
                line, conn.inbuf = bytes(conn.inbuf), bytearray()
                self._serve_line(conn, line)
            self._update(conn)
            return
        conn.inbuf += data
        while True:
            nl = conn.inbuf.find(b"\n")
            if nl < 0:
                break
            line = bytes(conn.inbuf[:nl])
            del conn.inbuf[:nl + 1]
            if conn.discarding:
                conn.discarding = False
                continue
            self._serve_line(conn, line)
            if conn.sock.fileno() < 0:
                return
            if conn.eof:
                conn.inbuf.clear()
                break
        if len(conn.inbuf) > protocol.MAX_LINE and not conn.discarding:
            conn.inbuf.clear()
            conn.discarding = True
            self._queue(conn, protocol.encode_error(
                None, protocol.MessageTooLong.code,
                f"request line longer than {protocol.MAX_LINE} bytes: discarded up to its newline"))
        elif conn.discarding:
            conn.inbuf.clear()
        self._update(conn)

    def _serve_line(self, conn: _Connection, line: bytes) -> None:
        if not line.strip():
            return
        request_id = None
        try:
            request = protocol.decode_request(line)
            request_id = request.id
            if not self._binding_alive(conn.binding):
                conn.eof = True     # answer, then close: this socket's namespace is gone
                raise errors.NotFound(f"namespace {conn.binding.name!r} was destroyed")
            result = self.dispatcher.dispatch(conn.session, request)
            reply = protocol.encode_result(request_id, result)
        except errors.TapswitchError as exc:
            request_id = getattr(exc, "request_id", request_id)
            reply = protocol.encode_error(request_id, exc.code, exc.message)
        except Exception as exc:   # a bug: answer, log, keep serving everyone else
            log.exception("internal error serving %r", line[:200])
            reply = protocol.encode_error(request_id, "EIO", f"internal error: {exc!r}")
        conn.outbuf += reply
        if self._prune_pending:    # a namespace was destroyed: its sockets go before we answer
            self._prune()
        if conn.sock.fileno() >= 0:
            self._flush(conn)

    def _queue(self, conn: _Connection, data: bytes) -> None:
        conn.outbuf += data
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    log.warning("write to %s failed: %s", conn.peer, exc)
                self._close(conn, "peer went away")
                return
            del conn.outbuf[:sent]
        if len(conn.outbuf) > _OUTPUT_LIMIT:
            self._close(conn, f"{len(conn.outbuf)} bytes of replies unread")
            return
        self._update(conn)

    def _update(self, conn: _Connection) -> None:
        fd = conn.sock.fileno()
        if fd not in self._connections:
            return
        if conn.eof and not conn.outbuf:
            self._close(conn, None)
            return
        events = 0
        if not conn.eof and len(conn.outbuf) < _OUTPUT_HIGH_WATER:
            events |= READ
        if conn.outbuf:
            events |= WRITE
        if events != conn.events:
            self._selector.modify(fd, events, None)
            conn.events = events

    def _close(self, conn: _Connection, reason: str | None) -> None:
        fd = conn.sock.fileno()
        if self._connections.pop(fd, None) is None:
            return
        self._selector.unregister(fd)
        conn.sock.close()
        if reason:
            log.info("connection from %s on %s closed: %s", conn.peer, conn.binding.path, reason)

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Close every socket and remove every socket file this server made."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        for conn in list(self._connections.values()):
            self._close(conn, None)
        for fd in list(self._listeners):
            self._drop_listener(fd)
        self._close_selector()

    def _close_selector(self) -> None:
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
