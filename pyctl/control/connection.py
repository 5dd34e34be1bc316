"""One client connection of the control server: its socket, who it is, what it has sent
that is not served yet and what is not yet written back."""
from __future__ import annotations

import selectors
import socket

from pyctl.control.bindings import Listener
from pyctl.control.dispatch import Session
from pyctl.control.sockets import Peer

__all__ = ["Connection"]


class Connection:
    def __init__(self, sock: socket.socket, listener: Listener, peer: Peer, session: Session,
                 now: float):
        self.sock, self.listener, self.peer, self.session = sock, listener, peer, session
        self.binding = listener.binding
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.discarding = False    # skipping the rest of an oversize line
        self.eof = False           # the peer shut down its side: close once replies are out
        self.throttled = False     # a request waits for its socket's rate limit
        self.events = selectors.EVENT_READ
        self.last_active = now     # last request or reply progress (idle timeout)

    def idle(self, now: float, timeout: float) -> bool:
        """No request nor reply progress for ``timeout`` seconds, and none waiting unread."""
        if now - self.last_active < timeout or self.throttled:
            return False
        try:
            return not self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:            # nothing to read (EAGAIN), or the socket is broken
            return True
