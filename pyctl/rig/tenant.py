"""``Tenant``: an L3 namespace of a topology's switch with a real kernel stack behind
its TAP (``Topology.tenant()`` makes them)."""
from __future__ import annotations

import dataclasses
import ipaddress
from typing import TYPE_CHECKING

from pyctl import kernel
from pyctl.model.state import ROOT_NAME

if TYPE_CHECKING:
    from pyctl.rig.topology import Topology

__all__ = ["Tenant"]


@dataclasses.dataclass
class Tenant:
    """An L3 namespace of the switch with a real kernel stack behind its TAP."""
    topology: "Topology"
    name: str
    address: str                  # its first interface address, e.g. "10.0.0.2/24"
    netns_name: str               # the kernel network namespace its TAP lives in
    port: str                     # the port's name (the TAP's, the veth end's in netns_name)
    parent: str = ROOT_NAME
    kind: str = "tap"             # how the switch serves its port (pyctl.model.port_options)
    addresses: tuple = ()         # every address it was given, ``address`` first
    cpus: tuple[int, ...] | None = None   # where processes started in it run (None: anywhere)

    def __post_init__(self):
        if not self.addresses:
            self.addresses = (self.address,)

    @property
    def ip(self) -> str:
        """The IP of its first address."""
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def ips(self) -> list[str]:
        return [str(ipaddress.ip_interface(a).ip) for a in self.addresses]

    @property
    def ip4(self) -> str | None:
        """Its first IPv4 address's IP, or None."""
        return next((ip for ip in self.ips if ":" not in ip), None)

    @property
    def ip6(self) -> str | None:
        """Its first IPv6 address's IP, or None."""
        return next((ip for ip in self.ips if ":" in ip), None)

    @property
    def netns(self) -> kernel.NetNamespace:
        """A handle on the tenant's kernel namespace (the topology started)."""
        return self.topology._netns_of(self)

    def run(self, argv, **kwargs):
        """Run a command inside the tenant's kernel namespace, on the tenant's CPUs
        (subprocess.CompletedProcess)."""
        kwargs.setdefault("cpus", self.cpus)
        return self.netns.run(argv, **kwargs)

    def popen(self, argv, **kwargs):
        """Start a command inside the tenant's kernel namespace, on the tenant's CPUs
        (subprocess.Popen; it is stopped when the topology closes, if still running)."""
        kwargs.setdefault("cpus", self.cpus)
        proc = self.netns.popen(argv, **kwargs)
        self.topology._processes.append(proc)
        return proc

    def call(self, func, *args, timeout=60.0, **kwargs):
        """Run a picklable callable inside the tenant's kernel namespace, on the
        tenant's CPUs; its result."""
        return self.netns.call(func, *args, timeout=timeout, cpus=self.cpus, **kwargs)

    def socket(self, *args, **kwargs):
        """A socket created inside the tenant's kernel namespace."""
        return self.netns.socket(*args, **kwargs)
