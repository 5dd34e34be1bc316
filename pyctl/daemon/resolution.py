"""Frames waiting for a neighbour's MAC (the kernel's INCOMPLETE neighbours).

While the slow path resolves a next hop (ARP requests or, for IPv6, neighbour
solicitations out of the egress port, see ``SlowPath``), the frames routed to it wait here: at most
``pending_frames_per_neighbour`` per neighbour (the oldest is dropped beyond),
``max_pending_bytes`` for all of them, and at most ``max_pending_neighbours``
neighbours resolved at once.  A neighbour's queue goes when its MAC is learned
(the frames are forwarded), when it times out, or with its port or scope.
"""
from __future__ import annotations

from collections import deque

__all__ = ["Resolution", "Resolutions"]


class Resolution:
    """One neighbour being resolved: where it is asked for, what waits for it."""
    __slots__ = ("port_id", "frames", "requests", "next_request")

    def __init__(self, port_id: int):
        self.port_id = port_id
        self.frames: deque = deque()         # (ingress port, frame), oldest first
        self.requests = 0                    # ARP requests sent (or tried) so far
        self.next_request = 0.0


class Resolutions:
    """The resolutions under way, by ``(scope, ip)``, and the frames they hold."""

    def __init__(self, config, counters):
        self.config = config
        self.counters = counters
        self._waiting: dict[tuple[int, int], Resolution] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def bytes(self) -> int:
        """The size of every waiting frame together."""
        return self._bytes

    def get(self, key) -> Resolution | None:
        return self._waiting.get(key)

    def start(self, key, port_id: int, ingress: int) -> Resolution | None:
        """A new resolution out of ``port_id`` for a frame that entered at ``ingress``;
        None (the frame dropped, counted) when too many are under way."""
        if len(self._waiting) >= self.config.max_pending_neighbours:
            self.counters.drop(ingress, "drop_pending_full")
            return None
        res = self._waiting[key] = Resolution(port_id)
        return res

    def queue(self, res: Resolution, ingress: int, frame: bytes) -> None:
        """Let ``frame`` (entered at ``ingress``) wait for ``res``; counts what it drops."""
        if len(res.frames) == self.config.pending_frames_per_neighbour:
            oldest, dropped = res.frames.popleft()
            self._bytes -= len(dropped)
            self.counters.drop(oldest, "drop_pending_overflow")
        if self._bytes + len(frame) > self.config.max_pending_bytes:
            self.counters.drop(ingress, "drop_pending_bytes")
            return
        res.frames.append((ingress, frame))
        self._bytes += len(frame)
        self.counters["frame_queued"] += 1

    def take(self, key) -> Resolution:
        """End the resolution of ``key``; its frames are the caller's now."""
        res = self._waiting.pop(key)
        self._bytes -= sum(len(frame) for _, frame in res.frames)
        return res

    def due(self, now: float) -> list:
        """``[(key, resolution)]`` whose next ARP request (or time-out) is due."""
        return [(key, res) for key, res in self._waiting.items() if res.next_request <= now]

    def forget_port(self, port_id: int) -> None:
        """Drop the resolutions out of a port that went away, and their frames."""
        self._forget([key for key, res in self._waiting.items() if res.port_id == port_id],
                     "drop_port_gone")

    def forget_scope(self, scope: int) -> None:
        """Drop the resolutions of an L2 scope that was destroyed, and their frames."""
        self._forget([key for key in self._waiting if key[0] == scope], "drop_scope_gone")

    def _forget(self, keys, counter: str) -> None:
        for key in keys:
            for ingress, _ in self.take(key).frames:
                self.counters.drop(ingress, counter)
