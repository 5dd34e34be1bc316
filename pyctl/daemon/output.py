"""What the slow path hands the daemon for each frame it took: frames to write and
facts it learned (``pyctl.daemon.slowpath``)."""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["NeighbourLearned", "PeerMac", "Output"]


class NeighbourLearned(NamedTuple):
    scope: int
    ip: object            # IPv4 as a host-order int, IPv6 as an IPv6Address
    mac: bytes
    port_id: int


class PeerMac(NamedTuple):
    """The MAC of the endpoint on the other side of a port (L3 ports: the
    destination MAC of every frame the switch delivers there)."""
    port_id: int
    mac: bytes


class Output(NamedTuple):
    frames: list          # [(port_id, frame bytes)] to write, in order
    learned: list         # [NeighbourLearned (in the neighbour table; in the fast path's
    #                        copy already, or at SlowPath.settle() when frames waited for
    #                        it) | PeerMac (for the daemon to apply after the frames)]
