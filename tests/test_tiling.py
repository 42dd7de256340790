"""n-bit quantization and the channel mosaic (splitcodec.tiling)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitcodec.errors import BitstreamError, CodecError
from splitcodec.tiling import crop, dequantize, grid, mosaic_shape, pad, padded_size, quantize, tile, untile


@given(st.integers(1, 5000))
def test_grid_is_near_square_and_holds_every_plane(planes):
    rows, cols = grid(planes)
    assert rows * cols >= planes
    assert cols == math.ceil(math.sqrt(planes))
    assert rows <= cols and (rows - 1) * cols < planes  # no empty row


@pytest.mark.parametrize(("planes", "expected"), [(1, (1, 1)), (2, (1, 2)), (5, (2, 3)), (16, (4, 4)), (17, (4, 5)), (64, (8, 8)), (96, (10, 10))])
def test_grid_known_values(planes, expected):
    assert grid(planes) == expected


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(st.integers(1, 2), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6)),
    st.sampled_from([1, 2, 8, 10, 12, 16]),
    st.integers(0, 2**31 - 1),
)
def test_quantize_tile_untile_roundtrip(shape, bits, seed):
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 3
    q, lo, hi = quantize(x, bits)
    assert q.dtype == np.uint16 and q.shape == x.shape
    assert q.min() >= 0 and int(q.max()) <= (1 << bits) - 1
    assert lo == float(x.min()) and hi == float(x.max())
    frame = tile(q)
    assert frame.shape == mosaic_shape(shape)
    assert np.array_equal(untile(frame, shape), q)
    err = np.abs(dequantize(q, lo, hi, bits) - x).max()
    float32_rounding = 4 * np.finfo(np.float32).eps * max(abs(lo), abs(hi))
    assert err <= (hi - lo) / ((1 << bits) - 1) / 2 + float32_rounding


def test_planes_are_in_raster_order_and_unused_tiles_are_zero():
    c, h, w = 5, 2, 3
    q = np.stack([np.full((h, w), i + 1, dtype=np.uint16) for i in range(c)])[None]
    frame = tile(q)
    rows, cols = grid(c)
    assert (rows, cols) == (2, 3)
    for i in range(c):
        r, k = divmod(i, cols)
        assert (frame[r * h : (r + 1) * h, k * w : (k + 1) * w] == i + 1).all()
    assert (frame[h:, 2 * w :] == 0).all()  # the sixth tile is unused


def test_quantize_edge_cases():
    q, lo, hi = quantize(np.full((1, 2, 3, 3), 2.5, dtype=np.float32), 10)
    assert (q == 0).all() and lo == hi == 2.5
    assert (dequantize(q, lo, hi, 10) == 2.5).all()
    q, lo, hi = quantize(np.array([[0.0, 1.0]], dtype=np.float32), 10)
    assert q.tolist() == [[0, 1023]]
    relu = np.maximum(np.random.default_rng(0).normal(size=(1, 4, 5, 5)), 0).astype(np.float32)
    q, lo, hi = quantize(relu, 8)
    assert lo == 0.0 and (dequantize(q, lo, hi, 8)[relu == 0] == 0).all()  # ReLU zeros stay exact
    for bad in (0, 17):
        with pytest.raises(CodecError, match="bits"):
            quantize(relu, bad)


def test_tile_errors():
    with pytest.raises(CodecError):
        tile(np.zeros(5, dtype=np.uint16))
    with pytest.raises(CodecError):
        mosaic_shape((7,))
    with pytest.raises(BitstreamError, match="too small"):
        untile(np.zeros((4, 4), dtype=np.uint16), (1, 5, 4, 4))


@pytest.mark.parametrize(("size", "multiple", "minimum", "expected"), [
    ((84, 84), 8, 16, (88, 88)), ((12, 5), 8, 16, (16, 16)), ((64, 17), 8, 16, (64, 24)), ((3, 3), 1, 1, (3, 3)),
    ((16, 16), 8, 16, (16, 16)), ((7, 13), 2, 1, (8, 14)),
])
def test_padded_size(size, multiple, minimum, expected):
    assert padded_size(size, multiple, minimum) == expected


def test_pad_replicates_edges_and_crop_undoes_it():
    frame = np.arange(12, dtype=np.uint16).reshape(3, 4)
    padded = pad(frame, multiple=8, minimum=16)
    assert padded.shape == (16, 16)
    assert (padded[3:, :4] == frame[-1]).all() and (padded[:3, 4:] == frame[:, -1:]).all()
    assert np.array_equal(crop(padded, frame.shape), frame)
    assert pad(frame) is frame
    with pytest.raises(BitstreamError):
        crop(frame, (4, 4))
