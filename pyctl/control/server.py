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

Peer credentials (SO_PEERCRED) are logged for every connection (rate-limited: a flood
of connections must not flood the log) and every configuring request.

What a client may take is bounded (``pyctl.control.admission``, ``[daemon.control]``):
connection slots per socket, in all, and apart for the admin socket; requests per second
per namespace socket; the size and nesting of a request; and a connection with no request
for ``idle_timeout`` seconds is closed (after a last ``ETIMEDOUT`` notice, id null, which
``ControlClient`` takes as its cue to reconnect).  The server's deadlines are a timerfd in
its own epoll set, so they fire however the server is driven.

The server owns no thread and no event loop.  It is non-blocking and driven
from outside: watch ``fileno()`` (one epoll fd that is readable whenever a
listener or a connection needs service) and call ``poll(0)``; or watch each
of ``filenos()`` and call ``handle_ready(fd)``.  ``serve_forever()`` is the
same machinery in a loop, for tests and tools.

The namespace sockets are in ``pyctl.control.bindings``, the socket files and
peer credentials in ``pyctl.control.sockets``, which listeners are accepted from in
``pyctl.control.accepting``.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import time

from pyctl import errors

from pyctl.config.spec import ControlLimits
from pyctl.control import protocol
from pyctl.control.accepting import AcceptGate
from pyctl.control.admission import Admission
from pyctl.control.bindings import Binding, Bindings, Listener
from pyctl.control.connection import Connection
from pyctl.control.dispatch import Dispatcher, Session
from pyctl.control.sockets import Peer, check_path, clear_stale, listen, make_dir, peer_of
from pyctl.control.timer import Timer
from pyctl.control.verbs import standard_dispatcher

__all__ = ["ControlServer", "Binding", "Peer"]

log = logging.getLogger("tapswitch.control")

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_RECV_SIZE = 64 * 1024
_OUTPUT_HIGH_WATER = 1 << 20       # stop reading requests from a client this far behind
_OUTPUT_LIMIT = protocol.MAX_REPLY  # drop a client that stopped reading its replies
_ACCEPT_BURST = 32
_SWEEP_EVERY = 1.0                  # seconds between looks for idle connections (at most)


class ControlServer(Bindings):
    """The control socket(s) of one switch, driven by the caller's event loop."""

    def __init__(self, switch, path: str, *, dispatcher: Dispatcher | None = None,
                 socket_dir: str | None = None, mode: int = 0o600, dir_mode: int = 0o700,
                 uid: int | None = None, gid: int | None = None,
                 limits: ControlLimits | None = None):
        self.switch = switch
        self.dispatcher = dispatcher if dispatcher is not None else standard_dispatcher()
        self.path = check_path(path)
        self.socket_dir = socket_dir or os.path.join(os.path.dirname(self.path) or ".", "ns")
        self.mode, self.dir_mode = mode, dir_mode
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[int, Listener] = {}
        self._connections: dict[int, Connection] = {}
        self._by_name: dict[str, int] = {}       # bound namespace name -> listener fd
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, READ, None)
        self._timer = Timer()
        self._selector.register(self._timer.fileno(), READ, None)
        self.admission = Admission(limits if limits is not None else ControlLimits())
        self.limits = self.admission.limits
        self._gate = AcceptGate(self._selector, self._listeners, self.admission)
        self._throttled: set[int] = set()          # connection fds waiting for a token
        self._next_sweep: float | None = None
        self.idle_closed = 0
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
        """Every fd to watch for reading, for loops that watch them one by one: the server's
        timer, the listeners accepted from now, the connections."""
        return ([self._timer.fileno()] + [fd for fd, lst in self._listeners.items() if lst.watched]
                + list(self._connections))

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
        if fd == self._timer.fileno():
            self._timer.clear()
            self._on_time(time.monotonic())
            return
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
        admission = self.admission
        for _ in range(_ACCEPT_BURST):
            if not admission.has_room(listener):
                admission.full(listener)
                self._gate.full(listener)
                return
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:   # EMFILE and friends: it stays in the backlog
                if admission.spend_reserve(listener, exc):
                    continue
                self._timer.arm(admission.accept_failed(listener, exc, time.monotonic()))
                self._gate.pause()
                return
            sock.setblocking(False)
            peer = peer_of(sock)
            binding = listener.binding
            session = Session(self, self.switch, binding, peer)
            conn = Connection(sock, listener, peer, session, time.monotonic())
            self._connections[sock.fileno()] = conn
            self._selector.register(sock.fileno(), READ, None)
            admission.opened(listener)
            self._arm_sweep()
            admission.connection_log.log(logging.INFO, "connection on %s (%s) from %s",
                                         binding.path, "admin" if binding.admin
                                         else f"as {binding.name}", peer)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(conn, f"read failed: {exc}")
            return
        conn.last_active = time.monotonic()
        if not data:
            conn.eof = True
            if conn.inbuf and not conn.discarding:
                conn.inbuf += b"\n"           # a last request without its newline
        else:
            conn.inbuf += data
        self._serve_buffered(conn)

    def _serve_buffered(self, conn: Connection) -> None:
        """Serve the complete request lines read so far, as far as the socket's rate allows."""
        limit = self.limits.request_bytes
        while not conn.throttled:
            nl = conn.inbuf.find(b"\n")
            if nl < 0:
                break
            if conn.discarding:
                del conn.inbuf[:nl + 1]
                conn.discarding = False
                continue
            if conn.inbuf[:nl].strip() and self._must_wait(conn):
                break
            line = bytes(conn.inbuf[:nl])
            del conn.inbuf[:nl + 1]
            self._serve_line(conn, line)
            if conn.sock.fileno() < 0:
                return
            if conn.eof:        # the last line, or its namespace went: nothing more is served
                conn.inbuf.clear()
                break
        if not conn.throttled and len(conn.inbuf) > limit and not conn.discarding:
            conn.inbuf.clear()
            conn.discarding = True
            conn.listener.counters.refused += 1
            self._queue(conn, protocol.encode_error(
                None, protocol.MessageTooLong.code,
                f"request line longer than {limit} bytes: discarded up to its newline"))
        elif conn.discarding:
            conn.inbuf.clear()
        if conn.sock.fileno() >= 0:
            self._update(conn)

    def _must_wait(self, conn: Connection) -> bool:
        """Whether the next request of ``conn`` waits for its socket's rate limit."""
        now = time.monotonic()
        wait = self.admission.request_wait(conn.listener, now)
        if not wait:
            return False
        conn.throttled = True
        conn.listener.counters.throttled += 1
        self._throttled.add(conn.sock.fileno())
        self._timer.arm(now + wait)
        return True

    def _serve_line(self, conn: Connection, line: bytes) -> None:
        if not line.strip():
            return
        request_id = None
        try:
            request = protocol.decode_request(line, max_bytes=self.limits.request_bytes,
                                              max_depth=self.limits.request_depth)
            request_id = request.id
            if not self._binding_alive(conn.binding):
                conn.eof = True     # answer, then close: this socket's namespace is gone
                raise errors.NotFound(f"namespace {conn.binding.name!r} was destroyed")
            result = self.dispatcher.dispatch(conn.session, request)
            reply = protocol.encode_result(request_id, result)
        except (protocol.MessageTooLong, protocol.TooDeep) as exc:
            conn.listener.counters.refused += 1
            reply = protocol.encode_error(getattr(exc, "request_id", None), exc.code, exc.message)
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

    def set_limits(self, limits: ControlLimits) -> None:
        """``[daemon.control]`` changed (a reload): new limits for the next accept, request
        and token; sockets held back for want of a slot, requests waiting for a token and
        the idle sweep are looked at again under them at once."""
        now = time.monotonic()
        self.admission.set_limits(limits, self._listeners.values(), now)
        self.limits = self.admission.limits
        self._next_sweep = None
        self._arm_sweep()
        self._timer.arm(now)

    # ------------------------------------------------------------- deadlines

    def _on_time(self, now: float) -> None:
        """The timer fired: resume what waited for a token or the back-off, close the idle."""
        self._gate.resume(now)
        if self._throttled:
            for fd in list(self._throttled):
                conn = self._connections.get(fd)
                self._throttled.discard(fd)
                if conn is not None:
                    conn.throttled = False
                    self._serve_buffered(conn)
        if self._next_sweep is not None and now >= self._next_sweep:
            self._next_sweep = None
            self._close_idle(now)
            self._arm_sweep()
        # The timer holds one deadline: whatever else is pending is armed again.
        if self._next_sweep is not None:
            self._timer.arm(self._next_sweep)
        if now < self.admission.backoff_until:
            self._timer.arm(self.admission.backoff_until)

    def _arm_sweep(self) -> None:
        if self._next_sweep is None and self._connections:
            self._next_sweep = time.monotonic() + min(_SWEEP_EVERY, self.limits.idle_timeout / 4)
            self._timer.arm(self._next_sweep)

    def _close_idle(self, now: float) -> None:
        timeout = self.limits.idle_timeout
        for conn in list(self._connections.values()):
            if not conn.idle(now, timeout):
                continue
            conn.listener.counters.idle_closed += 1
            self.idle_closed += 1
            if not conn.outbuf:      # a last word, if the socket takes it now
                try:
                    conn.sock.send(protocol.encode_error(
                        None, protocol.IDLE_CLOSE, f"no request for {timeout} s: closed"))
                except OSError:
                    pass
            self._close(conn, f"idle for {timeout} s" if not conn.outbuf
                        else f"replies unread for {timeout} s")

    def _queue(self, conn: Connection, data: bytes) -> None:
        conn.outbuf += data
        self._flush(conn)

    def _flush(self, conn: Connection) -> None:
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
            conn.last_active = time.monotonic()
        if len(conn.outbuf) > _OUTPUT_LIMIT:
            self._close(conn, f"{len(conn.outbuf)} bytes of replies unread")
            return
        self._update(conn)

    def _update(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if fd not in self._connections:
            return
        if conn.eof and not conn.outbuf:
            self._close(conn, None)
            return
        events = 0
        if not conn.eof and not conn.throttled and len(conn.outbuf) < _OUTPUT_HIGH_WATER:
            events |= READ
        if conn.outbuf:
            events |= WRITE
        if events != conn.events:
            self._selector.modify(fd, events, None)
            conn.events = events

    def _close(self, conn: Connection, reason: str | None) -> None:
        fd = conn.sock.fileno()
        if self._connections.pop(fd, None) is None:
            return
        self._selector.unregister(fd)
        self._throttled.discard(fd)
        conn.sock.close()
        self.admission.closed(conn.listener)
        if self._gate.unwatched and not self._closed:
            self._gate.resume(time.monotonic())
        if reason:
            self.admission.connection_log.log(logging.INFO, "connection from %s on %s closed: %s",
                                              conn.peer, conn.binding.path, reason)

    def stats(self, binding: Binding | None = None) -> dict:
        """Connections and what the limits refused: every socket's for the admin (``binding``
        None or admin), only its own socket's for a namespace socket's client."""
        sockets = {("(admin)" if lst.binding.admin else lst.binding.name): lst.counters.to_dict()
                   for lst in self._listeners.values()
                   if binding is None or binding.admin or lst.binding is binding}
        if binding is not None and not binding.admin:
            return {"sockets": sockets}
        adm = self.admission
        return {"sockets": sockets, "connections": len(self._connections),
                "namespace_connections": adm.namespace_connections,
                "accept_errors": adm.accept_errors, "admin_reserve_used": adm.admin_reserve_used,
                "idle_closed": self.idle_closed,
                "log_suppressed": adm.accept_log.suppressed + adm.connection_log.suppressed,
                "limits": dict(vars(self.limits))}

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
        self._timer.close()
        self.admission.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
