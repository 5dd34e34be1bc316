"""Attach ports (kind ``attach``): an interface that exists already in the switch's own
network namespace -- the TAP a virtual machine's emulator made and holds, the host end
of a veth a container runtime made -- served through AF_PACKET rings
(``fastpath.AfPacketPort``, virtio-net headers on) without moving or configuring it:
the port's name is the interface's.  The endpoint behind it gets its addresses from the
switch's DHCP server (pyctl/daemon/dhcp.py).

The switch only reads and writes frames there: the interface keeps its state, its MTU,
its owner.  The MTU is read when the port opens (``link_mtu``): it sizes the ring slots,
it is the fast path's bound for frames out of the port (the compiled plan's port MTU:
the daemon's compiler asks ``link_mtu`` too) and DHCP hands it out.  When the owner
changes it later, a reload (``tapswitch reload``, SIGHUP) reads it again and opens the
port anew with it; until then the switch keeps the one it read.  Since it stays in
the switch's namespace, that namespace's own stack sees its frames too: an operator
attaching interfaces keeps that namespace free of addresses the tenants must not reach
(docs/io.md).  ``close()`` closes the rings and leaves the interface as it was.
"""
from __future__ import annotations

import logging

import fastpath
from pyctl import kernel
from pyctl.daemon.ring_frames import afpacket_args
from pyctl.daemon.tap_port import _parse_mac, random_mac

log = logging.getLogger("tapswitch.ports")

__all__ = ["AttachPort", "link_mtu"]


def link_mtu(name: str) -> int | None:
    """The MTU of interface ``name`` of this process's network namespace; None when there
    is no such interface (opening the port then fails with the reason)."""
    try:
        return kernel.host.link_info(name)["mtu"] or None
    except kernel.KernelNotFound:
        return None


class AttachPort:
    """An attached interface.  Use ``AttachPort.open()``; a context manager."""

    kind = "attach"
    netns = None                      # it stays in the switch's namespace
    vnet_hdr = True
    offloads = frozenset()            # the interface's own: not the switch's to set

    def __init__(self, name, mac, ifindex, ring, mtu):
        self.name, self.mac, self.ifindex, self.ring, self.mtu = name, mac, ifindex, ring, mtu

    @property
    def loop_io(self):
        return self.ring

    @classmethod
    def open(cls, name: str, *, loop, mac=None, ring_frames: int | None = None) -> "AttachPort":
        """Serve interface ``name`` of this process's network namespace; ``ring_frames``:
        the receive ring's size (``pyctl.daemon.ring_frames``)."""
        name = kernel.check_ifname(name)
        mac = random_mac() if mac is None else _parse_mac(mac)
        info = kernel.host.link_info(name)          # KernelNotFound: no such interface
        if not info["up"]:
            log.warning("attach port %s: the interface is down; frames flow once its "
                        "owner brings it up", name)
        ring = fastpath.AfPacketPort(loop, info["index"], mtu=info["mtu"] or 1500,
                                     **afpacket_args(ring_frames, info["mtu"] or 1500))
        return cls(name, mac, info["index"], ring, info["mtu"] or 1500)

    @property
    def closed(self) -> bool:
        return self.ring is None

    def kernel_mac(self) -> str:
        """The interface's own MAC (the host side's; the endpoint's is learnt from its frames)."""
        return kernel.host.link_info(self.name)["address"]

    def alive(self) -> bool:
        """Whether the interface is still there, the same one (not deleted and made again)."""
        try:
            return self.ring is not None and kernel.host.link_index(self.name) == self.ifindex
        except kernel.KernelNotFound:
            return False

    def info(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "mac": ":".join(f"{b:02x}" for b in self.mac),
               "vnet_hdr": True, "mtu": self.mtu, "netns": None}
        if self.ring is not None:
            out["ring"] = self.ring.info()
        return out

    def close(self) -> None:
        """Close the rings; the interface stays as it is.  Safe to call twice."""
        if self.ring is not None:
            ring, self.ring = self.ring, None
            ring.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"AttachPort({self.name!r}, {'closed' if self.closed else 'open'})"
