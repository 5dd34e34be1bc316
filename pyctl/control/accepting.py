"""Which listening sockets the control server accepts from now.

A listener without a free connection slot, or every listener while the process is out of
file descriptors, leaves the server's epoll set: a backlog nobody accepts from would keep
the server's fd readable, and the server would spin.  ``AcceptGate`` takes them out and
puts them back once a connection closes or the back-off ends (``pyctl.control.admission``
says when there is room).
"""
from __future__ import annotations

import selectors

from pyctl.control.admission import Admission
from pyctl.control.bindings import Listener

__all__ = ["AcceptGate"]


class AcceptGate:
    def __init__(self, selector: selectors.BaseSelector, listeners: dict[int, Listener],
                 admission: Admission):
        self._selector, self._listeners, self._admission = selector, listeners, admission
        self.unwatched: set[int] = set()        # listener fds not accepted from now

    def watch(self, fd: int, listener: Listener, want: bool) -> None:
        if want == listener.watched:
            return
        if want:
            self._selector.register(fd, selectors.EVENT_READ, None)
            self.unwatched.discard(fd)
        else:
            self._selector.unregister(fd)
            self.unwatched.add(fd)
        listener.watched = want

    def forget(self, fd: int, listener: Listener) -> None:
        """``listener`` is closing: out of the epoll set and of this gate."""
        if listener.watched:
            self._selector.unregister(fd)
        self.unwatched.discard(fd)

    def full(self, listener: Listener) -> None:
        """``listener`` is full: it stops; so do all namespace sockets if the total is."""
        if listener.binding.admin or not self._admission.total_full():
            self.watch(listener.sock.fileno(), listener, False)
            return
        for fd, other in list(self._listeners.items()):
            if not other.binding.admin:
                self.watch(fd, other, False)

    def pause(self) -> None:
        """Out of file descriptors: no listener is accepted from until the back-off ends."""
        for fd, listener in list(self._listeners.items()):
            self.watch(fd, listener, False)

    def resume(self, now: float) -> None:
        """After a connection closed or the back-off ended: accept again where there is room."""
        if now < self._admission.backoff_until:
            return
        for fd in list(self.unwatched):
            listener = self._listeners.get(fd)
            if listener is None:
                self.unwatched.discard(fd)
            elif self._admission.has_room(listener):
                self.watch(fd, listener, True)
