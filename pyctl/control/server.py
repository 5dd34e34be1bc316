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
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import stat
import struct
from dataclasses import dataclass, field

from pyctl import errors

from pyctl.control import protocol
from pyctl.control.dispatch import Dispatcher, Session
from pyctl.control.verbs import standard_dispatcher

__all__ = ["ControlServer", "Binding", "Peer"]

log = logging.getLogger("pyctl.control.server")

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_RECV_SIZE = 64 * 1024
_OUTPUT_HIGH_WATER = 1 << 20       # stop reading requests from a client this far behind
_OUTPUT_LIMIT = protocol.MAX_REPLY  # drop a client that stopped reading its replies
_ACCEPT_BURST = 32
_MAX_SUN_PATH = 107
_PEERCRED = struct.Struct("3i")


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid={self.pid} uid={self.uid} gid={self.gid}"


@dataclass(frozen=True)
class Binding:
    """What a listening socket's connections act as: ``namespace`` is an id (None for the
    admin socket), ``api`` the model as they see it (the Switch, or an acting context)."""
    path: str
    namespace: int | None
    name: str
    api: object = field(compare=False, repr=False, default=None)

    @property
    def admin(self) -> bool:
        return self.namespace is None


class _Listener:
    def __init__(self, sock: socket.socket, binding: Binding, identity: tuple[int, int]):
        self.sock, self.binding, self.identity = sock, binding, identity


class _Connection:
    def __init__(self, sock: socket.socket, binding: Binding, peer: Peer, session: Session):
        self.sock, self.binding, self.peer, self.session = sock, binding, peer, session
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.discarding = False    # skipping the rest of an oversize line
        self.eof = False           # the peer shut down its side: close once replies are out
        self.events = READ


def _peer_of(sock: socket.socket) -> Peer:
    try:
        pid, uid, gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    except OSError:
        return Peer(0, -1, -1)
    return Peer(pid, uid, gid)


def _check_path(path: str) -> str:
    path = os.fspath(path)
    if not path or "\0" in path:
        raise errors.InvalidArgument(f"invalid socket path {path!r}")
    if len(os.fsencode(path)) > _MAX_SUN_PATH:
        raise errors.InvalidArgument(
            f"socket path {path!r} is longer than {_MAX_SUN_PATH} bytes (the AF_UNIX limit)")
    return path


def _make_dir(directory: str, mode: int) -> None:
    """Create ``directory`` with ``mode`` (parents too); an existing one is kept as it is,
    unless anyone may write to it without the sticky bit (then we refuse: files there could
    be swapped under us)."""
    if not directory:
        return
    try:
        os.makedirs(directory, mode=mode)
        os.chmod(directory, mode)   # makedirs' mode goes through the umask
    except FileExistsError:
        st = os.stat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise errors.AlreadyExists(f"{directory!r} exists and is not a directory") from None
        if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
            raise errors.PermissionDenied(
                f"socket directory {directory!r} is world-writable: refusing to put sockets there")


def _clear_stale(path: str) -> None:
    """Remove a socket file nobody listens on; refuse to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise errors.AlreadyExists(f"{path!r} exists and is not a socket: not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        return
    except OSError as exc:
        raise errors.Busy(f"cannot tell whether {path!r} is in use: {exc}") from None
    finally:
        probe.close()
    raise errors.Busy(f"{path!r} is in use: another tapswitch is listening there")


def _listen(path: str, mode: int, uid: int | None, gid: int | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                         | socket.SOCK_CLOEXEC)
    try:
        old = os.umask(0o777 & ~mode)   # the file is born with the right mode: no window
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, mode)
        if uid is not None or gid is not None:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise errors.TapswitchError(f"cannot listen on {path!r}: {exc.strerror}") from None
    return sock


class ControlServer:
    """The control socket(s) of one switch, driven by the caller's event loop."""

    def __init__(self, switch, path: str, *, dispatcher: Dispatcher | None = None,
                 socket_dir: str | None = None, mode: int = 0o600, dir_mode: int = 0o700,
                 uid: int | None = None, gid: int | None = None):
        self.switch = switch
        self.dispatcher = dispatcher if dispatcher is not None else standard_dispatcher()
        self.path = _check_path(path)
        self.socket_dir = socket_dir or os.path.join(os.path.dirname(self.path) or ".", "ns")
        self.mode, self.dir_mode = mode, dir_mode
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[int, _Listener] = {}
        self._connections: dict[int, _Connection] = {}
        self._by_name: dict[str, int] = {}       # bound namespace name -> listener fd
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, READ, None)
        self._stopping = False
        self._prune_pending = False
        self._closed = False
        self._unsubscribe = None
        try:
            _make_dir(os.path.dirname(self.path), dir_mode)
            _clear_stale(self.path)
            sock = _listen(self.path, mode, uid, gid)
        except BaseException:
            self._close_selector()
            raise
        self._add_listener(sock, Binding(self.path, None, "(admin)", switch))
        subscribe = getattr(switch, "subscribe", None)
        if subscribe is not None:
            self._unsubscribe = subscribe(self._on_event)
        log.info("control socket listening on %s (admin)", self.path)

    # ------------------------------------------------------------ bindings

    def bind_namespace(self, name_or_id, *, mode: int | None = None,
                       uid: int | None = None, gid: int | None = None) -> str:
        """Open ``<socket_dir>/<name>.sock`` acting as that namespace; returns its path."""
        api = self.switch.as_namespace(name_or_id)
        ns = api.acting
        if ns.name in self._by_name:
            raise errors.AlreadyExists(f"namespace {ns.name!r} already has a control socket: "
                                       f"{self._listeners[self._by_name[ns.name]].binding.path}")
        path = _check_path(os.path.join(self.socket_dir, f"{ns.name}.sock"))
        _make_dir(self.socket_dir, self.dir_mode)
        _clear_stale(path)
        sock = _listen(path, self.mode if mode is None else mode, uid, gid)
        self._add_listener(sock, Binding(path, ns.id, ns.name, api))
        log.info("control socket %s acts as namespace %s (id %d, %s)",
                 path, ns.name, ns.id, ns.kind)
        return path

    def unbind_namespace(self, name: str) -> None:
        """Close a namespace's socket, its open connections, and remove the file."""
        fd = self._by_name.get(name)
        if fd is None:
            raise errors.NotFound(f"namespace {name!r} has no control socket")
        self._drop_listener(fd)

    def bindings(self) -> dict[str, str]:
        """Bound namespace name -> socket path (the admin socket is not listed)."""
        return {name: self._listeners[fd].binding.path for name, fd in self._by_name.items()}

    def _add_listener(self, sock: socket.socket, binding: Binding) -> None:
        st = os.stat(binding.path)
        self._listeners[sock.fileno()] = _Listener(sock, binding, (st.st_dev, st.st_ino))
        self._selector.register(sock.fileno(), READ, None)
        if not binding.admin:
            self._by_name[binding.name] = sock.fileno()

    def _drop_listener(self, fd: int) -> None:
        listener = self._listeners.pop(fd)
        self._selector.unregister(fd)
        binding = listener.binding
        if not binding.admin:
            self._by_name.pop(binding.name, None)
        for conn in [c for c in self._connections.values() if c.binding is binding]:
            try:                   # a last answer ("destroyed") if the socket takes it now
                conn.sock.send(conn.outbuf)
            except OSError:
                pass
            self._close(conn, "its namespace socket was closed")
        listener.sock.close()
        try:  # only our own file: someone may have put a new one there since
            st = os.lstat(binding.path)
            if (st.st_dev, st.st_ino) == listener.identity:
                os.unlink(binding.path)
        except FileNotFoundError:
            pass
        log.info("control socket %s closed", binding.path)

    def _on_event(self, event) -> None:
        """Model change feed: a destroyed namespace loses its socket.

        May run on any thread (whoever changed the model), so it only marks the
        work and wakes the loop; the sockets are closed on the server's thread,
        before the reply to the request that destroyed it when there was one."""
        if getattr(event, "kind", None) == "namespace.destroy":
            self._prune_pending = True
            self._wake()

    def _prune(self) -> None:
        self._prune_pending = False
        for name, fd in list(self._by_name.items()):
            binding = self._listeners[fd].binding
            if not self._binding_alive(binding):
                self._drop_listener(fd)

    def _binding_alive(self, binding: Binding) -> bool:
        if binding.admin:
            return True
        try:
            binding.api.acting      # the context knows its namespace's uid: a new one
        except errors.NotFound:     # of the same name or id is not it
            return False
        return True

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

    def _accept(self, listener: _Listener) -> None:
        for _ in range(_ACCEPT_BURST):
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:   # EMFILE and friends: leave it in the backlog
                log.warning("accept on %s failed: %s", listener.binding.path, exc)
                return
            sock.setblocking(False)
            peer = _peer_of(sock)
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

