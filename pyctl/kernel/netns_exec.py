"""Running code inside a kernel network namespace: setns/unshare via ctypes.

On Linux a network namespace belongs to a *thread*, and Python 3.11 has no
``os.setns``. Everything here therefore works on a helper thread or a forked
child, never on the caller's thread, so the caller's namespace never changes:

- ``in_netns_thread(fd, func)`` runs ``func`` on a fresh thread that first
  joins the namespace. Sockets (and netlink sockets) keep the namespace they
  were created in, and processes started from that thread inherit it, so this
  is how ``NetNamespace.socket`` and ``NetNamespace.popen`` work, with no fork.
- ``call_in_netns(fd, func, ...)`` forks a child that joins the namespace, runs
  a Python callable and sends back its (pickled) result or exception.
- ``create_named_netns(path)`` creates a namespace (unshare on a helper
  thread) and bind-mounts it at ``path`` like ``ip netns add`` does.
- ``netns_cookie(fd)``: the namespace's cookie (SO_NETNS_COOKIE), a 64-bit number
  the kernel never gives another namespace until it reboots: what a name that
  may have been deleted and made again by someone else is checked against.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback

CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2
SO_NETNS_COOKIE = 71       # <asm-generic/socket.h>, Linux 5.14

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _raise_errno(what: str, path: str | None = None) -> None:
    code = ctypes.get_errno()
    raise OSError(code, f"{what}: {os.strerror(code)}", path)


def setns_current_thread(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        _raise_errno("setns")


def in_netns_thread(fd: int | None, func, *args, **kwargs):
    """Run ``func(*args, **kwargs)`` on a new thread inside namespace ``fd``.

    ``fd=None`` runs it in the caller's namespace. Returns the result or
    re-raises the exception. The helper thread ends afterwards, so no thread
    of the process is left in the namespace.
    """
    outcome: list = []

    def body():
        try:
            if fd is not None:
                setns_current_thread(fd)
            outcome.append((True, func(*args, **kwargs)))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))

    thread = threading.Thread(target=body, name="netns-helper", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if ok:
        return value
    raise value


_rundir_ready: set[str] = set()


def _make_rundir_shared(rundir: str) -> None:
    """Make ``rundir`` a shared mount, as iproute2 does for /run/netns, so the
    namespace bind mounts are seen from every mount namespace."""
    if rundir in _rundir_ready:
        return
    os.makedirs(rundir, mode=0o755, exist_ok=True)
    bdir = rundir.encode()
    if _libc.mount(b"none", bdir, None, MS_SHARED | MS_REC, None) != 0:
        if _libc.mount(bdir, bdir, b"none", MS_BIND | MS_REC, None) != 0:
            _raise_errno("bind-mount of netns run dir", rundir)
        if _libc.mount(b"none", bdir, None, MS_SHARED | MS_REC, None) != 0:
            _raise_errno("sharing netns run dir", rundir)
    _rundir_ready.add(rundir)


def _current_cookie() -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        return struct.unpack("Q", probe.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]


def netns_cookie(fd: int | None) -> int:
    """The cookie of the namespace open at ``fd`` (None: the caller's own)."""
    return in_netns_thread(fd, _current_cookie)


def create_named_netns(path: str, before_bind=None) -> None:
    """Create a new network namespace and pin it at ``path`` (a bind mount).

    ``before_bind(cookie)``, if given, runs once the namespace exists and before it
    gets its name: whoever records what it made can do so before anyone could see
    it (if it raises, the namespace goes).  Raises FileExistsError if ``path``
    exists; leaves nothing behind on error.
    """
    _make_rundir_shared(os.path.dirname(path))
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))

    def unshare_and_bind():
        if _libc.unshare(CLONE_NEWNET) != 0:
            _raise_errno("unshare(CLONE_NEWNET)")
        if before_bind is not None:
            before_bind(_current_cookie())
        src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _libc.mount(src, path.encode(), b"none", MS_BIND, None) != 0:
            _raise_errno("bind-mount of the namespace", path)

    try:
        in_netns_thread(None, unshare_and_bind)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise


def remove_named_netns(path: str) -> bool:
    """Unpin the namespace at ``path``. Returns False if it was already gone."""
    if not os.path.exists(path):
        return False
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not mounted
            raise OSError(code, f"umount: {os.strerror(code)}", path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


class RemoteError(Exception):
    """A child's exception that could not be pickled back, as text."""


def call_in_netns(fd: int, func, args=(), kwargs=None, timeout: float = 60.0, cpus=None):
    """Fork a child that joins namespace ``fd`` (and runs on ``cpus``, if given) and
    runs ``func(*args, **kwargs)``.

    Returns the child's (picklable) result or re-raises its exception, with the
    child's traceback attached as a note. A child still running after
    ``timeout`` seconds is killed and TimeoutError is raised.
    """
    kwargs = kwargs or {}
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns
        status = 0
        try:
            os.close(rfd)
            setns_current_thread(fd)
            try:
                if cpus is not None:
                    os.sched_setaffinity(0, cpus)
                outcome = (True, func(*args, **kwargs), "")
            except BaseException as exc:
                outcome = (False, exc, traceback.format_exc())
            try:
                data = pickle.dumps(outcome)
            except Exception as exc:
                data = pickle.dumps((False, RemoteError(repr(outcome[1])),
                                     f"result not picklable: {exc!r}"))
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view):]
        except BaseException:
            status = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)

    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"{getattr(func, '__name__', func)!s} did not "
                                   f"finish within {timeout} s in the namespace")
            ready, _, _ = select.select([rfd], [], [], left)
            if ready:
                chunk = os.read(rfd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        raise ChildProcessError(f"namespace child died without a result "
                                f"(wait status {status})")
    ok, value, tb = pickle.loads(b"".join(chunks))
    if ok:
        return value
    if tb:
        value.add_note("Traceback in the namespace child:\n" + tb)
    raise value
