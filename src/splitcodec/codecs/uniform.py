"""``uniform``: per-tensor min–max quantization to ``bits`` bits, indices entropy-coded with ANS.

Each coded tensor stores its own min and max (2 × float32); the ``2**bits`` indices are coded with
``constriction`` under an integer probability table.  ``fit`` learns that table from calibration
features, and it travels in the codec config (once, by reference); an unfitted codec writes the
tensor's own histogram into every payload instead (fine at 2–4 bits, costly at 8).

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.rand(4, 16, 8, 8)
>>> codec = get_codec("uniform", bits=4).fit(x)
>>> y = codec.decode(codec.encode(x[:1]))
>>> bool((y - x[:1]).abs().max() <= (x[:1].max() - x[:1].min()) / 15 / 2 + 1e-6)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from splitcodec.codecs.base import Codec, as_array
from splitcodec.codecs.registry import register_codec
from splitcodec.entropy import decode_symbols, encode_symbols, quantize_pmf, read_counts, write_counts
from splitcodec.errors import CodecError, PayloadError
from splitcodec.minmax import dequantize, pack_range, quantize, read_range

if TYPE_CHECKING:
    import torch

    from splitcodec.split import Activation

__all__ = ["Uniform"]

MAX_BITS = 12


def _precision(bits: int) -> int:
    return min(24, max(16, bits + 8))


@register_codec
class Uniform(Codec):
    """n-bit uniform quantization between the tensor's min and max, then ANS entropy coding."""

    codec_id = "uniform"
    description = "n-bit min–max uniform quantization + ANS entropy coding (constriction)"
    sweep = tuple({"bits": b} for b in (8, 6, 4, 3, 2))

    def __init__(self, bits: int = 8) -> None:
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
            raise CodecError(f"uniform: bits must be an integer in 1..{MAX_BITS}, got {bits!r}")
        self.bits = bits
        self._counts: np.ndarray | None = None

    @property
    def levels(self) -> int:
        return 1 << self.bits

    # --- quantizer ---------------------------------------------------------------------------------
    def _quantize(self, x: np.ndarray) -> tuple[np.ndarray, float, float]:
        q, lo, hi = quantize(x, self.bits, formula="step")  # uniform's own rounding: see splitcodec.minmax
        return q.astype(np.int32), lo, hi

    # --- fitted state ------------------------------------------------------------------------------
    def fit(self, features: torch.Tensor | np.ndarray, activation: Activation | None = None) -> "Uniform":
        arr, _ = as_array(features, what="calibration features")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise CodecError("uniform.fit: need at least one calibration sample on dim 0")
        hist = np.zeros(self.levels, dtype=np.int64)
        for sample in arr:
            q, _, _ = self._quantize(sample)
            hist += np.bincount(q.ravel(), minlength=self.levels)
        self._counts = quantize_pmf(hist, _precision(self.bits))
        return self

    def get_state(self) -> dict[str, Any] | None:
        return None if self._counts is None else {"counts": self._counts.tolist()}

    def set_state(self, state: dict[str, Any]) -> None:
        try:
            counts = np.asarray(state["counts"], dtype=np.int64)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"uniform: state needs integer 'counts': {exc}") from exc
        if counts.shape != (self.levels,) or counts.min() < 1 or int(counts.sum()) != 1 << _precision(self.bits):
            raise CodecError(f"uniform: state 'counts' must be {self.levels} counts >= 1 summing to 2**{_precision(self.bits)}")
        self._counts = counts

    # --- coding ------------------------------------------------------------------------------------
    def encode_array(self, x: np.ndarray) -> bytes:
        q, lo, hi = self._quantize(x)
        out = bytearray(pack_range(lo, hi))
        counts = self._counts
        if counts is None:
            counts = quantize_pmf(np.bincount(q.ravel(), minlength=self.levels), _precision(self.bits))
            out += write_counts(counts)
        out += encode_symbols(q, counts)
        return bytes(out)

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        lo, hi, pos = read_range(payload, self.codec_id)
        counts = self._counts
        if counts is None:
            counts, pos = read_counts(payload, pos, max_symbols=self.levels)
            if len(counts) != self.levels:
                raise PayloadError(f"uniform: table has {len(counts)} symbols, expected {self.levels}")
        numel = int(np.prod(shape, dtype=np.int64))
        q = decode_symbols(payload[pos:], counts, numel)
        return dequantize(q, lo, hi, self.bits).reshape(shape)
