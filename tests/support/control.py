"""Fixtures for the control-socket tests: a served switch in a tmpdir, raw line I/O."""
import json
import socket
import threading

from pyctl.control.server import ControlServer
from pyctl.model.switch import Switch


class Served:
    """A Switch with a ControlServer running serve_forever() in a thread; ``with`` closes it."""

    def __init__(self, tmp_path, switch=None, **server_kwargs):
        self.switch = switch if switch is not None else Switch()
        self.path = str(tmp_path / "run" / "control.sock")
        self.server = ControlServer(self.switch, self.path, **server_kwargs)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tenants(switch):
    """init -> tenants (L2: 10.1.0.1/24) -> web (10.1.0.10), db (10.1.0.20); init -> other (L2)."""
    switch.create("tenants", "l2")
    switch.address_add("tenants", "10.1.0.1/24")
    switch.create("web", "l3", parent="tenants")
    switch.assign_and_push("10.1.0.10/24", "web")
    switch.create("db", "l3", parent="tenants")
    switch.assign_and_push("10.1.0.20/24", "db")
    switch.create("other", "l2")
    switch.address_add("other", "10.1.0.1/24")
    switch.port_add("tsw-up", "tenants")
    return switch


class RawLine:
    """A plain socket speaking lines, for what the client would never send."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def reply(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, verb, args=None, request_id=1):
        self.send(json.dumps({"id": request_id, "verb": verb, "args": args or {}}).encode() + b"\n")
        return self.reply()

    def close(self):
        self.sock.close()
