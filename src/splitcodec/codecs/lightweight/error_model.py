"""The error model: a pre-activation density seen through the cut's activation, and its exact cell statistics.

A feature value is ``Y = f(X)``.  ``X``, the pre-activation value, has a Gaussian, Laplace or generalised
Gaussian density (``loc``, ``scale``, shape β); ``f`` is the activation of the cut:

* ``relu``:       ``max(X, 0)``          (a point mass ``P(X <= 0)`` at 0)
* ``relu6``:      ``min(max(X, 0), 6)``  (point masses at 0 and at 6)
* ``leaky_relu``: ``X`` if ``X >= 0`` else ``slope * X``
* ``other``:      ``X`` (the density describes the features directly)

:meth:`FeatureModel.cell_stats` gives, for every cell ``[t_i, t_{i+1})`` of a scalar quantizer, the exact
probability ``P(Y in cell)`` and distortion ``E[(Y - r_i)^2 ; Y in cell]``: closed-form partial moments
over the cell's pre-image, point masses included.  So clipping error (the end cells reach to infinity) and
quantization error are exact at any number of levels; no high-rate ``Δ²/12`` approximation.

>>> from splitcodec.codecs.lightweight import uniform_quantizer
>>> m = FeatureModel("gaussian", loc=0.2, scale=1.0, activation="relu")
>>> q = uniform_quantizer(0.0, 2.5, 4)
>>> p, d = m.cell_stats(q.thresholds, q.levels)
>>> round(float(p.sum()), 12), bool(d.sum() > 0)
(1.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitcodec.codecs.lightweight import densities
from splitcodec.errors import CodecError

__all__ = ["ACTIVATIONS", "FAMILIES", "RELU6_CAP", "FeatureModel"]

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "other")
FAMILIES = ("gaussian", "laplace", "gengauss")
RELU6_CAP = 6.0


@dataclass(frozen=True)
class FeatureModel:
    """Pre-activation density (``family``, ``loc``, ``scale``) seen through the cut's ``activation``."""

    family: str
    loc: float
    scale: float
    activation: str = "other"
    slope: float = 0.0
    shape: float = 2.0  # β of the generalised Gaussian exp(-|z|^β) (gengauss only)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise CodecError(f"unknown model family {self.family!r}; use one of {FAMILIES}")
        if self.activation not in ACTIVATIONS:
            raise CodecError(f"unknown activation {self.activation!r}; use one of {ACTIVATIONS}")
        if not (math.isfinite(self.loc) and math.isfinite(self.scale) and self.scale > 0):
            raise CodecError(f"model needs a finite loc and a positive scale, got {self.loc}, {self.scale}")
        if self.activation == "leaky_relu" and not 0 < self.slope < 1:
            raise CodecError(f"leaky_relu model needs a slope in (0, 1), got {self.slope}")
        if self.family == "gengauss" and not (math.isfinite(self.shape) and 0.1 <= self.shape <= 10):
            raise CodecError(f"gengauss model needs a shape in [0.1, 10], got {self.shape}")

    # pre-activation X
    def x_cdf(self, x: np.ndarray) -> np.ndarray:
        return densities.cdf(self.family, self.shape, (np.asarray(x, dtype=np.float64) - self.loc) / self.scale)

    def x_ppf(self, p: np.ndarray) -> np.ndarray:
        return self.loc + self.scale * densities.ppf(self.family, self.shape, p)

    def _x_cell(self, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P(a <= X < b), E[(X - r)^2 ; a <= X < b])`` elementwise (empty when b <= a)."""
        za = (a - self.loc) / self.scale
        zb = (np.maximum(a, b) - self.loc) / self.scale
        p, s1, s2 = densities.partial_moments(self.family, self.shape, za, zb)
        d = self.loc - r
        sq = d * d * p + 2.0 * d * self.scale * s1 + self.scale**2 * s2
        return p, np.maximum(sq, 0.0)

    # activation output Y
    def act(self, x: np.ndarray) -> np.ndarray:
        """The activation ``f`` applied to pre-activation values."""
        x = np.asarray(x, dtype=np.float64)
        if self.activation == "relu":
            return np.maximum(x, 0.0)
        if self.activation == "relu6":
            return np.clip(x, 0.0, RELU6_CAP)
        if self.activation == "leaky_relu":
            return np.where(x >= 0, x, self.slope * x)
        return x

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``Y`` (for Monte-Carlo checks)."""
        if self.family == "gaussian":
            x = rng.normal(self.loc, self.scale, n)
        elif self.family == "laplace":
            x = rng.laplace(self.loc, self.scale, n)
        else:
            mag = rng.gamma(1.0 / self.shape, 1.0, n) ** (1.0 / self.shape)
            x = self.loc + self.scale * np.where(rng.random(n) < 0.5, -mag, mag)
        return self.act(x)

    def y_ppf(self, p: np.ndarray) -> np.ndarray:
        """Quantile function of ``Y`` (``f`` is non-decreasing)."""
        return self.act(self.x_ppf(p))

    def y_cdf(self, y: np.ndarray, *, left: bool = False) -> np.ndarray:
        """``P(Y <= y)``, or ``P(Y < y)`` with ``left=True`` (they differ at the point masses)."""
        y = np.asarray(y, dtype=np.float64)
        if self.activation == "leaky_relu":
            return self.x_cdf(np.where(y < 0, y / self.slope, y))
        if self.activation == "other":
            return self.x_cdf(y)
        out = np.where((y > 0) if left else (y >= 0), self.x_cdf(y), 0.0)
        if self.activation == "relu6":
            out = np.where((y > RELU6_CAP) if left else (y >= RELU6_CAP), 1.0, out)
        return out

    def cell_stats(self, thresholds: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell ``(probability, E[(Y - r_i)^2 ; Y in cell i])`` of a quantizer, exactly.

        ``thresholds`` has shape ``(..., N-1)`` and ``levels`` ``(..., N)``; leading axes broadcast, so a
        whole grid of quantizers is evaluated at once.
        """
        t = np.asarray(thresholds, dtype=np.float64)
        r = np.asarray(levels, dtype=np.float64)
        inf = np.full(t.shape[:-1] + (1,), np.inf)
        a = np.concatenate([-inf, t], axis=-1)
        b = np.concatenate([t, inf], axis=-1)
        return self._y_cell(a, b, r)

    def _y_cell(self, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        act = self.activation
        if act == "other":
            return self._x_cell(a, b, r)
        if act == "leaky_relu":
            s = self.slope
            neg_a = np.where(a < 0, a, 0.0) / s
            neg_b = np.minimum(b, 0.0) / s
            p1, d1 = self._x_cell(neg_a, neg_b, r / s)
            p2, d2 = self._x_cell(np.maximum(a, 0.0), np.maximum(b, 0.0), r)
            return p1 + p2, s * s * d1 + d2
        top = RELU6_CAP if act == "relu6" else np.inf
        p, d = self._x_cell(np.clip(a, 0.0, top), np.clip(b, 0.0, top), r)
        zero = (a <= 0) & (b > 0)
        mass0 = float(self.x_cdf(0.0))
        p = p + np.where(zero, mass0, 0.0)
        d = d + np.where(zero, mass0 * r * r, 0.0)
        if act == "relu6":
            cap = (a <= top) & (b > top)
            mass6 = 1.0 - float(self.x_cdf(top))
            p = p + np.where(cap, mass6, 0.0)
            d = d + np.where(cap, mass6 * (top - r) ** 2, 0.0)
        return p, d

    def mean_square(self) -> float:
        """``E[Y^2]`` under the model."""
        p, d = self.cell_stats(np.zeros(0), np.zeros(1))
        return float(d.sum())

    def to_json(self) -> list[Any]:
        """``[family, loc, scale]`` (+ ``shape`` for gengauss)."""
        out: list[Any] = [self.family, float(self.loc), float(self.scale)]
        return out + [float(self.shape)] if self.family == "gengauss" else out

    @classmethod
    def from_json(cls, data: list[Any], activation: str, slope: float = 0.0) -> "FeatureModel":
        shape = float(data[3]) if len(data) > 3 else 2.0
        return cls(str(data[0]), float(data[1]), float(data[2]), activation, slope, shape)

