"""A datagram socket standing in for systemd's notification socket (NOTIFY_SOCKET), and
what one notification says."""
import contextlib
import socket


@contextlib.contextmanager
def notify_socket(directory, timeout=30.0):
    """(path, socket) bound in ``directory``; ``received(socket)`` reads one message."""
    path = str(directory / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(timeout)
        yield path, s


def received(sock) -> dict:
    """One notification as {KEY: value}."""
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().split("\n"))
