"""A private network namespace: anonymous (no name under /run/netns), held only by an
open fd of this process, so it dies with the process however the process ends -- and
every interface in it with it (a veth pair whose one end is in it goes whole).

The switch keeps the switch-side ends of its veth ports in one of these: no address,
IPv6 off, nothing for a tenant to reach there, nothing left behind even after kill -9.
"""
from __future__ import annotations

import errno
import os
import threading

from pyctl.kernel import netns_exec
from pyctl.kernel.cleanup import CleanupRegistry, registry as process_registry
from pyctl.kernel.errors import KernelNotFound, kernel_error
from pyctl.kernel.links import _Netns

__all__ = ["PrivateNamespace"]

# A namespace no tenant can use: IPv6 (and its link-local autoconfiguration, its router
# solicitations and MLD reports) off on every interface made or moved there.
QUIET_SYSCTLS = (("net.ipv6.conf.all.disable_ipv6", 1), ("net.ipv6.conf.default.disable_ipv6", 1))


class PrivateNamespace(_Netns):
    """A new anonymous network namespace with IPv6 off (``QUIET_SYSCTLS``); ``remove()``
    (idempotent, also from ``registry``'s cleanup) lets it go."""

    def __init__(self, what: str = "private namespace", *,
                 registry: CleanupRegistry | None = None) -> None:
        self.name = what
        self._nsfd: int | None = None
        self._registry = registry if registry is not None else process_registry

        def unshare_and_open():
            if netns_exec._libc.unshare(netns_exec.CLONE_NEWNET) != 0:
                netns_exec._raise_errno("unshare(CLONE_NEWNET)")
            return os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net",
                           os.O_RDONLY | os.O_CLOEXEC)

        try:
            self._nsfd = netns_exec.in_netns_thread(None, unshare_and_open)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO, f"creating a {what}: {exc.strerror}") from None
        self._key = self._registry.register(what, self.remove)
        try:
            for key, value in QUIET_SYSCTLS:
                self.set_sysctl(key, value)
        except BaseException:
            self.remove()
            raise

    def _fd(self) -> int:
        if self._nsfd is None:
            raise KernelNotFound(errno.ENOENT, f"{self} was removed")
        return self._nsfd

    @property
    def alive(self) -> bool:
        return self._nsfd is not None

    def __str__(self) -> str:
        return f"the {self.name}"

    def call(self, func, *args, **kwargs):
        """``func(*args, **kwargs)`` on a helper thread inside the namespace (sockets it
        makes belong to the namespace); its result or exception."""
        return netns_exec.in_netns_thread(self._fd(), func, *args, **kwargs)

    def set_sysctl(self, key: str, value) -> None:
        path = "/proc/sys/" + key.replace(".", "/")

        def write():
            with open(path, "w") as f:
                f.write(str(value))

        try:
            self.call(write)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO,
                               f"setting {key} in {self}: {exc.strerror}") from None

    def remove(self) -> None:
        """Close the fd: the kernel frees the namespace, with its interfaces, once nothing
        else holds it.  Safe to call twice."""
        if self._nsfd is not None:
            os.close(self._nsfd)
            self._nsfd = None
        if self._key is not None:
            self._registry.forget(self._key)
            self._key = None
