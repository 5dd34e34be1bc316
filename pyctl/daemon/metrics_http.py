"""The optional Prometheus listener (``[daemon] metrics = "127.0.0.1:9477"``; off unless set).

A small threaded HTTP server (``http.server``) on its own thread: ``GET /metrics`` (or
``HEAD``) answers the Prometheus text of ``render()``, every other path 404, every other
method 405.  Bounded: at most ``max_connections`` requests are served at once (one more is
answered 503 at once and closed, counted), each connection has ``timeout`` seconds to send
its request and take its answer, and a request line or a header block too long is refused
by ``http.server`` itself.

What it serves is the admin's view (every namespace, the switch-wide series): bind it to a
loopback address, or protect it as you would the admin socket (docs/operations.md).
``render`` runs in the listener's thread; the daemon gives one that asks its own thread for
the text (``Daemon.call``), so the counters are read where the daemon reads them.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from pyctl.ops.exposition import CONTENT_TYPE

__all__ = ["MetricsListener"]

log = logging.getLogger("tapswitch.metrics")

PATH = "/metrics"


class _Handler(BaseHTTPRequestHandler):
    server_version = "tapswitch"
    protocol_version = "HTTP/1.0"        # one request per connection: a slot is not held idle

    def setup(self):
        self.timeout = self.server.listener.timeout
        super().setup()

    def do_GET(self):
        self._serve(body=True)

    def do_HEAD(self):
        self._serve(body=False)

    def _method_not_allowed(self):
        self._reply(405, b"only GET /metrics\n", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def _serve(self, body: bool):
        if self.path.split("?", 1)[0] != PATH:
            self._reply(404, b"not found: the metrics are at /metrics\n")
            return
        try:
            text = self.server.listener.render().encode()
        except Exception as exc:          # the daemon did not answer in time, or is stopping
            log.warning("metrics request from %s not served: %r", self.client_address[0], exc)
            self._reply(503, b"the switch did not answer\n")
            return
        self._reply(200, text, content_type=CONTENT_TYPE, body=body)

    def _reply(self, code: int, data: bytes, *, content_type="text/plain; charset=utf-8",
               body=True, extra=None):
        self.server.listener.count(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        self.server.listener.count(code)      # http.server's own refusals (414, 431, 400, 501)
        super().send_error(code, message, explain)

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.client_address[0], fmt % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, listener):
        self.listener = listener
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        if not self.listener.slots.acquire(blocking=False):
            self.listener.count(503)
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            # The slot is free before the client sees the close: it may come back at once.
            self.listener.slots.release()
            self.shutdown_request(request)


class MetricsListener:
    """``MetricsListener((host, port), render).start()``; ``close()`` stops it."""

    def __init__(self, address: tuple[str, int], render: Callable[[], str], *,
                 max_connections: int = 8, timeout: float = 5.0):
        self.render, self.timeout = render, timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        self.requests: Counter[int] = Counter()           # answers by status code
        self._lock = threading.Lock()
        self._server = _Server(address, self)
        self.address = self._server.server_address[:2]
        self._thread = None

    def count(self, code: int) -> None:
        with self._lock:
            self.requests[code] += 1

    def start(self) -> "MetricsListener":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="tapswitch-metrics", daemon=True)
        self._thread.start()
        log.info("metrics listener on http://%s:%d%s (the admin's view)",
                 *(f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0],
                   self.address[1]), PATH)
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()
