"""The port kinds the daemon serves, which of them can run here, and what ``auto`` picks
(docs/io.md has the measurements behind the choice).

==========  ======================================  ==================================
kind        the switch's side                       needs
==========  ======================================  ==================================
``tap``     a TAP it creates (tap_port.py)          CAP_NET_ADMIN, /dev/net/tun
``veth``    a veth pair, AF_PACKET rings            CAP_NET_ADMIN, CAP_NET_RAW
            (veth_port.py)
``xdp``     a veth pair, AF_XDP (veth_port.py)      CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF
``attach``  an interface that exists, AF_PACKET     CAP_NET_RAW
            rings (attach_port.py)
==========  ======================================  ==================================

``auto`` takes the first kind of ``AUTO_PREFERENCE`` this process can run: veth (more small
frames than a TAP for less of the machine's CPU per frame, TSO kept, RTT as a TAP's:
docs/io.md), else tap.  xdp also beats a TAP on small frames but carries no
super-frames, so it is never picked for you.
"""
from __future__ import annotations

import functools
import os
import socket

import fastpath
from pyctl.errors import NotSupported
from pyctl.daemon import tap_port
from pyctl.daemon.attach_port import AttachPort
from pyctl.daemon.veth_port import VethPort

__all__ = ["KINDS", "AUTO_PREFERENCE", "unavailable", "resolve", "open_port"]

KINDS = ("tap", "veth", "xdp", "attach")
AUTO_PREFERENCE = ("veth", "tap")


@functools.cache
def unavailable(kind: str) -> str | None:
    """Why this process cannot serve ports of ``kind`` here; None when it can."""
    if kind == "tap":
        if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
            return "no usable /dev/net/tun (TAP ports need it and CAP_NET_ADMIN)"
        return None
    if kind in ("veth", "attach"):
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        except OSError as exc:
            return f"socket(AF_PACKET): {exc.strerror} (AF_PACKET rings need CAP_NET_RAW)"
        return None
    if kind == "xdp":
        return fastpath.xdp_unavailable()
    raise ValueError(f"unknown port kind {kind!r}")


def resolve(kind: str) -> str:
    """The kind a port of ``kind`` is served as: ``auto`` becomes the first kind of
    AUTO_PREFERENCE that can run here; any other is refused when it cannot."""
    if kind == "auto":
        for choice in AUTO_PREFERENCE:
            if unavailable(choice) is None:
                return choice
        raise NotSupported("kind auto: no port kind can run here ("
                           + "; ".join(f"{k}: {unavailable(k)}" for k in AUTO_PREFERENCE) + ")")
    why = unavailable(kind)
    if why is not None:
        raise NotSupported(f"port kind {kind} cannot run here: {why}")
    return kind


def open_port(port, *, loop, netns, switch_ns, registry):
    """Open the model's ``port`` as its kind (``auto`` resolved); the kind's port object
    (``loop_io`` for PacketLoop.add_port, ``close()``, ``kernel_mac()``, ``info()``).
    ``netns``: the endpoint's kernel namespace (a NetNamespace) or None; ``switch_ns()``
    gives the private namespace the veth kinds keep their switch ends in."""
    opts = port.options
    asked = opts.get("kind", "tap")
    kind = resolve(asked)
    if kind == "tap":
        extra = {} if opts.get("txqueuelen") is None else {"txqueuelen": opts["txqueuelen"]}
        vnet = opts.get("vnet_hdr", asked == "auto")       # auto: the header, its offloads
        return tap_port.TapPort.open(
            port.name, vnet_hdr=vnet, offloads=opts.get("offloads"), mtu=opts.get("mtu"),
            mac=port.mac, netns=netns, address=opts.get("address"), gateway=opts.get("gateway"),
            **extra)
    if kind == "attach":
        return AttachPort.open(port.name, loop=loop, mac=port.mac,
                               ring_frames=opts.get("ring_frames"))
    return VethPort.open(port.name, kind=kind, loop=loop, switch_ns=switch_ns(), netns=netns,
                         mtu=opts.get("mtu"), mac=port.mac, address=opts.get("address"),
                         gateway=opts.get("gateway"), registry=registry,
                         ring_frames=opts.get("ring_frames"))
