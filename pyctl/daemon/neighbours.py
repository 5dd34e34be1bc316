"""The neighbour table: the one owner of the neighbours the switch learned,
``(scope, ip) -> (MAC, port)`` for both families (an IPv4 ``ip`` is a host-order
int, an IPv6 one an ``IPv6Address``: the keys never meet), and of the fast
path's compiled copy of them.

The slow path learns a neighbour from every ARP message it accepts (requests,
replies, gratuitous) and from neighbour discovery's solicitations and
advertisements (``pyctl.daemon.nd``).  Each change of an entry writes the datapath's neighbour
table in the same step: ``set_neighbour`` when an entry is made or its MAC
changes, ``remove_neighbour`` when it expires, is evicted, or its port or scope
goes.  A write the datapath refuses (an address it does not take, a scope it
does not hold) leaves the entry out of both and is counted.  Nothing else
writes the datapath's neighbours, so the two cannot disagree.  One exception
in time, not in content: an entry whose resolution releases waiting frames is
written by ``settle()``, after the daemon has sent those frames, so that the
fast path cannot forward a later frame of the same flow before them.

An entry's life, as the kernel's neighbour states (without DELAY: the slow
path cannot see which entries the fast path uses, so it treats every entry as
in use):

- ``REACHABLE``: heard from within ``reachable_time`` seconds.
- ``STALE``: still installed and forwarding.  One ``arp_retry_interval``
  later, and then once per interval, a unicast ARP request (IPv6: neighbour
  solicitation) goes to its MAC,
  ``arp_max_requests`` in all (a probe the ARP budget has no token for is
  tried again and not counted).  Any ARP it sends makes it ``REACHABLE``
  again; if none comes it is removed (``neighbour_expired``).

Bounds: at most ``max_neighbours_per_scope`` entries in one scope and
``max_neighbours`` in all, both families together.  A new entry beyond its scope's bound evicts the
least recently confirmed entry of that scope (``neighbour_evicted_scope``);
beyond the overall bound, the stale entry probed longest ago, or else the
least recently confirmed one (``neighbour_evicted``).  Every operation costs
what it changes: the entries are kept in confirmation order (per scope and
overall), the stale ones in probe order, and indexed by port.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Callable

from pyctl.errors import TapswitchError

__all__ = ["Neighbour", "NeighbourTable", "REACHABLE", "STALE"]

REACHABLE = "reachable"
STALE = "stale"


class Neighbour:
    __slots__ = ("scope", "ip", "mac", "port_id", "state", "confirmed", "probes", "next_probe")

    def __init__(self, scope: int, ip: int, mac: bytes, port_id: int):
        self.scope, self.ip, self.mac, self.port_id = scope, ip, mac, port_id
        self.state = REACHABLE
        self.confirmed = 0.0        # when it was last heard from
        self.probes = 0             # unicast ARP requests sent since it went stale
        self.next_probe = 0.0

    @property
    def key(self) -> tuple[int, int]:
        return (self.scope, self.ip)


class NeighbourTable:
    """``config``: a ``SlowPathConfig`` (``max_neighbours``, ``max_neighbours_per_scope``,
    ``reachable_time``, ``arp_retry_interval``, ``arp_max_requests``).  ``datapath``
    (a ``fastpath.Datapath`` or the reference) receives the compiled copy; ``None``
    keeps none (unit tests of the slow path's packet logic)."""

    def __init__(self, config, counters, datapath=None):
        self.config = config
        self.counters = counters
        self._datapath = datapath
        self._unsettled: dict[tuple, Neighbour] = {}   # learned, datapath write deferred
        self._scopes: dict[int, OrderedDict[int, Neighbour]] = {}   # least recently confirmed first
        self._reachable: OrderedDict[tuple, Neighbour] = OrderedDict()  # confirmation order
        self._stale: OrderedDict[tuple, Neighbour] = OrderedDict()      # next probe first
        self._by_port: dict[int, set[tuple]] = {}

    # -- reading ------------------------------------------------------------

    def get(self, scope: int, ip: int) -> Neighbour | None:
        entries = self._scopes.get(scope)
        return None if entries is None else entries.get(ip)

    def __len__(self) -> int:
        return len(self._reachable) + len(self._stale)

    def in_scope(self, scope: int) -> int:
        return len(self._scopes.get(scope, ()))

    @property
    def stale(self) -> int:
        return len(self._stale)

    # -- learning -----------------------------------------------------------

    def learn(self, scope: int, ip: int, mac: bytes, port_id: int, now: float,
              install: bool = True) -> bool:
        """``ip`` in ``scope`` is at ``mac`` behind ``port_id``, as of ``now``.
        False if the datapath refused the entry (then neither holds it).  ``install``
        False: the datapath gets a new or changed entry only at ``settle()`` (frames
        that waited for it go out first, see SlowPath.learn)."""
        entry = self.get(scope, ip)
        if entry is None or entry.mac != mac:
            with self._writes() as dp:
                if install and not self._install(dp, scope, ip, mac):
                    return False
                if entry is None:
                    self._make_room(dp, scope)
                    entry = Neighbour(scope, ip, mac, port_id)
                    self._scopes.setdefault(scope, OrderedDict())[ip] = entry
                    self._by_port.setdefault(port_id, set()).add(entry.key)
            entry.mac = mac
            if not install:
                self._unsettled[entry.key] = entry
        if entry.port_id != port_id:
            self._unindex_port(entry)
            entry.port_id = port_id
            self._by_port.setdefault(port_id, set()).add(entry.key)
        self._scopes[scope].move_to_end(ip)
        self._stale.pop(entry.key, None)
        entry.state, entry.confirmed, entry.probes = REACHABLE, now, 0
        self._reachable[entry.key] = entry
        self._reachable.move_to_end(entry.key)
        return True

    def settle(self) -> None:
        """Write the entries learned with ``install=False`` into the datapath; one it
        refuses leaves the table too (counted ``neighbour_refused``)."""
        if not self._unsettled:
            return
        unsettled, self._unsettled = self._unsettled, {}
        with self._writes() as dp:
            for key, entry in unsettled.items():
                if (self.get(*key) is entry
                        and not self._install(dp, entry.scope, entry.ip, entry.mac)):
                    self._remove(dp, entry)

    def ensure_installed(self, entry: Neighbour) -> None:
        """Write ``entry`` again if the datapath lost it (a rolled-back sync that removed
        and restored its scope takes the scope's neighbours with it)."""
        dp = self._datapath
        if dp is not None and dp.neighbour(entry.scope, entry.ip) != entry.mac:
            with dp.update():
                if self._install(dp, entry.scope, entry.ip, entry.mac):
                    self.counters["neighbour_reinstalled"] += 1

    # -- time ---------------------------------------------------------------

    def tick(self, now: float, probe: Callable[[Neighbour], bool]) -> None:
        """Entries not heard from for ``reachable_time`` go stale; stale ones due
        are probed (``probe(entry)``: True when the try counts) or, out of tries,
        removed."""
        cfg = self.config
        while self._reachable:
            entry = next(iter(self._reachable.values()))
            if entry.confirmed + cfg.reachable_time > now:
                break
            self._reachable.popitem(last=False)
            entry.state, entry.probes = STALE, 0
            entry.next_probe = now + cfg.arp_retry_interval
            self._stale[entry.key] = entry
        expired = []
        while self._stale:
            entry = next(iter(self._stale.values()))
            if entry.next_probe > now:
                break
            if entry.probes >= cfg.arp_max_requests:
                self._stale.popitem(last=False)
                expired.append(entry)
                continue
            if probe(entry):
                entry.probes += 1
            entry.next_probe = now + cfg.arp_retry_interval
            self._stale.move_to_end(entry.key)
        if expired:
            self.counters["neighbour_expired"] += len(expired)
            self._remove_all(expired)

    # -- forgetting -----------------------------------------------------------

    def forget_port(self, port_id: int) -> None:
        """The entries learned through a port that went away."""
        keys = self._by_port.pop(port_id, ())
        self._remove_all([self.get(*key) for key in keys])

    def forget_scope(self, scope: int) -> None:
        """The entries of an L2 scope that was destroyed."""
        self._remove_all(list(self._scopes.get(scope, {}).values()))

    # -- inside ---------------------------------------------------------------

    @contextlib.contextmanager
    def _writes(self):
        """One ``datapath.update()`` block for the writes of one operation."""
        if self._datapath is None:
            yield None
        else:
            with self._datapath.update() as dp:
                yield dp

    def _install(self, dp, scope: int, ip: int, mac: bytes) -> bool:
        if dp is None:
            return True
        try:
            dp.set_neighbour(scope, ip, mac)
        except TapswitchError:
            self.counters["neighbour_refused"] += 1
            return False
        return True

    def _make_room(self, dp, scope: int) -> None:
        entries = self._scopes.get(scope)
        if entries and len(entries) >= self.config.max_neighbours_per_scope:
            self._remove(dp, next(iter(entries.values())))
            self.counters["neighbour_evicted_scope"] += 1
        elif len(self) >= self.config.max_neighbours:
            oldest = self._stale or self._reachable
            self._remove(dp, next(iter(oldest.values())))
            self.counters["neighbour_evicted"] += 1

    def _remove_all(self, entries) -> None:
        if entries:
            with self._writes() as dp:
                for entry in entries:
                    self._remove(dp, entry)

    def _remove(self, dp, entry: Neighbour) -> None:
        key = entry.key
        entries = self._scopes[entry.scope]
        del entries[entry.ip]
        if not entries:
            del self._scopes[entry.scope]
        self._reachable.pop(key, None)
        self._stale.pop(key, None)
        self._unindex_port(entry)
        # Its scope may have gone from the datapath already, and its entries with it.
        if dp is not None and dp.neighbour(entry.scope, entry.ip) is not None:
            dp.remove_neighbour(entry.scope, entry.ip)

    def _unindex_port(self, entry: Neighbour) -> None:
        keys = self._by_port.get(entry.port_id)
        if keys is not None:
            keys.discard(entry.key)
            if not keys:
                del self._by_port[entry.port_id]
