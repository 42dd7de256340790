from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitcodec.entropy import (
    decode_symbols,
    encode_symbols,
    ideal_bits,
    quantize_pmf,
    read_counts,
    read_varint,
    write_counts,
    write_varint,
)
from splitcodec.errors import BitstreamError, CodecError


def test_quantize_pmf_sums_to_power_of_two_and_keeps_every_symbol():
    counts = quantize_pmf(np.array([1e6, 0, 3, 0.5]), precision=12)
    assert counts.sum() == 4096 and counts.min() >= 1
    assert counts[0] > 4000


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=300), st.integers(9, 24))
def test_quantize_pmf_property(weights, precision):
    counts = quantize_pmf(np.array(weights), precision)
    assert counts.sum() == 1 << precision and counts.min() >= 1 and len(counts) == len(weights)


def test_rate_is_within_half_a_percent_of_the_information_content():
    rng = np.random.default_rng(0)
    p = np.array([0.6, 0.2, 0.1, 0.05, 0.05])
    msg = rng.choice(5, size=200_000, p=p).astype(np.int32)
    counts = quantize_pmf(np.bincount(msg, minlength=5))
    data = encode_symbols(msg, counts)
    assert np.array_equal(decode_symbols(data, counts, len(msg)), msg)
    ideal = ideal_bits(msg, counts)
    assert ideal <= len(data) * 8 <= ideal * 1.005 + 64


def test_symbols_outside_the_alphabet_are_refused():
    with pytest.raises(CodecError):
        encode_symbols(np.array([0, 4]), quantize_pmf(np.ones(4)))


def test_bad_payloads_raise_bitstream_errors():
    counts = quantize_pmf(np.ones(4))
    with pytest.raises(BitstreamError, match="multiple of 4"):
        decode_symbols(b"\x01\x02\x03", counts, 10)
    with pytest.raises(BitstreamError):
        decode_symbols(b"\x01", counts, 0)


def test_varints_and_tables():
    for v in (0, 1, 127, 128, 300, 2**31, 2**60):
        data = write_varint(v)
        assert read_varint(data, 0) == (v, len(data))
    with pytest.raises(BitstreamError, match="truncated"):
        read_varint(b"\x80", 0)
    with pytest.raises(BitstreamError, match="longer"):
        read_varint(b"\x80" * 12, 0)
    counts = quantize_pmf(np.arange(1, 17))
    blob = write_counts(counts)
    got, pos = read_counts(blob, 0, max_symbols=16)
    assert np.array_equal(got, counts) and pos == len(blob)
    with pytest.raises(BitstreamError, match="symbols"):
        read_counts(blob, 0, max_symbols=8)
    with pytest.raises(BitstreamError, match="power-of-two"):
        read_counts(write_counts(np.array([1, 2, 4])), 0, max_symbols=8)
