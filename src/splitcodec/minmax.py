"""Per-tensor min–max quantization to ``bits`` bits, and the 8-byte range header that carries (lo, hi).

The one home of the quantizer that ``uniform``, ``nearlossless`` and the mosaic anchors (through
:mod:`splitcodec.tiling`) use, and of the range header at the start of their payloads::

    lo, hi     2 × float32, little-endian: the tensor's minimum and maximum

Codes are ``rint`` of the position of ``x`` between ``lo`` and ``hi`` on ``top = 2**bits - 1`` steps.
Two float32 orders of operations are in use, and they round differently on a few elements in ten
thousand (measured on ref-resnet / ref-darknet features), so each codec keeps its own, named by the
required ``formula`` argument; changing a codec's formula would change its streams:

- ``"scale"``: ``rint((x - lo) / (hi - lo) * top)`` — :mod:`splitcodec.tiling` (the MPEG mosaic path:
  ``hevc``, ``av1``, ``ffv1``, ``png``, ``webp``, ``jpegxl``, ``nearlossless``);
- ``"step"``: ``rint((x - lo) / step)`` with ``step = (hi - lo) / top`` — ``uniform``.

Dequantization is ``lo + q * (hi - lo) / top`` for both.

>>> import numpy as np
>>> x = np.array([0.0, 0.5, 1.0], dtype=np.float32)
>>> q, lo, hi = quantize(x, 2, formula="scale")
>>> q.tolist(), lo, hi
([0, 2, 3], 0.0, 1.0)
>>> dequantize(q, lo, hi, 2).tolist() == [0.0, np.float32(2 / 3), 1.0]
True
>>> read_range(pack_range(lo, hi) + b"rest", "demo")
(0.0, 1.0, 8)
"""

from __future__ import annotations

import struct
from typing import Literal

import numpy as np

from splitcodec.errors import CodecError, PayloadError

__all__ = ["Formula", "quantize", "dequantize", "pack_range", "read_range", "RANGE_BYTES"]

Formula = Literal["scale", "step"]
_RANGE = struct.Struct("<ff")
#: Size of the range header.
RANGE_BYTES = _RANGE.size


def quantize(x: np.ndarray, bits: int, *, formula: Formula) -> tuple[np.ndarray, float, float]:
    """Quantize ``x`` between its min and max to ``bits`` (1..16): ``(uint16 codes, lo, hi)``.

    ``formula`` picks the float32 order of operations (see the module docstring); a constant tensor
    (``hi == lo``, or a step that underflows to 0 with ``"step"``) gives all-zero codes.
    """
    if not 1 <= bits <= 16:
        raise CodecError(f"bits must be in 1..16, got {bits}")
    if formula not in ("scale", "step"):
        raise CodecError(f"min–max formula must be 'scale' or 'step', got {formula!r}")
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint16), 0.0, 0.0
    lo, hi = np.float32(x.min()), np.float32(x.max())
    top = np.float32((1 << bits) - 1)
    if formula == "scale":
        q = np.rint((x - lo) / (hi - lo) * top) if hi > lo else None
    else:
        step = (hi - lo) / top
        q = np.rint((x - lo) / step) if step > 0 else None
    if q is None:
        return np.zeros(x.shape, dtype=np.uint16), float(lo), float(hi)
    return np.clip(q, 0, top).astype(np.uint16), float(lo), float(hi)


def dequantize(q: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    """Inverse of :func:`quantize` (up to the quantization error): float32 ``lo + q * (hi - lo) / top``."""
    top = np.float32((1 << bits) - 1)
    scale = (np.float32(hi) - np.float32(lo)) / top
    return (np.float32(lo) + q.astype(np.float32) * scale).astype(np.float32)


def pack_range(lo: float, hi: float) -> bytes:
    """The range header: ``lo``, ``hi`` as little-endian float32."""
    return _RANGE.pack(lo, hi)


def read_range(payload: bytes, codec_id: str) -> tuple[float, float, int]:
    """``(lo, hi, offset after the header)`` from the start of ``payload``.

    Raises :class:`~splitcodec.errors.PayloadError` (a ``BitstreamError``, naming ``codec_id``) if the
    payload is too short or the range is not finite with ``lo <= hi``.
    """
    if len(payload) < _RANGE.size:
        raise PayloadError(f"{codec_id}: payload of {len(payload)} bytes is shorter than its range header")
    lo, hi = _RANGE.unpack_from(payload)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise PayloadError(f"{codec_id}: invalid value range [{lo}, {hi}] in payload")
    return lo, hi, _RANGE.size
