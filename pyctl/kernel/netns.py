"""Network namespaces: the host's own (``host``) and named ones (``NetNamespace``: created
unique, registered for cleanup, with sockets, commands and callables run inside), and
links moved or created across them (veth pairs, bridges)."""

from __future__ import annotations

import errno
import functools
import os
import shutil
import socket
import subprocess

from pyctl.kernel import netns_exec
from pyctl.kernel.cleanup import CleanupRegistry, _stop_process, registry
from pyctl.kernel.errors import (
    BadArgument,
    KernelExists,
    KernelNotFound,
    _netlink_errors,
    kernel_error,
)
from pyctl.kernel.links import _link_index, _Netns
from pyctl.kernel.names import (
    NETNS_RUN_DIR,
    check_ifname,
    check_netns_name,
    unique_name,
)


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
                 registry: CleanupRegistry | None = None, before_bind=None) -> None:
        """``before_bind(cookie)``: see ``netns_exec.create_named_netns``."""
        self.name = check_netns_name(name) if name is not None else unique_name(prefix, 64)
        self.path = os.path.join(NETNS_RUN_DIR, self.name)
        self._registry = registry if registry is not None else globals()["registry"]
        self._nsfd: int | None = None
        try:
            netns_exec.create_named_netns(self.path, before_bind)
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

    @classmethod
    def adopt(cls, name: str, *, registry: CleanupRegistry | None = None) -> "NetNamespace":
        """A handle on an existing named namespace that is (now) the caller's: registered
        and removed like one it created (a dead predecessor's, identified by its cookie)."""
        self = cls.attach(name)
        self._registry = registry if registry is not None else globals()["registry"]
        self._key = self._registry.register(f"netns {self.name}", self.remove)
        return self

    def __str__(self) -> str:
        return f"namespace {self.name}"

    @property
    def cookie(self) -> int:
        """The kernel's cookie of this namespace (``netns_exec.netns_cookie``)."""
        return netns_exec.netns_cookie(self._fd())

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

    # -- running things inside
    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0) -> socket.socket:
        """A socket created inside the namespace (it stays bound to it)."""
        return netns_exec.in_netns_thread(self._fd(), socket.socket, family, type, proto)

    def popen(self, argv, *, cpus=None, **kwargs) -> subprocess.Popen:
        """Start a process inside the namespace (subprocess.Popen arguments), on
        ``cpus`` (a list of CPU numbers; None: wherever the scheduler puts it).
        It is recorded in the registry, which terminates it if still running.

        It is started through ``nsenter --net`` (which execs, so ``pid`` is the
        program's) rather than from a helper thread: a child's
        PR_SET_PDEATHSIG fires when the *thread* that forked it ends, so a
        process forked by a short-lived thread could be killed at once.  With
        ``cpus``, through ``taskset -c`` first (which also execs): the program
        and every thread it makes start on those CPUs."""
        self._fd()
        if isinstance(argv, (str, bytes)):
            raise BadArgument("popen takes an argument list, not a string")
        pin = [_tool("taskset"), "-c", _cpu_arg(cpus)] if cpus is not None else []
        proc = subprocess.Popen([*pin, _nsenter(), f"--net={self.path}", "--", *argv], **kwargs)
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

    def call(self, func, *args, timeout: float = 60.0, cpus=None, **kwargs):
        """Run a Python callable in a forked child inside the namespace (on ``cpus``,
        if given) and return its picklable result (or re-raise its exception)."""
        if cpus is not None:
            _cpu_arg(cpus)
        return netns_exec.call_in_netns(self._fd(), func, args, kwargs, timeout, cpus=cpus)


def _cpu_arg(cpus) -> str:
    """taskset's form of a CPU list ([0, 2] -> "0,2"), refusing what is not one."""
    if (not isinstance(cpus, (list, tuple, set, frozenset)) or not cpus
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cpus)):
        raise BadArgument(f"cpus must be a non-empty list of CPU numbers, not {cpus!r}")
    return ",".join(str(c) for c in sorted(cpus))


def _nsenter() -> str:
    return _tool("nsenter")


@functools.cache
def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KernelNotFound(errno.ENOENT, f"{name} not found (Debian package util-linux)")
    return path


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
