"""Offload features of an interface (the ``ethtool -K`` knobs), through the SIOCETHTOOL
ioctl with the legacy per-feature commands: the AF_XDP port kind turns checksum and
segmentation offloads off on its endpoint's end of the veth (AF_XDP carries no
virtio-net header, so a partial checksum or a super-frame could not be told apart)."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct

from pyctl.kernel.errors import kernel_error

__all__ = ["FEATURES", "set_feature", "get_feature"]

SIOCETHTOOL = 0x8946
# feature -> (get command, set command) of <linux/ethtool.h>
FEATURES = {
    "tx-checksum": (0x16, 0x17),      # ETHTOOL_GTXCSUM / STXCSUM
    "scatter-gather": (0x18, 0x19),   # ETHTOOL_GSG / SSG
    "tso": (0x1E, 0x1F),              # ETHTOOL_GTSO / STSO
    "gso": (0x23, 0x24),              # ETHTOOL_GGSO / SGSO
    "gro": (0x2B, 0x2C),              # ETHTOOL_GGRO / SGRO
}


def _ethtool_value(sock: socket.socket, ifname: str, cmd: int, value: int = 0) -> int:
    data = ctypes.create_string_buffer(struct.pack("II", cmd, value), 8)
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(data)).ljust(40, b"\0")
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack("II", data.raw)[1]


def _sock(netns):
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if netns is None \
        else netns.socket(socket.AF_INET, socket.SOCK_DGRAM)


def set_feature(ifname: str, feature: str, on: bool, netns=None) -> None:
    """Turn ``feature`` (a key of FEATURES) on or off on ``ifname`` in ``netns`` (a
    NetNamespace; None: this process's namespace).  A feature the driver will not
    change but that is already as asked is fine."""
    with _sock(netns) as sock:
        try:
            _ethtool_value(sock, ifname, FEATURES[feature][1], 1 if on else 0)
        except OSError as exc:
            if exc.errno == errno.EOPNOTSUPP and \
                    bool(_ethtool_value(sock, ifname, FEATURES[feature][0])) == on:
                return
            raise kernel_error(exc.errno or errno.EIO, f"turning {feature} "
                               f"{'on' if on else 'off'} on {ifname}: {exc.strerror}") from None


def get_feature(ifname: str, feature: str, netns=None) -> bool:
    with _sock(netns) as sock:
        try:
            return bool(_ethtool_value(sock, ifname, FEATURES[feature][0]))
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO,
                               f"reading {feature} of {ifname}: {exc.strerror}") from None
