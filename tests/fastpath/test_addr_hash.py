"""AddrHash, the hash the demux, neighbour and route-set tables are made of, is written
once over its key type: the IPv4 instance (64-bit slots) and the IPv6 one (128-bit
addresses, for issue 15) both behave as a dict of (tag, address) -> value, through
growth, collisions and backward-shift deletion."""
import pytest
from hypothesis import given, settings, strategies as st

from fastpath import AddrHash
from fastpath.errors import InvalidArgument

V6_BASE = 0x20010DB8 << 96          # 2001:db8::/32


def v4_key(k):
    return k % 5, 0x0A000000 + k * 0x1000193 % 1031         # collisions in a small key space


def v6_key(k):
    # addresses that differ only in the high half, only in the low half, and by tag
    hi, lo = k % 7, k * 0x1000193 % 1031
    return k % 3, V6_BASE | (hi << 64) | lo


@pytest.mark.parametrize("family, key", [(4, v4_key), (6, v6_key)], ids=["ipv4", "ipv6"])
@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 300)), max_size=400))
def test_the_hash_behaves_like_a_dict(family, key, ops):
    h, d = AddrHash(family), {}
    for put, k in ops:
        tag, address = key(k)
        if put:
            h.py_put(tag, address, k)
            d[(tag, address)] = k
        else:
            assert h.py_delete(tag, address) == (d.pop((tag, address), None) is not None)
        assert len(h) == len(d)
    assert sorted((t, a, v) for t, a, v in h.items()) == sorted((t, a, v) for (t, a), v in d.items())
    for k in range(301):
        assert h.py_get(*key(k)) == d.get(key(k))


def test_an_ipv6_table_tells_addresses_apart_that_an_ipv4_key_would_merge():
    h = AddrHash(6)
    low = V6_BASE | 1
    high = V6_BASE | (1 << 64) | 1                    # same low 64 bits
    h.py_put(0, low, 10)
    h.py_put(0, high, 20)
    h.py_put(1, low, 30)                              # same address, another scope
    assert (h.py_get(0, low), h.py_get(0, high), h.py_get(1, low)) == (10, 20, 30)
    assert h.py_delete(0, high) and h.py_get(0, high) is None and h.py_get(0, low) == 10


def test_growth_keeps_every_entry_of_both_families():
    for family, base in ((4, 0x0A000000), (6, V6_BASE)):
        h = AddrHash(family)
        for k in range(5000):
            h.py_put(k % 9, base + k, k)
        assert len(h) == 5000 and h.size >= 2 * 5000
        assert all(h.py_get(k % 9, base + k) == k for k in range(5000))


@pytest.mark.parametrize("family, bad", [(4, (0, 1 << 32)), (4, (0, -1)), (6, (0, 1 << 128)),
                                         (4, (-1, 1)), (6, (1 << 31, 1)), (4, ("0", 1))])
def test_keys_outside_the_family_are_refused(family, bad):
    with pytest.raises(InvalidArgument):
        AddrHash(family).py_put(*bad, 1)


def test_only_families_4_and_6():
    with pytest.raises(InvalidArgument, match="family"):
        AddrHash(5)
