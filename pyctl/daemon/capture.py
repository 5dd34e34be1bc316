"""Switch-side captures: the daemon's half of `tapswitch ctl capture` (issue 16 item 5).

A client starts a capture of a port or of a namespace (its ports; an L2's: its subtree's)
with ``capture-start``, takes what was copied with ``capture-read`` (the client writes
pcapng: pyctl.control.capture_client) and ends it with ``capture-stop``.  The target is
resolved in the socket's view, as for every verb, so an L3's socket captures only its
own traffic.  What a capture sees: the frames the switch received from those ports and
sent to them (``drops``: the frames of those ports it dropped, with the reason: a reason
of the fast path's decision, or the packet loop's counter -- a refused virtio-net header
or read, a failed write, a full slow queue, ...: fastpath/reasons.py, CAPTURE_REASON_NAMES).

The fast path copies the union of all captures' ports into its ring (fastpath
capture.pxi: nothing selected costs one branch per batch); ``drain()``, on the daemon's
tick and on a read, hands each copy to the captures that want it.  Frames the slow path sends (ARP replies,
ICMP errors) are added by ``sent()``.  Everything is bounded: captures in all and per
socket, frames and bytes a capture holds (beyond: counted in ``lost``), and a capture
nobody read for ``IDLE_S`` stops (its client died).  A capture follows its ports: one
whose port goes (or whose id another port takes) stops seeing it.
"""
from __future__ import annotations

import base64
import collections
import itertools
import logging
import time

from fastpath import CAPTURE_DROPPED, CAPTURE_RECEIVED, CAPTURE_SENT
from fastpath.reasons import CAPTURE_REASON_NAMES
from pyctl import errors

__all__ = ["Captures"]

log = logging.getLogger("tapswitch.capture")

MAX_CAPTURES = 8                  # in all
MAX_PER_SOCKET = 2
HOLD_FRAMES = 4096                # what one capture holds until read
HOLD_BYTES = 8 << 20
READ_BYTES = 1 << 20              # frame bytes in one capture-read reply
IDLE_S = 10.0

_DIRECTION = {CAPTURE_RECEIVED: "in", CAPTURE_SENT: "out", CAPTURE_DROPPED: "drop"}


class _Capture:
    def __init__(self, cid, socket, target, ports, flags, now):
        self.id, self.socket, self.target, self.flags = cid, socket, target, flags
        self.ports = ports                       # {port id: (name, namespace id)}
        self.frames = collections.deque()
        self.bytes = 0
        self.lost = 0
        self.seen = 0
        self.last_read = now

    def take(self, port, direction, record) -> None:
        if port not in self.ports or not direction & self.flags:
            return
        self.seen += 1
        size = len(record[-1])
        if len(self.frames) >= HOLD_FRAMES or self.bytes + size > HOLD_BYTES:
            self.lost += 1
            return
        self.frames.append(record)
        self.bytes += size


class Captures:
    def __init__(self, datapath, switch):
        self.datapath, self.switch = datapath, switch
        self._captures: dict[int, _Capture] = {}
        self._ids = itertools.count(1)

    @property
    def active(self) -> bool:
        return bool(self._captures)

    @property
    def count(self) -> int:
        return len(self._captures)

    # ------------------------------------------------------------------ verbs

    def start(self, session, target, drops=False):
        """``capture-start``: {id, target, ports}."""
        api = session.api
        socket = session.binding.path
        if len(self._captures) >= MAX_CAPTURES:
            raise errors.Busy(f"{MAX_CAPTURES} captures run already")
        if sum(c.socket == socket for c in self._captures.values()) >= MAX_PER_SOCKET:
            raise errors.Busy(f"this socket runs {MAX_PER_SOCKET} captures already")
        ports = self._ports_of(api, target)
        self.drain()                     # what was copied before it started is not its
        flags = CAPTURE_DROPPED if drops else CAPTURE_RECEIVED | CAPTURE_SENT
        capture = _Capture(next(self._ids), socket, target, ports, flags, time.monotonic())
        self._captures[capture.id] = capture
        try:
            self._select()
        except BaseException:
            del self._captures[capture.id]
            raise
        log.info("capture %d of %s (%s) started: ports %s", capture.id, target,
                 "drops" if drops else "traffic", ", ".join(n for n, _ in ports.values()) or "none")
        return {"id": capture.id, "target": target, "drops": bool(drops),
                "ports": sorted(name for name, _ in ports.values())}

    def read(self, session, id):
        """``capture-read``: the frames since the last read (at most READ_BYTES of them)."""
        capture = self._own(session, id)
        self.drain()
        capture.last_read = time.monotonic()
        out, size = [], 0
        while capture.frames and (not out or size + len(capture.frames[0][-1]) <= READ_BYTES):
            port, direction, reason, ts, length, data = capture.frames.popleft()
            capture.bytes -= len(data)
            size += len(data)
            out.append({"port": capture.ports[port][0], "direction": _DIRECTION[direction],
                        "reason": (CAPTURE_REASON_NAMES[reason] if direction == CAPTURE_DROPPED
                                   else None),
                        "ts_ns": ts, "length": length, "data": base64.b64encode(data).decode()})
        stats = self.datapath.capture_stats()
        return {"frames": out, "more": bool(capture.frames), "lost": capture.lost,
                "ring_overflow": stats["overflow"], "ports": sorted(n for n, _ in capture.ports.values())}

    def stop(self, session, id):
        """``capture-stop``: {seen, lost}."""
        capture = self._own(session, id)
        self._end(capture, "stopped")
        return {"seen": capture.seen, "lost": capture.lost}

    # ------------------------------------------------------------------ the daemon's hooks

    def drain(self) -> None:
        """Hand the fast path's copies to the captures (between batches)."""
        if not self._captures:
            return
        for record in self.datapath.capture_take():
            for capture in self._captures.values():
                capture.take(record[0], record[1], record)

    def sent(self, port_id, frame: bytes) -> None:
        """A frame the slow path wrote to ``port_id``."""
        record = (port_id, CAPTURE_SENT, 0, time.time_ns(), len(frame), bytes(frame[:65535]))
        for capture in self._captures.values():
            capture.take(port_id, CAPTURE_SENT, record)

    def tick(self, now: float) -> None:
        """The housekeeping tick: the ring is drained here (and by a read), not after
        every batch, so a capture costs forwarding one bounded drain per tick; what
        overflows the ring between two is counted (``ring_overflow``)."""
        self.drain()
        for capture in [c for c in self._captures.values() if now - c.last_read > IDLE_S]:
            self._end(capture, f"not read for {IDLE_S:.0f} s")

    def refresh(self) -> None:
        """After a model change: a capture keeps only the ports that are still what they
        were (name and namespace), so a reused id never shows another's traffic."""
        if not self._captures:
            return
        now = {p.id: (p.name, p.ns) for p in self.switch.ports()}
        changed = False
        for capture in self._captures.values():
            kept = {pid: was for pid, was in capture.ports.items() if now.get(pid) == was}
            changed |= kept != capture.ports
            capture.ports = kept
        if changed:
            self._select()

    def close(self) -> None:
        self._captures.clear()
        self.datapath.capture_select({})

    # ------------------------------------------------------------------ inside

    def _ports_of(self, api, target):
        try:
            port = api.port(target)
            return {port.id: (port.name, port.ns)}
        except errors.NotFound:
            pass
        try:
            ns = api.namespace(target)
        except errors.NotFound:
            raise errors.NotFound(f"no port or namespace '{target}' (that this socket "
                                  f"can see)") from None
        parent = {n.id: n.parent for n in api.namespaces()}

        def below(nid):
            while nid is not None:
                if nid == ns.id:
                    return True
                nid = parent.get(nid)
            return False
        return {p.id: (p.name, p.ns) for p in api.ports() if below(p.ns)}

    def _own(self, session, cid):
        capture = self._captures.get(cid)
        if capture is None or capture.socket != session.binding.path:
            raise errors.NotFound(f"no capture {cid} of this socket")
        return capture

    def _end(self, capture, why) -> None:
        self._captures.pop(capture.id, None)
        self._select()
        log.info("capture %d of %s %s: %d frames seen, %d lost", capture.id, capture.target,
                 why, capture.seen, capture.lost)

    def _select(self) -> None:
        union: dict[int, int] = {}
        for capture in self._captures.values():
            for pid in capture.ports:
                union[pid] = union.get(pid, 0) | capture.flags
        self.datapath.capture_select(union)
