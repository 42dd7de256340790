"""Lossless coding of an integer level array: the mode choice and the public entry points."""

from __future__ import annotations

import numpy as np

from splitcodec.codecs.nearlossless.fallback import decode_hist, encode_hist, histogram_applies, pack_raw, unpack_raw
from splitcodec.codecs.nearlossless.layout import layout_of, planes
from splitcodec.codecs.nearlossless.params import MODE_DENSE, MODE_HIST, MODE_RAW, MODE_SPARSE
from splitcodec.codecs.nearlossless.wavefront import decode_modeled, encode_modeled
from splitcodec.errors import CodecError, PayloadError

__all__ = ["DEFAULT_LEAKY_SLOPE", "MAX_BITS", "SPARSE_MIN_FRACTION", "decode_levels", "encode_levels"]

MAX_BITS = 16
#: the sparse mode is tried when at least this fraction of the values sit at the quantized zero
SPARSE_MIN_FRACTION = 0.05
#: leaky slope tried by an unfitted codec when many values lie below the quantized zero
DEFAULT_LEAKY_SLOPE = 0.1


def _check_bits(bits: int) -> int:
    """The top level of ``bits``-bit levels; a CodecError outside 1..MAX_BITS."""
    if not 1 <= bits <= MAX_BITS:
        raise CodecError(f"nearlossless: bits must be in 1..{MAX_BITS}, got {bits}")
    return (1 << bits) - 1


def _candidate_modes(
    flat: np.ndarray, top: int, zero: int, slope: float | None, activation: str | None
) -> list[tuple[int, float]]:
    """The (mode, leaky slope) pairs worth trying for these levels."""
    below, at_zero = float((flat < zero).mean()), float((flat == zero).mean())
    candidates: list[tuple[int, float]] = []
    if top >= 2 and activation != "other":
        if slope is not None:
            candidates.append((MODE_SPARSE, slope))
        elif at_zero >= SPARSE_MIN_FRACTION or below >= 0.1:
            candidates.append((MODE_SPARSE, DEFAULT_LEAKY_SLOPE if below >= 0.1 else 0.0))
    if slope is None or not candidates:
        candidates.insert(0, (MODE_DENSE, 0.0))
    return candidates


def encode_levels(
    q: np.ndarray, bits: int, zero: int = 0, slope: float | None = None, activation: str | None = None
) -> bytes:
    """Code an integer array with values in ``[0, 2**bits)`` losslessly (no container, no range).

    ``zero`` is the level of the real value 0.  What produced the features picks the coding mode:
    ``activation="other"`` → the dense mode; a known ``slope`` (0 for ReLU, the leaky slope otherwise) →
    the sparse mode (significance flags, un-leaking below ``zero``); neither → the dense mode, and also
    the sparse mode when at least :data:`SPARSE_MIN_FRACTION` of the values sit at ``zero`` or a tenth
    lie below it (slope :data:`DEFAULT_LEAKY_SLOPE` then), keeping the shorter.  A fixed-width copy of
    the levels is the fallback when it is shorter still.
    """
    top = _check_bits(bits)
    q = np.asarray(q)
    flat = q.reshape(-1).astype(np.int64)
    if flat.size == 0:
        return b""
    if flat.min() < 0 or flat.max() > top:
        raise CodecError(f"nearlossless: levels must lie in [0, {top}], got [{flat.min()}, {flat.max()}]")
    if not 0 <= zero <= top:
        raise CodecError(f"nearlossless: zero level {zero} outside [0, {top}]")
    lay = layout_of(*planes(q.shape))
    best = b""
    for mode, s in _candidate_modes(flat, top, zero, slope, activation):
        data = encode_modeled(flat, lay, top, zero, mode, int(np.clip(round(s * 256), 0, 255)))
        if not best or len(data) < len(best):
            best = data
    if histogram_applies(flat.size, lay.H * lay.W, bits):
        data = encode_hist(flat, top)
        if len(data) < len(best):
            best = data
    raw = pack_raw(flat, bits)
    return raw if len(raw) <= len(best) else best


def decode_levels(data: bytes, shape: tuple[int, ...], bits: int, zero: int = 0) -> np.ndarray:
    """Inverse of :func:`encode_levels`: the uint16 array of ``shape``."""
    top = _check_bits(bits)
    if int(np.prod(shape, dtype=np.int64)) == 0:  # any zero dimension: nothing to lay out
        if data:
            raise PayloadError(f"nearlossless: {len(data)} unexpected bytes for an empty tensor")
        return np.zeros(shape, dtype=np.uint16)
    lay = layout_of(*planes(tuple(shape)))
    n = lay.size
    if data[:1] == bytes([MODE_RAW]):
        return unpack_raw(data[1:], n, bits).astype(np.uint16).reshape(shape)
    if data[:1] == bytes([MODE_HIST]):
        if not histogram_applies(n, lay.H * lay.W, bits):
            raise PayloadError("nearlossless: histogram mode for a tensor it is never used for")
        return decode_hist(data[1:], n, top).astype(np.uint16).reshape(shape)
    q = decode_modeled(data, lay, top, zero)
    if q.min() < 0 or q.max() > top:
        raise PayloadError("nearlossless: payload decodes to levels out of range")
    return q.astype(np.uint16).reshape(shape)
