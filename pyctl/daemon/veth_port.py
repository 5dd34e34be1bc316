"""Veth ports (kinds ``veth`` and ``xdp``): the switch's side of an endpoint's link as
one end of a veth pair.

``VethPort.open()`` creates the pair with its *switch end* in the switch's private
network namespace (``pyctl.kernel.private_netns``: no address, IPv6 off, so a tenant
reaches nothing there; and it dies with the switch's process, taking every pair with
it) and its *endpoint end*, named like the port, in the endpoint's kernel namespace,
configured there as a TAP port's would be (MTU, address, default route).  The switch end
is served by a ring port made for the packet loop, in the private namespace:

- ``veth``: AF_PACKET rings with virtio-net headers (``fastpath.AfPacketPort``): the
  endpoint's checksum and segmentation offloads stay on, super-frames cross whole, of
  at most ``VNET_MAX_SEGMENTS`` segments (the endpoint end's gso_max_segs);
- ``xdp``: an XDP socket (``fastpath.XdpPort``), native XDP where the driver has it:
  no virtio-net header, so the endpoint end's checksum and segmentation offloads are
  turned off (its kernel sends complete frames of at most its MTU, <= 3500 bytes:
  one frame per 4 KiB UMEM chunk).

Any failure undoes what was done; ``close()`` closes the ring port and deletes the pair
(the loop must have stopped serving it first).
"""
from __future__ import annotations

import errno
import logging
import os

import fastpath
from fastpath.reasons import VNET_MAX_SEGMENTS
from pyctl import kernel
from pyctl.errors import InvalidArgument
from pyctl.kernel import ethtool
from pyctl.kernel.errors import _netlink_errors
from pyctl.daemon import ring_frames as ring_frames_mod
from pyctl.daemon.tap_port import _check_address, _parse_mac, random_mac

log = logging.getLogger("tapswitch.ports")

__all__ = ["VethPort", "XDP_MAX_MTU"]

XDP_MAX_MTU = 3500          # a frame per 4 KiB chunk, after XDP's 256-byte headroom
DEFAULT_MTU = 1500
XDP_OFF = ("tx-checksum", "tso", "gso")     # endpoint-end offloads an xdp port turns off


class VethPort:
    """An open veth port.  Use ``VethPort.open()``; a context manager."""

    def __init__(self, kind, name, mac, switch_ns, switch_end, netns, ring, mtu, undo_key,
                 registry):
        self.kind = kind
        self.name = name                  # the endpoint end's name, in ``netns`` (or the host)
        self.mac = mac                    # the switch's side
        self.switch_ns, self.switch_end = switch_ns, switch_end
        self.netns = netns                # NetNamespace of the endpoint end, or None
        self.ring = ring                  # fastpath.AfPacketPort or fastpath.XdpPort
        self.mtu = mtu
        self.vnet_hdr = kind == "veth"
        self.offloads = frozenset({"csum", "tso4", "tso6"}) if kind == "veth" else frozenset()
        self._undo_key, self._registry = undo_key, registry

    @property
    def loop_io(self):
        """What ``PacketLoop.add_port`` serves."""
        return self.ring

    @classmethod
    def open(cls, name: str | None = None, *, kind: str = "veth", loop, switch_ns,
             netns=None, mtu: int | None = None, mac=None, address: str | list | None = None,
             gateway: str | list | None = None, registry=None, xdp_mode: str | None = None,
             ring_frames: int | None = None) -> "VethPort":
        """Create the pair and serve its switch end (see the module docstring);
        ``ring_frames``: the receive ring's size (``pyctl.daemon.ring_frames``)."""
        if kind not in ("veth", "xdp"):
            raise InvalidArgument(f"a veth port's kind is veth or xdp, not {kind!r}")
        name = kernel.unique_name("tsv") if name is None else kernel.check_ifname(name)
        mac = random_mac() if mac is None else _parse_mac(mac)
        if netns is not None and not isinstance(netns, kernel.NetNamespace):
            raise InvalidArgument(f"netns must be a pyctl.kernel.NetNamespace, not {netns!r}")
        if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int)
                                or not 68 <= mtu <= 65535):
            raise InvalidArgument(f"mtu must be an integer in 68 .. 65535, not {mtu!r}")
        if kind == "xdp" and (mtu or DEFAULT_MTU) > XDP_MAX_MTU:
            raise InvalidArgument(f"an xdp port's MTU is at most {XDP_MAX_MTU} (one frame per "
                                  f"4 KiB UMEM chunk), not {mtu}")
        if address is not None or gateway is not None:
            _check_address(address, gateway, mtu)
        ring_args = (ring_frames_mod.afpacket_args(ring_frames, mtu or DEFAULT_MTU)
                     if kind == "veth" else ring_frames_mod.xdp_args(ring_frames))
        where = netns or kernel.host
        if where.has_link(name):
            raise kernel.KernelExists(errno.EEXIST, f"interface {name} exists in {where}")
        registry = registry if registry is not None else kernel.registry
        switch_end = kernel.unique_name("tsw")
        _create_pair(switch_ns, switch_end, where, name)
        key = registry.register(f"veth {switch_end}/{name}",
                                lambda: switch_ns.alive and switch_ns.delete_link(switch_end))
        ring = None
        try:
            if mtu is not None:
                switch_ns.set_mtu(switch_end, mtu)
            switch_ns.link_up(switch_end)
            if kind == "xdp":
                for feature in XDP_OFF:
                    ethtool.set_feature(name, feature, False, netns=netns)
            else:                         # as a vnet TAP's (tap_port): no super-frame to refuse
                where.set_gso_max_segs(name, VNET_MAX_SEGMENTS)
            where.configure(name, address=address, gateway=gateway, mtu=mtu)
            ifindex = switch_ns.link_index(switch_end)
            if kind == "veth":
                ring = switch_ns.call(fastpath.AfPacketPort, loop, ifindex, mtu=mtu or DEFAULT_MTU,
                                      **ring_args)
            else:
                ring = switch_ns.call(fastpath.XdpPort, loop, ifindex, mode=xdp_mode, **ring_args)
        except BaseException:
            if ring is not None:
                ring.close()
            if switch_ns.alive:
                switch_ns.delete_link(switch_end)
            registry.forget(key)
            raise
        return cls(kind, name, mac, switch_ns, switch_end, netns, ring, mtu or DEFAULT_MTU,
                   key, registry)

    # -- state ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.ring is None

    def kernel_mac(self) -> str:
        """The endpoint end's MAC (the endpoint's)."""
        return (self.netns or kernel.host).link_info(self.name)["address"]

    def alive(self) -> bool:
        """Whether the pair still exists (deleting either end deletes both)."""
        return self.ring is not None and self.switch_ns.alive \
            and self.switch_ns.has_link(self.switch_end)

    def info(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "mac": ":".join(f"{b:02x}" for b in self.mac),
               "vnet_hdr": self.vnet_hdr, "offloads": sorted(self.offloads), "mtu": self.mtu,
               "netns": None if self.netns is None else self.netns.name,
               "switch_end": self.switch_end}
        if self.ring is not None:
            out["ring"] = self.ring.info()
        return out

    # -- life ----------------------------------------------------------------

    def close(self) -> None:
        """Close the ring port and delete the pair.  Safe to call twice."""
        if self.ring is None:
            return
        ring, self.ring = self.ring, None
        try:
            ring.close()
        finally:
            try:
                if self.switch_ns.alive:
                    self.switch_ns.delete_link(self.switch_end)
            finally:
                self._registry.forget(self._undo_key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        where = f" in {self.netns.name}" if self.netns is not None else ""
        return f"VethPort({self.kind}, {self.name!r}{where}, {'closed' if self.closed else 'open'})"


def _create_pair(switch_ns, switch_end: str, where, name: str) -> None:
    """The pair, created in the switch's namespace with its peer made directly in
    ``where`` (a NetNamespace, or the host): no name is ever taken in the host."""
    own = None
    target = where._fd()
    if target is None:                        # the host: this thread's own namespace
        own = target = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with switch_ns.ipr() as ipr, _netlink_errors(f"creating veth {switch_end}/{name} "
                                                     f"into {where}"):
            ipr.link("add", ifname=switch_end, kind="veth",
                     peer={"ifname": name, "net_ns_fd": target})
    finally:
        if own is not None:
            os.close(own)
