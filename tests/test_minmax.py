"""The min–max quantizer and range header (splitcodec.minmax) that uniform, tiling and the anchors share."""

from __future__ import annotations

import numpy as np
import pytest

from splitcodec import minmax, tiling
from splitcodec.codecs import get_codec
from splitcodec.errors import BitstreamError, CodecError


def features(seed: int = 0) -> np.ndarray:
    return np.maximum(np.random.default_rng(seed).normal(0.3, 1.5, (16, 12, 12)), 0).astype(np.float32)


@pytest.mark.parametrize("formula", ["scale", "step"])
@pytest.mark.parametrize("bits", [1, 2, 8, 10, 16])
def test_codes_span_the_range_and_dequantize_within_half_a_step(formula, bits):
    x = features()
    q, lo, hi = minmax.quantize(x, bits, formula=formula)
    assert q.dtype == np.uint16 and q.min() == 0 and q.max() == (1 << bits) - 1
    assert (lo, hi) == (float(x.min()), float(x.max()))
    step = (hi - lo) / ((1 << bits) - 1)
    ulp = 4 * np.finfo(np.float32).eps * max(abs(lo), abs(hi))  # float32 arithmetic at 16 bits
    assert np.abs(minmax.dequantize(q, lo, hi, bits) - x).max() <= step / 2 + ulp


def test_the_two_formulas_are_both_kept_because_they_round_differently():
    """Float32 (x - lo) / (hi - lo) * top and (x - lo) / ((hi - lo) / top) differ on some elements."""
    rng = np.random.default_rng(1)
    x = rng.random(200_000, dtype=np.float32) * np.float32(7.3)
    a, _, _ = minmax.quantize(x, 10, formula="scale")
    b, _, _ = minmax.quantize(x, 10, formula="step")
    assert 0 < int((a != b).sum()) < 100 and int(np.abs(a.astype(int) - b).max()) == 1


def test_each_user_keeps_its_formula():
    x = features(2)
    assert np.array_equal(tiling.quantize(x, 8)[0], minmax.quantize(x, 8, formula="scale")[0])
    codec = get_codec("uniform", bits=8)
    assert np.array_equal(codec._quantize(x)[0], minmax.quantize(x, 8, formula="step")[0])


def test_constant_and_empty_tensors_and_bad_arguments():
    for formula in ("scale", "step"):
        q, lo, hi = minmax.quantize(np.full((3, 4), 2.5, np.float32), 8, formula=formula)
        assert not q.any() and lo == hi == 2.5
        q, lo, hi = minmax.quantize(np.zeros((0, 4), np.float32), 8, formula=formula)
        assert q.shape == (0, 4) and lo == hi == 0.0
    with pytest.raises(CodecError, match="bits"):
        minmax.quantize(features(), 17, formula="scale")
    with pytest.raises(CodecError, match="formula"):
        minmax.quantize(features(), 8, formula="round")  # type: ignore[arg-type]


def test_range_header_round_trip_and_refusals():
    data = minmax.pack_range(-1.5, 2.25) + b"payload"
    assert minmax.read_range(data, "x") == (-1.5, 2.25, minmax.RANGE_BYTES)
    with pytest.raises(BitstreamError, match="demo: payload of 5 bytes is shorter"):
        minmax.read_range(data[:5], "demo")
    for lo, hi in ((2.0, 1.0), (float("nan"), 1.0), (0.0, float("inf"))):
        with pytest.raises(BitstreamError, match="demo: invalid value range"):
            minmax.read_range(minmax.pack_range(lo, hi), "demo")
