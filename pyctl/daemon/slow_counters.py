"""The slow path's counters: what it did and refused, switch-wide, and what it dropped
of each namespace's frames.

``SlowCounters`` is a ``Counter`` of events by name (``ctl stats``' ``slowpath``, the
administrator's ``tapswitch_slowpath_events_total``), written as ``counters[name] += 1``
by every part of the slow path.  A frame it drops, or whose ICMP error it does not
send, is counted with ``drop(port_id, name)`` instead: switch-wide as any event, and
for the namespace that sent the frame (the namespace of the port it came in on), so a
namespace's own ``counters`` (``slowpath_drops``) and Prometheus series
(``tapswitch_namespace_slowpath_drops_total``) show them, to whoever may read that
namespace.  One counter for both families and every part (ARP, neighbour discovery,
the IPv4 and IPv6 punts, ICMP errors, frames waiting for a neighbour).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

__all__ = ["SlowCounters"]


class SlowCounters(Counter):
    """``namespace_of(port_id)``: the namespace of a port (None: none known, the drop is
    counted switch-wide only)."""

    def __init__(self, namespace_of: Callable[[int], int | None] = lambda port_id: None):
        super().__init__()
        self.namespace_of = namespace_of
        self.by_namespace: dict[int, Counter] = {}

    def drop(self, port_id: int, name: str, n: int = 1) -> None:
        """``n`` frames that came in at ``port_id`` were dropped (or got no ICMP error) as
        ``name``: counted switch-wide and for the port's namespace."""
        self[name] += n
        namespace = self.namespace_of(port_id)
        if namespace is not None and n:
            self.by_namespace.setdefault(namespace, Counter())[name] += n

    def dropped_by(self, namespace: int) -> dict[str, int]:
        """What was dropped of ``namespace``'s frames, by name."""
        return dict(self.by_namespace.get(namespace, ()))

    def visible(self, api, switch) -> dict[str, dict[str, int]]:
        """``{namespace name: {event: n}}`` of the namespaces ``api`` sees that had drops:
        a namespace socket's subtree; for the administrator (``api.acting`` None) each
        namespace with drops, named through ``switch``'s reader (no walk of the tree)."""
        if api.acting is not None:
            return {ns.name: drops for ns in api.namespaces() if (drops := self.dropped_by(ns.id))}
        with switch.read() as reader:
            named = {ns_id: reader.namespace(ns_id) for ns_id in self.by_namespace}
        return {ns.name: self.dropped_by(ns_id) for ns_id, ns in named.items() if ns is not None}

    def forget(self, namespace: int) -> None:
        """A namespace was destroyed: its counts go (its id may be given again)."""
        self.by_namespace.pop(namespace, None)
