"""TAP ports: the switch's side of each endpoint's link.

``TapPort.open()`` creates a TAP with python-pytun (IFF_TAP | IFF_NO_PI, and
IFF_VNET_HDR on request), makes its fd non-blocking, sets the virtio-net
header size, the segmentation offloads and the most segments a super-frame may
hold (``fastpath.reasons.VNET_MAX_SEGMENTS``, the TAP's gso_max_segs: the
tenant's TCP then builds none the switch refuses), raises txqueuelen, and brings the
link up in the caller's namespace, or moves it into a kernel network namespace
(``pyctl.kernel.NetNamespace``) and configures it there with pyroute2 (pytun's
own setters fail after a move).  Any failure closes the TAP again: nothing is
left behind.  ``close()`` closes the fd, which deletes the (non-persistent)
device wherever it is.

Offloads are named as in the port options (pyctl/port_options.py): ``csum``,
``tso4``, ``tso6``, ``tso_ecn``, ``uso4``, ``uso6``.  With a virtio-net header
the default asks for csum, tso4, tso6, uso4 and uso6; the UDP segmentation
offloads are *optional*: when the kernel refuses them (before Linux 6.2) they
are dropped and ``TapPort.offloads`` says what is on.  Offloads asked for
explicitly are required.  TSO and USO need ``csum`` (the kernel refuses them
alone), and every offload needs the virtio-net header.

Two MACs belong to a port: ``TapPort.mac`` is the switch's side (the gateway
MAC endpoints see, the source of every frame the switch writes), chosen here;
the TAP's own kernel MAC is the *endpoint's* when the TAP sits in the
tenant's namespace (``kernel_mac()``).
"""
from __future__ import annotations

import errno
import fcntl
import os
import secrets
import struct

import pytun

from fastpath.reasons import VNET_MAX_SEGMENTS
from pyctl import kernel
from pyctl.errors import InvalidArgument
from pyctl.model.port_options import check_port_options

# <linux/if_tun.h>; the Debian 6.1 headers lack the USO bits, so all are here.
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUNGETIFF = 0x800454D2
TUNSETOFFLOAD = 0x400454D0
TUNGETVNETHDRSZ = 0x800454D7
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

OFFLOAD_BITS = {"csum": TUN_F_CSUM, "tso4": TUN_F_TSO4, "tso6": TUN_F_TSO6,
                "tso_ecn": TUN_F_TSO_ECN, "uso4": TUN_F_USO4, "uso6": TUN_F_USO6}
DEFAULT_OFFLOADS = frozenset({"csum", "tso4", "tso6", "uso4", "uso6"})
OPTIONAL_OFFLOADS = frozenset({"uso4", "uso6"})   # dropped from the default if refused
VNET_HDR_LEN = 12          # struct virtio_net_hdr, without num_buffers
DEFAULT_TXQUEUELEN = 10000


def offload_mask(names) -> int:
    mask = 0
    for name in names:
        mask |= OFFLOAD_BITS[name]
    return mask


def random_mac() -> bytes:
    """A random locally administered unicast MAC."""
    b = bytearray(secrets.token_bytes(6))
    b[0] = (b[0] & 0xFC) | 0x02
    return bytes(b)


def _parse_mac(mac) -> bytes:
    if isinstance(mac, (bytes, bytearray)) and len(mac) == 6:
        raw = bytes(mac)
    elif isinstance(mac, str):
        parts = mac.split(":")
        try:
            raw = bytes(int(p, 16) for p in parts)
        except ValueError:
            raw = b""
        if len(parts) != 6 or len(raw) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise InvalidArgument(f"port MAC must look like 02:00:00:00:00:01, not {mac!r}")
    else:
        raise InvalidArgument(f"port MAC must be a string or 6 bytes, not {mac!r}")
    if raw[0] & 1 or raw == bytes(6):
        raise InvalidArgument(f"port MAC {mac!r} must be a non-zero unicast address")
    return raw


def _check_offloads(vnet_hdr: bool, offloads) -> tuple[frozenset, frozenset]:
    """(required, optional) offload names."""
    if offloads is None:
        return (frozenset({"csum", "tso4", "tso6"}), OPTIONAL_OFFLOADS) if vnet_hdr else \
            (frozenset(), frozenset())
    if isinstance(offloads, str) or not isinstance(offloads, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"offloads must be a list of {', '.join(OFFLOAD_BITS)}")
    wanted = frozenset(offloads)
    unknown = sorted(wanted - OFFLOAD_BITS.keys())
    if unknown:
        raise InvalidArgument(f"unknown offload {unknown[0]!r} (known: {', '.join(OFFLOAD_BITS)})")
    if wanted and not vnet_hdr:
        raise InvalidArgument("offloads need the virtio-net header (vnet_hdr=true)")
    if wanted - {"csum"} and "csum" not in wanted:
        raise InvalidArgument("segmentation offloads need 'csum' as well")
    return wanted, frozenset()


def _check_address(address, gateway, mtu) -> None:
    """``address``/``gateway`` as the port options take them (one string or a list)."""
    options = {"address": address} if address is not None else {}
    if gateway is not None:
        options["gateway"] = gateway
    if mtu is not None:
        options["mtu"] = mtu
    check_port_options(options)


class TapPort:
    """An open TAP device.  Use ``TapPort.open()``; a context manager."""

    def __init__(self, dev, name: str, mac: bytes, vnet_hdr: bool, offloads: frozenset,
                 txqueuelen: int, netns):
        self._dev = dev
        self.name = name              # its name in the namespace it is in
        self.fd = dev.fileno()
        self.mac = mac                # the switch's side
        self.vnet_hdr = vnet_hdr
        self.vnet_hdr_len = VNET_HDR_LEN if vnet_hdr else 0
        self.offloads = offloads      # what the kernel accepted
        self.txqueuelen = txqueuelen
        self.netns = netns            # NetNamespace it was moved into, or None

    @classmethod
    def open(cls, name: str | None = None, *, vnet_hdr: bool = False, offloads=None,
             txqueuelen: int = DEFAULT_TXQUEUELEN, mtu: int | None = None, mac=None,
             netns=None, address: str | None = None, gateway: str | None = None) -> "TapPort":
        """Create and configure a TAP; on any failure nothing is left behind.

        ``name`` defaults to a unique one; ``netns`` is a ``kernel.NetNamespace``
        to move the TAP into (``address`` like ``10.0.0.2/24`` and ``gateway``, each
        one string or a list mixing IPv4 and IPv6, are then set there; without
        ``netns`` in the caller's namespace; an IPv6 address readies the link for
        IPv6: ``kernel.links.IPV6_LINK_SETTINGS``)."""
        name = kernel.unique_name("tst") if name is None else kernel.check_ifname(name)
        if not isinstance(vnet_hdr, bool):
            raise InvalidArgument(f"vnet_hdr must be true or false, not {vnet_hdr!r}")
        required, optional = _check_offloads(vnet_hdr, offloads)
        if isinstance(txqueuelen, bool) or not isinstance(txqueuelen, int) \
                or not 0 <= txqueuelen < 2**31:
            raise InvalidArgument(f"txqueuelen must be an integer in 0 .. 2**31-1, not {txqueuelen!r}")
        if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int)
                                or not 68 <= mtu <= 65535):
            raise InvalidArgument(f"mtu must be an integer in 68 .. 65535, not {mtu!r}")
        mac = random_mac() if mac is None else _parse_mac(mac)
        if netns is not None and not isinstance(netns, kernel.NetNamespace):
            raise InvalidArgument(f"netns must be a pyctl.kernel.NetNamespace, not {netns!r}")
        if address is not None or gateway is not None:
            _check_address(address, gateway, mtu)
        if kernel.host.has_link(name):
            # TUNSETIFF would attach to an existing persistent TAP: refuse instead.
            raise kernel.KernelExists(errno.EEXIST, f"interface {name} exists")

        flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
        try:
            dev = pytun.TunTapDevice(name, flags=flags)
        except pytun.Error as exc:
            code = exc.args[0] if len(exc.args) == 2 else errno.EINVAL
            raise kernel.kernel_error(code, f"creating TAP {name}: {exc.args[-1]}") from None
        try:
            name = dev.name
            os.set_blocking(dev.fileno(), False)
            enabled = frozenset()
            if vnet_hdr:
                fcntl.ioctl(dev.fileno(), TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
                enabled = _set_offloads(dev.fileno(), name, required, optional)
                # an honest kernel's TCP (a small MSS) then builds no super-frame the
                # switch refuses (vnet_too_many_segments)
                kernel.host.set_gso_max_segs(name, VNET_MAX_SEGMENTS)
            kernel.host.set_txqueuelen(name, txqueuelen)
            if mtu is not None:
                kernel.host.set_mtu(name, mtu)
            if netns is not None:
                kernel.move_link(name, netns)
            (netns or kernel.host).configure(name, address=address, gateway=gateway)
        except BaseException:
            dev.close()
            raise
        return cls(dev, name, mac, vnet_hdr, enabled, txqueuelen, netns)

    kind = "tap"

    @property
    def loop_io(self):
        """What ``PacketLoop.add_port`` serves: the fd."""
        return self.fd

    # -- state ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._dev is None

    def tun_flags(self) -> int:
        """The flags the kernel reports for this fd (TUNGETIFF)."""
        ifr = fcntl.ioctl(self._fileno(), TUNGETIFF, bytes(40))
        return struct.unpack_from("H", ifr, 16)[0]

    def kernel_vnet_hdr_len(self) -> int:
        return struct.unpack("i", fcntl.ioctl(self._fileno(), TUNGETVNETHDRSZ, bytes(4)))[0]

    def kernel_mac(self) -> str:
        """The TAP's own MAC in its namespace (the endpoint's, once moved)."""
        return (self.netns or kernel.host).link_info(self.name)["address"]

    def info(self) -> dict:
        return {"name": self.name, "mac": ":".join(f"{b:02x}" for b in self.mac),
                "vnet_hdr": self.vnet_hdr, "offloads": sorted(self.offloads),
                "txqueuelen": self.txqueuelen,
                "netns": None if self.netns is None else self.netns.name}

    def _fileno(self) -> int:
        if self._dev is None:
            raise kernel.KernelNotFound(errno.EBADF, f"TAP {self.name} is closed")
        return self.fd

    # -- life ----------------------------------------------------------------

    def close(self) -> None:
        """Close the fd: the kernel deletes the device.  Safe to call twice."""
        if self._dev is not None:
            dev, self._dev = self._dev, None
            dev.close()
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._dev is None else f"fd={self.fd}"
        where = f" in {self.netns.name}" if self.netns is not None else ""
        return f"TapPort({self.name!r}{where}, {state}, offloads={sorted(self.offloads)})"


def _set_offloads(fd: int, name: str, required: frozenset, optional: frozenset) -> frozenset:
    """TUNSETOFFLOAD with required | optional; on EINVAL retry without the
    optional bits.  The enabled set."""
    for names in (required | optional, required):
        try:
            fcntl.ioctl(fd, TUNSETOFFLOAD, offload_mask(names))
            return frozenset(names)
        except OSError as exc:
            if exc.errno != errno.EINVAL or names == required:
                raise kernel.kernel_error(exc.errno, f"setting offloads {sorted(names)} on TAP "
                                          f"{name}: {exc.strerror}") from None
    raise AssertionError("unreachable")
