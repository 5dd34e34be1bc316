"""Token buckets: how the slow path, the daemon, the control sockets and the log bound what
they take in and send.

``TokenBucket`` is one budget (``rate`` per second, ``burst`` saved up).
``BucketPerKey`` keeps one per key (a sending namespace) and frees it as soon
as it has filled up again: a fresh bucket starts full, so dropping a full one
changes nothing, and only the keys that spent tokens in the last
``burst / rate`` seconds take memory, however many come and go.
"""
from __future__ import annotations

import math
from collections import OrderedDict

__all__ = ["TokenBucket", "BucketPerKey"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, float(burst), now

    def take(self, now: float) -> bool:
        """Spend a token if there is one."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """0.0 if a token was there (and is spent), else the seconds until one will be
        (infinite at rate 0)."""
        if self.take(now):
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else math.inf

    def retune(self, rate: float, burst: int, now: float) -> None:
        """From ``now`` on, ``rate`` and ``burst`` (a reload): the tokens earned until now
        at the old rate are kept, up to the new burst."""
        self.refill(now)
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, float(burst))

    def refill(self, now: float) -> None:
        """Earn the tokens due until ``now`` (spending none)."""
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now


class BucketPerKey:
    """A ``TokenBucket`` per key, made on first use, freed once it is full again."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._refill = burst / rate         # an unused bucket is full again after this long
        self._buckets: OrderedDict = OrderedDict()     # least recently used first

    def take(self, key, now: float) -> bool:
        self._free_full(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
        self._buckets[key] = bucket
        return bucket.take(now)

    def retune(self, rate: float, burst: int, now: float) -> None:
        """Every bucket, and those made from now, at ``rate`` and ``burst`` (TokenBucket.retune)."""
        self.rate, self.burst = rate, burst
        self._refill = burst / rate
        for bucket in self._buckets.values():
            bucket.retune(rate, burst, now)

    def forget(self, key) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _free_full(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            bucket = next(iter(buckets.values()))
            if bucket.stamp + self._refill > now:
                return
            buckets.popitem(last=False)
