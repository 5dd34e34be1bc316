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
    address: str                  # interface address, e.g. "10.0.0.2/24"
    netns_name: str               # the kernel network namespace its TAP lives in
    port: str                     # the port's name (the TAP's, the veth end's in netns_name)
    parent: str = ROOT_NAME
    kind: str = "tap"             # how the switch serves its port (pyctl.model.port_options)

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def netns(self) -> kernel.NetNamespace:
        """A handle on the tenant's kernel namespace (the topology started)."""
        return self.topology._netns_of(self)

    def run(self, argv, **kwargs):
        """Run a command inside the tenant's kernel namespace (subprocess.CompletedProcess)."""
        return self.netns.run(argv, **kwargs)

    def call(self, func, *args, timeout=60.0, **kwargs):
        """Run a picklable callable inside the tenant's kernel namespace; its result."""
        return self.netns.call(func, *args, timeout=timeout, **kwargs)

    def socket(self, *args, **kwargs):
        """A socket created inside the tenant's kernel namespace."""
        return self.netns.socket(*args, **kwargs)
