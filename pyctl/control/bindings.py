"""Namespace sockets: a listening socket per bound namespace, whose connections act as
that namespace (``Binding``), opened and closed on request and closed when the
namespace is destroyed.  ``Bindings`` is a part of ``pyctl.control.server.ControlServer``
(it uses the server's selector, listeners and connections)."""
from __future__ import annotations

import logging
import os
import selectors
import socket
from dataclasses import dataclass, field

from pyctl import errors
from pyctl.control.admission import SocketCounters
from pyctl.control.sockets import check_path, clear_stale, listen, make_dir

__all__ = ["Binding", "Bindings", "Listener"]

log = logging.getLogger("tapswitch.control")


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


class Listener:
    """A listening socket, what its connections act as, its file's (dev, inode), what it
    refused (``counters``), its request bucket, and whether the server accepts from it."""

    def __init__(self, sock: socket.socket, binding: Binding, identity: tuple[int, int]):
        self.sock, self.binding, self.identity = sock, binding, identity
        self.counters = SocketCounters()
        self.bucket = None          # pyctl.control.admission's, made on the first request
        self.watched = True         # in the server's epoll set (False: full or backing off)


class Bindings:
    """The listeners of a ControlServer and the namespaces they act as (mixed into it)."""

    def bind_namespace(self, name_or_id, *, mode: int | None = None,
                       uid: int | None = None, gid: int | None = None) -> str:
        """Open ``<socket_dir>/<name>.sock`` acting as that namespace; returns its path."""
        api = self.switch.as_namespace(name_or_id)
        ns = api.acting
        if ns.name in self._by_name:
            raise errors.AlreadyExists(f"namespace {ns.name!r} already has a control socket: "
                                       f"{self._listeners[self._by_name[ns.name]].binding.path}")
        path = check_path(os.path.join(self.socket_dir, f"{ns.name}.sock"))
        make_dir(self.socket_dir, self.dir_mode)
        clear_stale(path)
        self.switch.socket_opened(ns.id)      # its ancestors' sockets quotas (EDQUOT)
        try:
            sock = listen(path, self.mode if mode is None else mode, uid, gid)
        except BaseException:
            self.switch.socket_closed(ns.id, api.uid)
            raise
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
        self._listeners[sock.fileno()] = Listener(sock, binding, (st.st_dev, st.st_ino))
        self._selector.register(sock.fileno(), selectors.EVENT_READ, None)
        if not binding.admin:
            self._by_name[binding.name] = sock.fileno()

    def _drop_listener(self, fd: int) -> None:
        listener = self._listeners.pop(fd)
        self._gate.forget(fd, listener)
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
        if not binding.admin:
            self.switch.socket_closed(binding.namespace, binding.api.uid)
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
