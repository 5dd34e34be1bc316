"""The fast path's one summing routine (checksum.pxi: eight bytes a step, native-order
words swapped once) against RFC 1071 written out word by word, at every length and
alignment; and the reference's header check on the checksum's two zeros."""
from hypothesis import given, settings, strategies as st

from fastpath import internet_checksum
from fastpath.reference import ipv4_checksum


def rfc1071(data):
    data = data + b"\0" * (len(data) % 2)           # an odd byte is the high half of a word
    s = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 7))
def test_the_summing_routine_is_rfc_1071_at_any_length_and_alignment(data, skew):
    buf = bytes(skew) + data
    assert internet_checksum(memoryview(buf)[skew:]) == rfc1071(data)


def test_sums_that_carry_a_lot():
    for n in (0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 65535, 65536, 65537):
        assert internet_checksum(b"\xff" * n) == rfc1071(b"\xff" * n)
        assert internet_checksum(b"\x00" * n) == 0xFFFF


def test_a_valid_header_checks_to_zero_with_either_zero():
    blank = bytes.fromhex("4500001c0000000040110000") + bytes.fromhex("0a0000010a000002")
    ident = rfc1071(blank).to_bytes(2, "big")      # as the ID, it makes the words sum to all ones
    for field in (b"\x00\x00", b"\xff\xff"):         # so the checksum is 0x0000, or -0 = 0xFFFF
        h = blank[:4] + ident + blank[6:10] + field + blank[12:]
        assert rfc1071(h) == 0 and internet_checksum(h) == 0 and ipv4_checksum(h) == 0
