"""The token bucket every limit of the daemon shares (slow path, control sockets, logs)."""
import math

from pyctl.ops.ratelimit import BucketPerKey, TokenBucket


def test_a_bucket_starts_full_and_refills_at_its_rate():
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5)                  # one token back after 1 / rate
    assert not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_wait_says_how_long_until_the_next_token():
    bucket = TokenBucket(rate=4.0, burst=1, now=0.0)
    assert bucket.wait(0.0) == 0.0
    assert math.isclose(bucket.wait(0.0), 0.25)
    assert math.isclose(bucket.wait(0.125), 0.125)
    assert bucket.wait(0.25) == 0.0
    assert TokenBucket(rate=0.0, burst=0, now=0.0).wait(5.0) == math.inf


def test_per_key_buckets_are_independent_and_freed_once_full_again():
    buckets = BucketPerKey(rate=1.0, burst=1)
    assert buckets.take("a", 0.0) and not buckets.take("a", 0.0)
    assert buckets.take("b", 0.0)            # another key has its own budget
    assert len(buckets) == 2
    assert buckets.take("c", 5.0)            # a and b refilled long ago: freed
    assert len(buckets) == 1


def test_a_retuned_bucket_keeps_its_tokens_up_to_the_new_burst():
    b = TokenBucket(rate=10.0, burst=10, now=0.0)
    for _ in range(8):
        assert b.take(0.0)
    b.retune(1.0, 5, now=0.1)              # 2 + 1 earned at the old rate: 3 kept
    assert [b.take(0.1) for _ in range(4)] == [True, True, True, False]
    assert not b.take(0.9) and b.take(1.1)     # then one a second
    b.retune(100.0, 1, now=1.1)
    assert b.take(1.2) and not b.take(1.2)     # never more than the new burst


def test_retuned_per_key_buckets_and_new_ones_take_the_new_rate():
    buckets = BucketPerKey(rate=1.0, burst=2)
    assert buckets.take("a", 0.0) and buckets.take("a", 0.0) and not buckets.take("a", 0.0)
    buckets.retune(10.0, 4, now=0.0)
    assert buckets.take("a", 0.1)               # a token earned at the new rate
    assert [buckets.take("b", 0.1) for _ in range(5)] == [True] * 4 + [False]
