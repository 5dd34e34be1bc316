"""What the running host is like, for the validator (``pyctl.config.validate.Facts``):
the process's capabilities, /dev/net/tun, the named kernel namespaces and their links,
IPv6, the open-files limit.  Read only: nothing is created, changed or removed.

Also ``missing_capabilities(needed)``, which the command line uses to name what a refused
operation lacked (``CAP_NET_ADMIN``, ...).
"""
from __future__ import annotations

import os
import resource

from pyctl.config.validate import Facts
from pyctl.kernel.names import NETNS_RUN_DIR

__all__ = ["HostFacts", "effective_capabilities", "missing_capabilities", "CAPABILITY_BITS"]

# <linux/capability.h>: the ones tapswitch may need
CAPABILITY_BITS = {"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
                   "CAP_SYS_ADMIN": 21}


def effective_capabilities(status_path: str = "/proc/self/status") -> frozenset[str] | None:
    """The effective capabilities among ``CAPABILITY_BITS`` (None: cannot tell)."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    mask = int(line.split()[1], 16)
                    return frozenset(n for n, bit in CAPABILITY_BITS.items() if mask >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def missing_capabilities(needed=("CAP_NET_ADMIN",)) -> list[str]:
    """Those of ``needed`` this process does not have (empty when it cannot tell)."""
    have = effective_capabilities()
    return [] if have is None else [cap for cap in needed if cap not in have]


class HostFacts(Facts):
    """The running system's answers."""

    def capabilities(self):
        return effective_capabilities()

    def tun_problem(self):
        path = "/dev/net/tun"
        if not os.path.exists(path):
            return f"{path} does not exist (modprobe tun; in a container: pass the device)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"{path} is not readable and writable by this process"
        return None

    def netns(self):
        try:
            return frozenset(os.listdir(NETNS_RUN_DIR))
        except FileNotFoundError:
            return frozenset()
        except OSError:
            return None

    def links(self, netns):
        if netns is None:
            try:
                return frozenset(os.listdir("/sys/class/net"))
            except OSError:
                return None
        from pyctl.kernel.netns import NetNamespace
        try:
            handle = NetNamespace.attach(netns)
        except OSError:
            return None
        try:
            return frozenset(handle.links())
        except OSError:                 # no privilege to enter it: cannot tell
            return None
        finally:
            handle.remove()             # the handle only (attach registers nothing)

    def ipv6(self):
        return os.path.exists("/proc/sys/net/ipv6")

    def open_files(self):
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
