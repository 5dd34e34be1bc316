"""The slow path's shares in plain Python: the check of a share's rule that both
datapaths make (``set_slow_share``), and ``ReferenceShares``, the reference's token buckets
-- the oracle of fastpath/slow_shares.pxi, written to be read.

A share (SLOW_SHARES of reasons.py) gives each sending namespace (or, ``per="port"``, each
ingress port) ``rate`` slow-path frames per second and ``burst`` at once; rate 0 is no
limit.  A bucket never used is full; a refused frame is counted for the port's namespace.
Buckets and counts start again when a namespace id is created again, a port's buckets
when it is attached to another namespace, every bucket of a share when its rule is set.
"""
from fastpath.errors import InvalidArgument, NotFound
from fastpath.reasons import REASONS, SHARE_NAMES, SLOW_SHARES

__all__ = ["check_share", "share_of_reason", "ReferenceShares"]

_SHARE_OF = {reason: k for k, share in enumerate(SLOW_SHARES) for reason in share.reasons}
_SLOW_REASONS = {r.code: r.name for r in REASONS if r.verdict == "slowpath"}
SHARE_LIMIT = 1e9


def check_share(name, rate, burst) -> int:
    """The index of share ``name`` in SHARE_NAMES once ``rate`` and ``burst`` are valid."""
    if name not in SHARE_NAMES:
        raise InvalidArgument(f"unknown slow-path share {name!r} (known: {', '.join(SHARE_NAMES)})")
    for what, value in (("rate", rate), ("burst", burst)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 <= value <= SHARE_LIMIT:
            raise InvalidArgument(f"slow-path share {name}: {what} must be in 0..1e9, not {value!r}")
    if rate and burst < 1:
        raise InvalidArgument(f"slow-path share {name}: a limited share needs a burst >= 1")
    return SHARE_NAMES.index(name)


def share_of_reason(reason) -> int:
    """The share a slow-path reason code is charged to; InvalidArgument for any other code."""
    if isinstance(reason, bool) or reason not in _SLOW_REASONS:
        raise InvalidArgument(f"reason {reason!r} is not a slow-path reason "
                              f"(those: {sorted(_SLOW_REASONS)})")
    return _SHARE_OF.get(_SLOW_REASONS[reason], len(SLOW_SHARES) - 1)


class ReferenceShares:
    """The shares of ReferenceDatapath: needs ``self.ports`` (port -> [ns, ...])."""

    def _init_shares(self):
        self.share_rules = [(0.0, 0.0)] * len(SLOW_SHARES)    # (tokens per ns, burst)
        self.share_buckets = {}       # ("ns" | "port", id, share) -> (tokens, stamp ns)
        self.share_refused = {}       # ns -> [refusals per share]

    def set_slow_share(self, name, rate, burst):
        k = check_share(name, rate, burst)
        self.share_rules[k] = (float(rate) / 1e9, float(burst))
        self.share_buckets = {key: v for key, v in self.share_buckets.items() if key[2] != k}

    def slow_shares(self):
        return {name: (per_ns * 1e9, burst)
                for name, (per_ns, burst) in zip(SHARE_NAMES, self.share_rules)}

    def share_admit_at(self, port_id, reason, now_ns):
        if port_id not in self.ports:
            raise NotFound(f"port {port_id} does not exist")
        if isinstance(now_ns, bool) or not isinstance(now_ns, int) or now_ns <= 0:
            raise InvalidArgument(f"now_ns must be a positive integer, not {now_ns!r}")
        share = share_of_reason(reason)
        ns = self.ports[port_id][0]
        per_ns, burst = self.share_rules[share]
        if per_ns <= 0:
            return True
        key = ("port", port_id, share) if SLOW_SHARES[share].per == "port" else ("ns", ns, share)
        if key in self.share_buckets:
            tokens, stamp = self.share_buckets[key]
            tokens = min(burst, tokens + (now_ns - stamp) * per_ns)
        else:
            tokens = burst
        if tokens >= 1.0:
            self.share_buckets[key] = (tokens - 1.0, now_ns)
            return True
        self.share_buckets[key] = (tokens, now_ns)
        self.share_refused.setdefault(ns, [0] * len(SLOW_SHARES))[share] += 1
        return False

    def _clear_ns_shares(self, ns_id):
        self.share_refused.pop(ns_id, None)
        self.share_buckets = {k: v for k, v in self.share_buckets.items()
                              if k[:2] != ("ns", ns_id)}

    def _clear_port_shares(self, port_id):
        self.share_buckets = {k: v for k, v in self.share_buckets.items()
                              if k[:2] != ("port", port_id)}

    def _refused_of(self, ns_id):
        return dict(zip(SHARE_NAMES, self.share_refused.get(ns_id, [0] * len(SLOW_SHARES))))
