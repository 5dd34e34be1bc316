"""The control socket's files: checked paths, private directories, stale sockets
replaced and live ones refused, listening sockets born with their mode, and the
peer credentials (SO_PEERCRED) of a connection.  ``pyctl.control.server`` uses them."""
from __future__ import annotations

import os
import socket
import stat
import struct
from dataclasses import dataclass

from pyctl import errors

__all__ = ["Peer", "peer_of", "check_path", "make_dir", "clear_stale", "listen"]

_MAX_SUN_PATH = 107
BACKLOG = 1024      # connections waiting to be accepted (the kernel caps it at somaxconn)
_PEERCRED = struct.Struct("3i")


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of a connection (SO_PEERCRED)."""
    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid={self.pid} uid={self.uid} gid={self.gid}"


def peer_of(sock: socket.socket) -> Peer:
    try:
        pid, uid, gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    except OSError:
        return Peer(0, -1, -1)
    return Peer(pid, uid, gid)


def check_path(path: str) -> str:
    path = os.fspath(path)
    if not path or "\0" in path:
        raise errors.InvalidArgument(f"invalid socket path {path!r}")
    if len(os.fsencode(path)) > _MAX_SUN_PATH:
        raise errors.InvalidArgument(
            f"socket path {path!r} is longer than {_MAX_SUN_PATH} bytes (the AF_UNIX limit)")
    return path


def make_dir(directory: str, mode: int) -> None:
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


def clear_stale(path: str) -> None:
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


def listen(path: str, mode: int, uid: int | None, gid: int | None) -> socket.socket:
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
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise errors.TapswitchError(f"cannot listen on {path!r}: {exc.strerror}") from None
    return sock
