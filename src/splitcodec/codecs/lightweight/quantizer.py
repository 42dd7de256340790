"""Scalar quantizers, and their exact distortion and index entropy under an error model.

A quantizer is ``N-1`` increasing thresholds and ``N`` reconstruction levels, float32 so that coding is
bit-exact everywhere; cell ``i`` is ``[t_i, t_{i+1})`` (``t_0 = -inf``, ``t_N = +inf``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splitcodec.codecs.lightweight.error_model import FeatureModel
from splitcodec.errors import CodecError

__all__ = ["ScalarQuantizer", "uniform_quantizer", "model_cost", "entropy_bits"]


def entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Entropy in bits of probability vectors along ``axis`` (0·log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)



@dataclass(frozen=True)
class ScalarQuantizer:
    """Thresholds (N-1, increasing) and levels (N), both float32 so coding is bit-exact everywhere.

    Index of ``y``: the number of thresholds ``<= y`` (cell ``i`` is ``[t_i, t_{i+1})``).
    """

    thresholds: np.ndarray
    levels: np.ndarray
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        t = np.asarray(self.thresholds, dtype=np.float32).ravel()
        r = np.asarray(self.levels, dtype=np.float32).ravel()
        if r.size < 1 or t.size != r.size - 1:
            raise CodecError(f"a quantizer needs N >= 1 levels and N-1 thresholds, got {r.size} and {t.size}")
        if not (np.isfinite(t).all() and np.isfinite(r).all()):
            raise CodecError("quantizer thresholds and levels must be finite")
        if t.size and not (np.diff(t) > 0).all():
            raise CodecError("quantizer thresholds must be strictly increasing")
        object.__setattr__(self, "thresholds", t)
        object.__setattr__(self, "levels", r)

    @property
    def n(self) -> int:
        return int(self.levels.size)

    def quantize(self, y: np.ndarray) -> np.ndarray:
        """Cell index of every value (int32): how many thresholds are ``<= y``."""
        y = np.asarray(y, dtype=np.float32)
        if self.thresholds.size > 16:
            return np.searchsorted(self.thresholds, y, side="right").astype(np.int32)
        idx = np.zeros(y.shape, dtype=np.int32)
        for t in self.thresholds:  # a few vectorised compares beat a binary search per element
            idx += y >= t
        return idx

    def dequantize(self, idx: np.ndarray) -> np.ndarray:
        return self.levels[idx]


def uniform_quantizer(lo: float, hi: float, n: int) -> ScalarQuantizer:
    """``n`` evenly spaced levels from ``lo`` to ``hi`` (both included), thresholds halfway between."""
    if n < 1:
        raise CodecError(f"a quantizer needs at least one level, got {n}")
    if n == 1 or not hi > lo:
        return ScalarQuantizer(np.zeros(0), np.array([lo]))
    levels = np.linspace(lo, hi, n)
    levels32 = levels.astype(np.float32)
    if not (np.diff(levels32) > 0).all():
        return ScalarQuantizer(np.zeros(0), np.array([lo]))
    return ScalarQuantizer(0.5 * (levels32[1:].astype(np.float64) + levels32[:-1]), levels32)


def model_cost(model: FeatureModel, q: ScalarQuantizer) -> tuple[float, float]:
    """Exact ``(mean squared error, entropy in bits/element)`` of quantizer ``q`` under ``model``."""
    p, d = model.cell_stats(q.thresholds, q.levels)
    return float(d.sum()), float(entropy_bits(p))

