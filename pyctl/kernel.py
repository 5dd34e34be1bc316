"""Kernel plumbing with pyroute2: network namespaces, links moved into them,
veth pairs, Linux bridges, and a cleanup registry that removes all of it.

Used by the daemon (TAP ports moved into a tenant's namespace), the demo, the
end-to-end tests, the test-rig API and bench/. Verbs read like ``ip``::

    ns = NetNamespace()                       # unique name, lo up, registered
    a, b = create_veth(unique_name("va"), unique_name("vb"), netns_b=ns)
    ns.configure(b, address="10.1.0.2/24", gateway="10.1.0.1")
    with ns.socket(socket.AF_INET, socket.SOCK_DGRAM) as s: ...
    ns.call(func, arg)                        # Python callable in a forked child
    ns.run(["ip", "addr"])                    # a command inside the namespace
    registry.cleanup()                        # everything, in reverse order

Errors are both ``pyctl.errors`` classes (stable ``code``) and the matching
OSError (kernel ``errno``): ``KernelNotFound`` is a NotFound and a
FileNotFoundError, and so on; bad arguments raise ``BadArgument``
(InvalidArgument and ValueError). Messages name the object and namespace.
A namespace object never changes the caller's own namespace: work
inside it runs on a helper thread or a forked child (see netns_exec).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import ipaddress
import itertools
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pyctl import errors, netns_exec

log = logging.getLogger(__name__)

NETNS_RUN_DIR = "/run/netns"
IFNAMSIZ = 16                       # including the trailing NUL
MAX_IFNAME = IFNAMSIZ - 1
_GONE = {errno.ENOENT, errno.ENODEV, errno.ESRCH, errno.ENXIO}

# ---------------------------------------------------------------- errors

class BadArgument(errors.InvalidArgument, ValueError):
    """A malformed name, address or value, refused before any kernel call."""


class _KernelErrorMixin:
    def __init__(self, code: int, message: str, filename: str | None = None):
        OSError.__init__(self, code, message, filename)
        self.message = message


class KernelError(_KernelErrorMixin, errors.TapswitchError, OSError):
    """A kernel refusal without a closer class; ``code`` is the errno's name."""

    @property
    def code(self) -> str:
        return errno.errorcode.get(self.errno, "EIO")


class KernelNotFound(_KernelErrorMixin, errors.NotFound, FileNotFoundError):
    """No such interface or namespace (ENOENT, ENODEV)."""


class KernelExists(_KernelErrorMixin, errors.AlreadyExists, FileExistsError):
    """The interface or namespace name is taken (EEXIST)."""


class KernelPermission(_KernelErrorMixin, errors.PermissionDenied, PermissionError):
    """The process lacks the capability (EPERM, EACCES)."""


class KernelBusy(_KernelErrorMixin, errors.Busy, OSError):
    """The object is in use (EBUSY)."""


_ERROR_CLASSES = {errno.ENOENT: KernelNotFound, errno.ENODEV: KernelNotFound,
                  errno.EEXIST: KernelExists, errno.EPERM: KernelPermission,
                  errno.EACCES: KernelPermission, errno.EBUSY: KernelBusy}


def kernel_error(code: int, message: str, filename: str | None = None) -> OSError:
    """The error for errno ``code``, with ``message`` naming what failed."""
    return _ERROR_CLASSES.get(code, KernelError)(code, message, filename)


# ---------------------------------------------------------------- names

_TAG_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_name_lock = threading.Lock()


def _new_tag() -> str:
    return "".join(secrets.choice(_TAG_ALPHABET) for _ in range(4))


_tag = _new_tag()
_counter = itertools.count()


def _reset_after_fork() -> None:
    global _tag, _counter
    _tag, _counter = _new_tag(), itertools.count()


os.register_at_fork(after_in_child=_reset_after_fork)


def _base36(n: int) -> str:
    digits = ""
    while True:
        n, r = divmod(n, 36)
        digits = _TAG_ALPHABET[r] + digits
        if n == 0:
            return digits


def process_tag() -> str:
    """The random tag of this process (4 chars), part of every unique name."""
    return _tag


def unique_name(prefix: str = "ts", maxlen: int = MAX_IFNAME) -> str:
    """A short name unique to this process and call: prefix + process tag +
    counter, at most ``maxlen`` (IFNAMSIZ-1 = 15) characters, so two
    topologies in one or two processes never collide."""
    if not prefix or not all(c.isalnum() or c in "-_" for c in prefix):
        raise BadArgument(f"name prefix must be letters, digits, '-' or '_': {prefix!r}")
    with _name_lock:
        name = f"{prefix}{_tag}{_base36(next(_counter))}"
    if len(name) > maxlen:
        raise BadArgument(f"prefix {prefix!r} too long: {name!r} exceeds {maxlen} characters")
    return name


def check_ifname(name: str) -> str:
    """Validate an interface name as the kernel would (dev_valid_name)."""
    if not isinstance(name, str) or not name or len(name) > MAX_IFNAME:
        raise BadArgument(f"interface name must be 1..{MAX_IFNAME} characters: {name!r}")
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise BadArgument(f"invalid interface name: {name!r}")
    return name


def check_netns_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise BadArgument(f"namespace name must be 1..255 characters: {name!r}")
    if name in (".", "..") or "/" in name or "\0" in name:
        raise BadArgument(f"invalid namespace name: {name!r}")
    return name


# ---------------------------------------------------------------- cleanup registry

@dataclass
class _Entry:
    key: int
    what: str
    undo: object          # callable()


class CleanupRegistry:
    """Records how to undo everything created through this module and undoes
    it in reverse order. ``cleanup()`` never raises: objects already gone are
    skipped silently, other failures are logged and returned.

    Only the process that registered an entry undoes it: a forked child
    (``NetNamespace.call``) never tears down its parent's objects.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: list[_Entry] = []
        self._keys = itertools.count(1)
        self._owner = os.getpid()

    def register(self, what: str, undo) -> int:
        """Record ``undo`` (a no-argument callable) for object ``what``; returns
        a key for ``forget``."""
        with self._lock:
            key = next(self._keys)
            self._entries.append(_Entry(key, what, undo))
            return key

    def forget(self, key: int) -> None:
        """Drop an entry whose object was removed explicitly."""
        with self._lock:
            self._entries = [e for e in self._entries if e.key != key]

    def pending(self) -> list[str]:
        """Descriptions of the objects still to undo, oldest first."""
        with self._lock:
            return [e.what for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def cleanup(self) -> list[tuple[str, BaseException]]:
        """Undo every entry, newest first. Returns the (what, error) failures."""
        if os.getpid() != self._owner:
            return []
        failures = []
        while True:
            with self._lock:
                if not self._entries:
                    break
                entry = self._entries.pop()
            try:
                entry.undo()
            except OSError as exc:
                if exc.errno not in _GONE:
                    failures.append((entry.what, exc))
            except Exception as exc:  # keep going: the rest must still go
                failures.append((entry.what, exc))
        for what, exc in failures:
            log.warning("cleanup of %s failed: %s", what, exc)
        return failures

    def install_signal_handlers(self, signums=(signal.SIGTERM, signal.SIGINT)) -> None:
        """On these signals: clean up, then behave as before (previous Python
        handler, KeyboardInterrupt for SIGINT, SystemExit(128+n) otherwise).
        Must be called from the main thread."""
        for signum in signums:
            previous = signal.getsignal(signum)

            def handler(num, frame, previous=previous):
                self.cleanup()
                if callable(previous) and previous not in (signal.default_int_handler,):
                    return previous(num, frame)
                if num == signal.SIGINT:
                    raise KeyboardInterrupt
                raise SystemExit(128 + num)

            signal.signal(signum, handler)


registry = CleanupRegistry()
"""The process-wide registry; ``atexit`` runs its cleanup."""

atexit.register(registry.cleanup)


# ---------------------------------------------------------------- netlink helpers

def _os_error(exc: NetlinkError, what: str) -> OSError:
    code = exc.code or errno.EIO
    return kernel_error(code, f"{what}: {os.strerror(code)}")


@contextlib.contextmanager
def _netlink_errors(what: str):
    try:
        yield
    except NetlinkError as exc:
        raise _os_error(exc, what) from None


def _link_index(ipr: IPRoute, ifname: str, where: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise KernelNotFound(errno.ENODEV, f"no interface {ifname!r} in {where}")
    return found[0]


@dataclass(frozen=True)
class LinkStats:
    """Counters of one interface, as the kernel reports them (IFLA_STATS64)."""
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int
    tx_dropped: int
    rx_errors: int
    tx_errors: int

    def __sub__(self, other: "LinkStats") -> "LinkStats":
        return LinkStats(*(getattr(self, f) - getattr(other, f)
                           for f in self.__dataclass_fields__))


class _Netns:
    """Operations common to a named namespace and the caller's own one."""

    name: str

    def _fd(self) -> int | None:
        raise NotImplementedError

    @contextlib.contextmanager
    def ipr(self):
        """An IPRoute whose netlink socket lives in this namespace."""
        fd = self._fd()
        if fd is None:
            ipr = IPRoute()
        else:
            sock = netns_exec.in_netns_thread(
                fd, socket.socket, socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
            ipr = IPRoute(fileno=sock.detach())
        try:
            yield ipr
        finally:
            ipr.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- links
    def links(self) -> list[str]:
        with self.ipr() as ipr:
            return sorted(l.get("ifname") for l in ipr.get_links())

    def has_link(self, ifname: str) -> bool:
        with self.ipr() as ipr:
            return bool(ipr.link_lookup(ifname=ifname))

    def link_index(self, ifname: str) -> int:
        with self.ipr() as ipr:
            return _link_index(ipr, ifname, str(self))

    def _set_link(self, ifname: str, what: str, **attrs) -> None:
        with self.ipr() as ipr, _netlink_errors(f"{what} {ifname} in {self}"):
            ipr.link("set", index=_link_index(ipr, ifname, str(self)), **attrs)

    def link_up(self, ifname: str) -> None:
        self._set_link(ifname, "setting up", state="up")

    def link_down(self, ifname: str) -> None:
        self._set_link(ifname, "setting down", state="down")

    def set_mtu(self, ifname: str, mtu: int) -> None:
        if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise BadArgument(f"MTU must be an integer in 68..65535: {mtu!r}")
        self._set_link(ifname, "setting MTU of", mtu=mtu)

    def set_txqueuelen(self, ifname: str, qlen: int) -> None:
        if not isinstance(qlen, int) or not 0 <= qlen <= 0xFFFFFFFF:
            raise BadArgument(f"txqueuelen must be a non-negative integer: {qlen!r}")
        self._set_link(ifname, "setting txqueuelen of", txqlen=qlen)

    def set_hwaddr(self, ifname: str, mac: str) -> None:
        self._set_link(ifname, "setting MAC of", address=mac)

    def delete_link(self, ifname: str) -> bool:
        """Delete an interface; False if it was already gone."""
        with self.ipr() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                return False
            try:
                ipr.link("del", index=found[0])
            except NetlinkError as exc:
                if exc.code in _GONE:
                    return False
                raise _os_error(exc, f"deleting {ifname} in {self}") from None
            return True

    def link_info(self, ifname: str) -> dict:
        """State of an interface: index, mtu, txqueuelen, MAC, up, operstate."""
        with self.ipr() as ipr:
            msg = ipr.get_links(_link_index(ipr, ifname, str(self)))[0]
            return {"index": msg["index"], "ifname": ifname,
                    "mtu": msg.get("mtu"), "txqueuelen": msg.get("txqlen"),
                    "address": msg.get("address"), "up": bool(msg["flags"] & 1),
                    "operstate": msg.get("operstate"), "master": msg.get("master")}

    def link_stats(self, ifname: str) -> LinkStats:
        """rx/tx packets, bytes, drops and errors of an interface."""
        with self.ipr() as ipr:
            msg = ipr.get_links(_link_index(ipr, ifname, str(self)))[0]
        s = msg.get("stats64") or msg.get("stats")
        return LinkStats(s["rx_packets"], s["tx_packets"], s["rx_bytes"], s["tx_bytes"],
                         s["rx_dropped"], s["tx_dropped"], s["rx_errors"], s["tx_errors"])

    # -- addresses and routes
    def add_address(self, ifname: str, cidr: str) -> None:
        """Add an address such as ``"10.1.0.2/24"`` to an interface."""
        iface = _parse_interface(cidr)
        with self.ipr() as ipr, _netlink_errors(f"adding {cidr} to {ifname} in {self}"):
            ipr.addr("add", index=_link_index(ipr, ifname, str(self)),
                     address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def del_address(self, ifname: str, cidr: str) -> None:
        iface = _parse_interface(cidr)
        with self.ipr() as ipr, _netlink_errors(f"removing {cidr} from {ifname} in {self}"):
            ipr.addr("del", index=_link_index(ipr, ifname, str(self)),
                     address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def addresses(self, ifname: str | None = None) -> list[str]:
        """IPv4 addresses as ``"a.b.c.d/len"``, of one interface or all."""
        with self.ipr() as ipr:
            kw = {"index": _link_index(ipr, ifname, str(self))} if ifname else {}
            return [f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}"
                    for m in ipr.get_addr(family=socket.AF_INET, **kw)]

    def add_route(self, dst: str = "default", gateway: str | None = None,
                  dev: str | None = None) -> None:
        """``ip route add DST [via GATEWAY] [dev DEV]``; DST "default" or a CIDR."""
        if gateway is None and dev is None:
            raise BadArgument("a route needs a gateway or a device")
        try:
            net = ipaddress.IPv4Network("0.0.0.0/0" if dst == "default" else dst)
            gw = None if gateway is None else ipaddress.IPv4Address(gateway)
        except ValueError as exc:
            raise BadArgument(f"bad route {dst} via {gateway}: {exc}") from None
        kw: dict = {"dst": str(net.network_address), "dst_len": net.prefixlen}
        if gw is not None:
            kw["gateway"] = str(gw)
        with self.ipr() as ipr, _netlink_errors(f"adding route {dst} in {self}"):
            if dev is not None:
                kw["oif"] = _link_index(ipr, dev, str(self))
            ipr.route("add", **kw)

    def routes(self) -> list[dict]:
        with self.ipr() as ipr:
            return [{"dst": f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}",
                     "gateway": r.get("RTA_GATEWAY"), "oif": r.get("RTA_OIF")}
                    for r in ipr.get_routes(family=socket.AF_INET, table=254)]

    def configure(self, ifname: str, address: str | None = None,
                  gateway: str | None = None, mtu: int | None = None,
                  txqueuelen: int | None = None, up: bool = True) -> None:
        """Set MTU/txqueuelen, add the address, bring the link up and add the
        default route, in that order (the route needs the link up)."""
        if mtu is not None:
            self.set_mtu(ifname, mtu)
        if txqueuelen is not None:
            self.set_txqueuelen(ifname, txqueuelen)
        if address is not None:
            self.add_address(ifname, address)
        if up:
            self.link_up(ifname)
        if gateway is not None:
            self.add_route("default", gateway=gateway, dev=ifname)


def _parse_interface(cidr: str) -> ipaddress.IPv4Interface:
    if not isinstance(cidr, str) or "/" not in cidr:
        raise BadArgument(f"address must be 'a.b.c.d/len': {cidr!r}")
    try:
        return ipaddress.IPv4Interface(cidr)
    except ValueError as exc:
        raise BadArgument(f"bad IPv4 address {cidr!r}: {exc}") from None


class HostNamespace(_Netns):
    """The caller's own network namespace (where the process started)."""

    name = "host"

    def _fd(self):
        return None

    def __str__(self) -> str:
        return "the host namespace"


host = HostNamespace()


class NetNamespace(_Netns):
    """A named kernel network namespace (``ip netns add NAME``), with ``lo`` up.

    Created on construction and recorded in ``registry``; ``remove()`` is
    idempotent. Use as a context manager to remove it on exit.
    """

    def __init__(self, name: str | None = None, *, prefix: str = "tsns",
                 registry: CleanupRegistry | None = None) -> None:
        self.name = check_netns_name(name) if name is not None else unique_name(prefix, 64)
        self.path = os.path.join(NETNS_RUN_DIR, self.name)
        self._registry = registry if registry is not None else globals()["registry"]
        self._nsfd: int | None = None
        try:
            netns_exec.create_named_netns(self.path)
        except FileExistsError:
            raise KernelExists(errno.EEXIST, f"network namespace {self.name!r} exists",
                               self.path) from None
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO, f"creating {self}: {exc.strerror}",
                               self.path) from None
        self._key = self._registry.register(f"netns {self.name}", self.remove)
        try:
            self._nsfd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self.link_up("lo")
        except BaseException:
            self.remove()
            raise

    @classmethod
    def attach(cls, name: str) -> "NetNamespace":
        """A handle on an existing named namespace that someone else owns:
        nothing is registered, and ``remove()`` only drops the handle."""
        self = cls.__new__(cls)
        self.name = check_netns_name(name)
        self.path = os.path.join(NETNS_RUN_DIR, self.name)
        self._registry = None
        self._key = None
        try:
            self._nsfd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KernelNotFound(errno.ENOENT, f"no network namespace {name!r}", self.path) from None
        return self

    def __str__(self) -> str:
        return f"namespace {self.name}"

    def _fd(self) -> int:
        if self._nsfd is None:
            raise KernelNotFound(errno.ENOENT, f"{self} was removed", self.path)
        return self._nsfd

    @property
    def fd(self) -> int:
        """An open fd of the namespace (for IFLA_NET_NS_FD, setns)."""
        return self._fd()

    @property
    def _process_registry(self) -> CleanupRegistry:
        return self._registry if self._registry is not None else registry

    @property
    def alive(self) -> bool:
        return self._nsfd is not None

    @property
    def named(self) -> bool:
        """Whether the name still leads to this namespace: False once ``ip netns del``
        removed it from outside (the handle keeps the namespace itself alive), or
        when another namespace now has the name."""
        if self._nsfd is None:
            return False
        try:
            by_name = os.stat(self.path)
        except OSError:
            return False
        held = os.fstat(self._nsfd)
        return (by_name.st_dev, by_name.st_ino) == (held.st_dev, held.st_ino)

    def remove(self) -> None:
        """Remove the namespace; its virtual links go with it once no process
        or socket holds it. Safe to call twice.  A name that no longer leads to
        this namespace (deleted from outside, perhaps made again by someone
        else) is left alone: only the handle goes."""
        named = self._nsfd is None or self.named     # no fd yet: __init__ failing
        if self._nsfd is not None:
            os.close(self._nsfd)
            self._nsfd = None
        if self._registry is None or self._key is None:   # attached, not ours; or removed
            return
        if named:
            netns_exec.remove_named_netns(self.path)
        self._registry.forget(self._key)
        self._key = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def set_sysctl(self, key: str, value) -> None:
        """Set a per-namespace ``net.*`` sysctl, e.g. ``net.ipv6.conf.all.disable_ipv6``."""
        parts = key.split(".") if isinstance(key, str) else []
        if len(parts) < 2 or parts[0] != "net" or any(not p or p in ("..", ".") or "/" in p
                                                       for p in parts):
            raise BadArgument(f"not a per-namespace net.* sysctl: {key!r}")
        path = "/proc/sys/" + "/".join(parts)

        def write():
            with open(path, "w") as f:
                f.write(str(value))

        try:
            netns_exec.in_netns_thread(self._fd(), write)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO,
                               f"setting {key} in {self}: {exc.strerror}") from None

    # -- running things inside
    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0) -> socket.socket:
        """A socket created inside the namespace (it stays bound to it)."""
        return netns_exec.in_netns_thread(self._fd(), socket.socket, family, type, proto)

    def popen(self, argv, **kwargs) -> subprocess.Popen:
        """Start a process inside the namespace (subprocess.Popen arguments).
        It is recorded in the registry, which terminates it if still running.

        It is started through ``nsenter --net`` (which execs, so ``pid`` is the
        program's) rather than from a helper thread: a child's
        PR_SET_PDEATHSIG fires when the *thread* that forked it ends, so a
        process forked by a short-lived thread could be killed at once."""
        self._fd()
        if isinstance(argv, (str, bytes)):
            raise BadArgument("popen takes an argument list, not a string")
        proc = subprocess.Popen([_nsenter(), f"--net={self.path}", "--", *argv], **kwargs)
        key = self._process_registry.register(f"process {proc.pid} in {self.name}",
                                      lambda: _stop_process(proc))
        proc.registry_key = key
        return proc

    def run(self, argv, *, timeout: float = 60.0, check: bool = True,
            capture_output: bool = True, text: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run a command inside the namespace and wait (bounded by ``timeout``)."""
        if capture_output:
            kwargs.setdefault("stdout", subprocess.PIPE)
            kwargs.setdefault("stderr", subprocess.PIPE)
        proc = self.popen(argv, text=text, **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            _stop_process(proc)
            raise
        finally:
            self._process_registry.forget(proc.registry_key)
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check:
            result.check_returncode()
        return result

    def call(self, func, *args, timeout: float = 60.0, **kwargs):
        """Run a Python callable in a forked child inside the namespace and
        return its picklable result (or re-raise its exception)."""
        return netns_exec.call_in_netns(self._fd(), func, args, kwargs, timeout)


@functools.cache
def _nsenter() -> str:
    path = shutil.which("nsenter")
    if path is None:
        raise KernelNotFound(errno.ENOENT, "nsenter not found (Debian package util-linux)")
    return path


def _stop_process(proc: subprocess.Popen, grace: float = 2.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def stop_process(proc: subprocess.Popen, registry: CleanupRegistry | None = None,
                 grace: float = 2.0) -> None:
    """Terminate (then kill) a process started with ``popen`` and forget it."""
    _stop_process(proc, grace)
    key = getattr(proc, "registry_key", None)
    if key is not None:
        (registry or globals()["registry"]).forget(key)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- links across namespaces

def _ns(netns) -> _Netns:
    return host if netns is None else netns


def _register_link(ifname: str, netns: _Netns, reg: CleanupRegistry | None) -> int:
    reg = reg if reg is not None else registry

    def undo():
        if isinstance(netns, NetNamespace) and not netns.alive:
            return      # the namespace took the link with it
        netns.delete_link(ifname)

    return reg.register(f"link {ifname} in {netns}", undo)


def move_link(ifname: str, netns: NetNamespace, *, src=None, new_name: str | None = None) -> str:
    """Move an interface from ``src`` (default: the host) into ``netns``,
    optionally renaming it. Returns its name there. Configure it afterwards
    with ``netns.configure(...)`` (pytun's own calls fail after a move)."""
    if not isinstance(netns, NetNamespace):
        raise BadArgument(f"move_link needs a NetNamespace, not {netns!r}")
    name = check_ifname(new_name) if new_name else ifname
    attrs: dict = {"net_ns_fd": netns.fd}
    if new_name:
        attrs["ifname"] = new_name
    with _ns(src).ipr() as ipr, _netlink_errors(f"moving {ifname} to {netns}"):
        ipr.link("set", index=_link_index(ipr, ifname, str(_ns(src))), **attrs)
    return name


def create_veth(name_a: str, name_b: str, *, netns_a: NetNamespace | None = None,
                netns_b: NetNamespace | None = None,
                registry: CleanupRegistry | None = None) -> tuple[str, str]:
    """Create a veth pair in the host namespace and move each end into its
    namespace (None: stays in the host). Both ends are left down."""
    check_ifname(name_a)
    check_ifname(name_b)
    peer: dict = {"ifname": name_b}
    if netns_b is not None:
        peer["net_ns_fd"] = netns_b.fd
    with host.ipr() as ipr, _netlink_errors(f"creating veth {name_a}/{name_b}"):
        ipr.link("add", ifname=name_a, kind="veth", peer=peer)
    if netns_a is not None:
        try:
            move_link(name_a, netns_a)
        except BaseException:
            host.delete_link(name_a)
            raise
    _register_link(name_a, _ns(netns_a), registry)   # deleting one end deletes both
    return name_a, name_b


def create_bridge(name: str, *, netns: NetNamespace | None = None,
                  registry: CleanupRegistry | None = None) -> str:
    """Create a Linux bridge (up) in ``netns`` (default: the host)."""
    check_ifname(name)
    ns = _ns(netns)
    with ns.ipr() as ipr, _netlink_errors(f"creating bridge {name} in {ns}"):
        ipr.link("add", ifname=name, kind="bridge")
    _register_link(name, ns, registry)
    ns.link_up(name)
    return name


def set_master(ifname: str, bridge: str, *, netns: NetNamespace | None = None) -> None:
    """Attach an interface to a bridge (``ip link set IF master BR``) and bring it up."""
    ns = _ns(netns)
    with ns.ipr() as ipr, _netlink_errors(f"attaching {ifname} to {bridge} in {ns}"):
        ipr.link("set", index=_link_index(ipr, ifname, str(ns)),
                 master=_link_index(ipr, bridge, str(ns)), state="up")
