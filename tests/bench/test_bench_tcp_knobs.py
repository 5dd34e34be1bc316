"""Unit tests of bench/tcp_knobs.py (no root): the knobs' combinations, their row
suffixes and the parsing of their values."""

import pytest

from bench import tcp_knobs


def test_sizes_parse_with_k_and_m_and_refuse_what_is_not_a_count():
    assert tcp_knobs.parse_sizes("10000, 64,4M,256k", "--x") == [10000, 64, 4 << 20, 256 << 10]
    for bad in ("", "64,", "-1", "1.5M", "4G", "q64"):
        with pytest.raises(ValueError, match="--x: not a count"):
            tcp_knobs.parse_sizes(bad, "--x")


def test_variants_are_the_cross_product_and_name_their_rows():
    rows = [k.suffix for k in tcp_knobs.variants(True, [1000, 64], [256 << 10])]
    assert rows == ["/q1000/tlo256K", "/q64/tlo256K", "+rps/q1000/tlo256K", "+rps/q64/tlo256K"]
    assert [k.suffix for k in tcp_knobs.variants(False, None, None)] == [""]
    assert tcp_knobs.Knobs(limit_output=100000).suffix == "/tlo100000"
