"""Error models and scalar-quantizer design for features cut right after an activation.

Used by the ``lightweight`` codec (seed paper 000, Choi, Bajić & Cohen 2021; see
``shared/notes/methods.md`` §1).  Everything here is plain numpy/scipy and independent of any codec.

The model
---------
A feature value is ``Y = f(X)``: ``X`` is the pre-activation value, modelled per tensor (or per channel)
by a Gaussian or a Laplace density with location ``loc`` and scale ``scale``, and ``f`` is the
activation of the cut:

* ``relu``:       ``max(X, 0)``          (a point mass ``P(X <= 0)`` at 0)
* ``relu6``:      ``min(max(X, 0), 6)``  (point masses at 0 and at 6)
* ``leaky_relu``: ``X`` if ``X >= 0`` else ``slope * X``
* ``other``:      ``X`` (no activation: the density describes the features directly)

The model is fitted from the post-activation values alone (:func:`fit_feature_model`): a censored
maximum-likelihood fit for ReLU/ReLU6 (values at 0 or 6 only say "X was beyond"), a complete-data fit
for leaky-ReLU (``X = Y / slope`` below 0) and for ``other``.

Exact quantizer statistics
--------------------------
A scalar quantizer is a list of decision thresholds ``t_1 < … < t_{N-1}`` and reconstruction levels
``r_0 … r_{N-1}``; cell ``i`` is ``[t_i, t_{i+1})`` in the feature domain (``t_0 = -inf``,
``t_N = +inf``).  :meth:`FeatureModel.cell_stats` returns, per cell, the exact probability
``P(Y in cell)`` and the exact distortion ``E[(Y - r_i)^2 ; Y in cell]`` under the model — closed forms
of the partial moments of the Gaussian/Laplace over the cell's pre-image, point masses included.  So the
clipping error (the end cells reach to infinity) and the quantization error of any quantizer, at any
number of levels, are computed exactly; no high-rate ``Δ²/12`` approximation.  Standardising
``z = (x - μ)/σ`` with shift ``t = (r - μ)/σ``, the Gaussian cell term is
``σ² [(1 + t²)(Φ(u) - Φ(l)) + (l - 2t) φ(l) - (u - 2t) φ(u)]``.

Design
------
* :func:`optimal_range` finds the clip range ``[lo, hi]`` of an ``N``-level uniform quantizer that
  minimises ``J = D + λ R`` under the model (``R`` = entropy of the cell probabilities, bits/element;
  ``λ = 0`` is the MSE-optimal clip); :func:`choose_uniform` also picks ``N``.
* :func:`design_ecsq` is the entropy-constrained design of Chou, Lookabaugh & Gray (1989) on (clipped)
  calibration values: assign each value to the level minimising ``(y - r_i)^2 + λ ℓ_i``, move levels to
  their cell centroids (the zero level stays at 0 for ReLU), update ``ℓ_i = -log2 p_i``, repeat.

>>> m = FeatureModel("gaussian", loc=0.2, scale=1.0, activation="relu")
>>> q = uniform_quantizer(0.0, 2.5, 4)
>>> p, d = m.cell_stats(q.thresholds, q.levels)
>>> round(float(p.sum()), 12), bool(d.sum() > 0)
(1.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

from splitcodec.errors import CodecError

__all__ = [
    "ACTIVATIONS",
    "FAMILIES",
    "RELU6_CAP",
    "FeatureModel",
    "ScalarQuantizer",
    "fit_feature_model",
    "fit_report",
    "uniform_quantizer",
    "model_cost",
    "optimal_range",
    "choose_uniform",
    "design_ecsq",
    "entropy_bits",
]

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "other")
FAMILIES = ("gaussian", "laplace", "gengauss")
RELU6_CAP = 6.0
_SQRT2PI = math.sqrt(2.0 * math.pi)


def entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Entropy in bits of probability vectors along ``axis`` (0·log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


# --- standardised partial moments ----------------------------------------------------------------------


def _zphi(z: np.ndarray) -> np.ndarray:
    """z·φ(z), 0 at ±inf."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = z * np.exp(-0.5 * z * z) / _SQRT2PI
    return np.where(np.isinf(z), 0.0, out)


def _gauss_moments(za: np.ndarray, zb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∫ z^k φ(z) dz over [za, zb) for k = 0, 1, 2 (za <= zb)."""
    # Tail-accurate probability: difference of upper tails on the right, of lower tails on the left.
    p = np.where(za > 0, special.ndtr(-za) - special.ndtr(-zb), special.ndtr(zb) - special.ndtr(za))
    phi_a = np.exp(-0.5 * np.square(np.where(np.isinf(za), 0.0, za))) / _SQRT2PI
    phi_b = np.exp(-0.5 * np.square(np.where(np.isinf(zb), 0.0, zb))) / _SQRT2PI
    phi_a = np.where(np.isinf(za), 0.0, phi_a)
    phi_b = np.where(np.isinf(zb), 0.0, phi_b)
    s1 = phi_a - phi_b
    s2 = p + _zphi(za) - _zphi(zb)
    return p, s1, s2


def _laplace_upper(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∫_u^inf z^k ½e^{-z} dz for k = 0, 1, 2 and u >= 0."""
    finite = np.isfinite(u)
    uu = np.where(finite, u, 0.0)
    e = np.where(finite, 0.5 * np.exp(-uu), 0.0)
    return e, (uu + 1.0) * e, (uu * uu + 2.0 * uu + 2.0) * e


def _laplace_moments(za: np.ndarray, zb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∫ z^k ½e^{-|z|} dz over [za, zb) for k = 0, 1, 2 (za <= zb)."""
    return _symmetric_moments(_laplace_upper, za, zb)


def _gg_upper(u: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∫_u^inf z^k g(z) dz for k = 0, 1, 2 and u >= 0, g(z) = β / (2Γ(1/β)) exp(-|z|^β)."""
    finite = np.isfinite(u)
    t = np.where(finite, u, 0.0) ** beta
    out = []
    for k in range(3):
        a = (k + 1) / beta
        val = math.exp(special.gammaln(a) - special.gammaln(1.0 / beta)) * 0.5 * special.gammaincc(a, t)
        out.append(np.where(finite, val, 0.0))
    return out[0], out[1], out[2]


def _symmetric_moments(upper, za: np.ndarray, zb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∫ z^k g(z) dz over [za, zb) for a symmetric density given by its upper partial moments."""
    a0, a1, a2 = upper(np.maximum(za, 0.0))
    b0, b1, b2 = upper(np.maximum(zb, 0.0))
    # negative part [min(za,0), min(zb,0)) mirrored to (−min(zb,0), −min(za,0)]
    c0, c1, c2 = upper(-np.minimum(zb, 0.0))
    d0, d1, d2 = upper(-np.minimum(za, 0.0))
    return (a0 - b0) + (c0 - d0), (a1 - b1) - (c1 - d1), (a2 - b2) + (c2 - d2)


def _std_moments(family: str, beta: float, za: np.ndarray, zb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if family == "gaussian":
        return _gauss_moments(za, zb)
    if family == "laplace":
        return _laplace_moments(za, zb)
    return _symmetric_moments(lambda u: _gg_upper(u, beta), za, zb)


def _std_cdf(family: str, beta: float, z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if family == "gaussian":
        return special.ndtr(z)
    if family == "laplace":
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))
    half_tail = 0.5 * special.gammaincc(1.0 / beta, np.abs(z) ** beta)
    return np.where(z < 0, half_tail, 1.0 - half_tail)


def _std_ppf(family: str, beta: float, p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if family == "gaussian":
        return special.ndtri(p)
    if family == "laplace":
        return -np.sign(p - 0.5) * np.log1p(-2.0 * np.abs(p - 0.5))
    tail = 2.0 * np.minimum(p, 1.0 - p)
    mag = special.gammainccinv(1.0 / beta, np.clip(tail, 0.0, 1.0)) ** (1.0 / beta)
    return np.sign(p - 0.5) * mag


def _std_logpdf(family: str, beta: float, z: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return -0.5 * z * z - math.log(_SQRT2PI)
    if family == "laplace":
        return -np.abs(z) - math.log(2.0)
    return math.log(beta / 2.0) - float(special.gammaln(1.0 / beta)) - np.abs(z) ** beta


def _std_logcdf(family: str, beta: float, z: float) -> float:
    if family == "gaussian":
        return float(special.log_ndtr(z))
    if family == "laplace":
        return math.log(0.5) + z if z < 0 else math.log1p(-0.5 * math.exp(-z))
    value = float(_std_cdf(family, beta, np.array(z)))
    return math.log(value) if value > 0 else -1e300


# --- the model ------------------------------------------------------------------------------------------


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
        return _std_cdf(self.family, self.shape, (np.asarray(x, dtype=np.float64) - self.loc) / self.scale)

    def x_ppf(self, p: np.ndarray) -> np.ndarray:
        return self.loc + self.scale * _std_ppf(self.family, self.shape, p)

    def _x_cell(self, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P(a <= X < b), E[(X - r)^2 ; a <= X < b])`` elementwise (empty when b <= a)."""
        za = (a - self.loc) / self.scale
        zb = (np.maximum(a, b) - self.loc) / self.scale
        p, s1, s2 = _std_moments(self.family, self.shape, za, zb)
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


# --- fitting ---------------------------------------------------------------------------------------------


def _mle(
    family: str, x: np.ndarray, n_lo: int, lo: float, n_hi: int, hi: float, init: tuple[float, float, float]
) -> tuple[float, float, float, float]:
    """Maximum likelihood ``(loc, scale, shape, mean log-likelihood)`` of ``x`` plus ``n_lo`` values censored
    at ``X <= lo`` and ``n_hi`` at ``X >= hi``.  The shape is fitted for gengauss only."""
    n = len(x) + n_lo + n_hi
    free_shape = family == "gengauss"

    def unpack(theta: np.ndarray) -> tuple[float, float, float]:
        beta = min(max(math.exp(theta[2]), 0.1), 10.0) if free_shape else init[2]
        return float(theta[0]), math.exp(float(theta[1])), beta

    def nll(theta: np.ndarray) -> float:
        mu, s, beta = unpack(theta)
        total = float(_std_logpdf(family, beta, (x - mu) / s).sum()) - len(x) * math.log(s)
        if n_lo:
            total += n_lo * _std_logcdf(family, beta, (lo - mu) / s)
        if n_hi:
            total += n_hi * _std_logcdf(family, beta, -(hi - mu) / s)  # symmetric densities: sf(z) = cdf(-z)
        return -total / n

    theta0 = [init[0], math.log(init[1])] + ([math.log(init[2])] if free_shape else [])
    res = optimize.minimize(nll, np.array(theta0), method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 3000})
    mu, s, beta = unpack(res.x)
    return mu, s, beta, -float(res.fun)


def _moment_init(family: str, x: np.ndarray) -> tuple[float, float, float]:
    """Complete-data estimates: exact ML for Gaussian/Laplace, a starting point for gengauss."""
    if family == "laplace":
        mu = float(np.median(x))
        return mu, max(float(np.abs(x - mu).mean()), 1e-12), 1.0
    mu, sd = float(x.mean()), max(float(x.std()), 1e-12)
    if family == "gaussian":
        return mu, sd, 2.0
    return mu, sd * math.sqrt(2.0), 2.0  # gengauss with β = 2 is N(μ, (scale/√2)²)


def _subsample(y: np.ndarray, max_values: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size > max_values:
        y = y[np.linspace(0, y.size - 1, max_values).astype(np.int64)]
    return y


def fit_feature_model(
    y: np.ndarray,
    activation: str,
    slope: float = 0.0,
    family: str = "auto",
    *,
    max_values: int = 200_000,
) -> tuple[FeatureModel | None, dict[str, float]]:
    """Fit the pre-activation model from post-activation values ``y``.

    Returns ``(model, log-likelihood per family)``; ``family="auto"`` keeps the more likely one.  The model
    is None when the values carry no spread to fit (e.g. a channel that is always 0).
    """
    if activation not in ACTIVATIONS:
        raise CodecError(f"unknown activation {activation!r}; use one of {ACTIVATIONS}")
    families = FAMILIES if family == "auto" else (family,)
    if any(f not in FAMILIES for f in families):
        raise CodecError(f"unknown model family {family!r}; use 'auto' or one of {FAMILIES}")
    y = _subsample(y, max_values)
    n_lo = n_hi = 0
    lo, hi = 0.0, RELU6_CAP
    if activation in ("relu", "relu6"):
        observed = y > 0
        n_lo = int((~observed).sum())
        if activation == "relu6":
            n_hi = int((y >= RELU6_CAP).sum())
            observed &= y < RELU6_CAP
        x = y[observed]
    elif activation == "leaky_relu":
        x = np.where(y < 0, y / slope, y)
    else:
        x = y
    if x.size < 2 or float(x.std()) <= 1e-12 * max(1.0, float(np.abs(x).max())):
        return None, {}
    fits: dict[str, tuple[float, float, float, float]] = {}
    for fam in families:
        mu0, s0, b0 = _moment_init(fam, x)
        if n_lo or n_hi:
            # start from the fit of the observed part, widened towards the censored side
            frac0 = n_lo / y.size
            fits[fam] = _mle(fam, x, n_lo, lo, n_hi, hi, (mu0 - s0 * 2.0 * frac0, s0 * (1.0 + frac0), b0))
        elif fam == "gengauss":
            fits[fam] = _mle(fam, x, 0, lo, 0, hi, (mu0, s0, b0))
        else:
            ll = float(_std_logpdf(fam, b0, (x - mu0) / s0).mean()) - math.log(s0)
            fits[fam] = (mu0, s0, b0, ll)
    best = max(fits, key=lambda f: fits[f][3])
    mu, s, beta, _ = fits[best]
    model = FeatureModel(best, mu, s, activation, slope if activation == "leaky_relu" else 0.0, beta)
    return model, {f: v[3] for f, v in fits.items()}


def fit_report(model: FeatureModel, y: np.ndarray, bins: int = 50, max_values: int = 200_000) -> dict[str, float]:
    """How well ``model`` matches the values ``y``.

    ``ks``: Kolmogorov–Smirnov distance between the model CDF of Y and the empirical CDF (over all
    values, point masses included); ``tv``: total-variation distance between the model's and the data's
    masses in ``bins`` equal-count bins; ``zero_frac_data``/``zero_frac_model`` for ReLU-like cuts.
    """
    y = np.sort(_subsample(y, max_values))
    n = y.size
    emp_right = np.searchsorted(y, y, side="right") / n
    emp_left = np.searchsorted(y, y, side="left") / n
    ks = float(max(np.abs(emp_right - model.y_cdf(y)).max(), np.abs(emp_left - model.y_cdf(y, left=True)).max()))
    edges = np.unique(np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1]))
    data_mass = np.diff(np.concatenate([[0], np.searchsorted(y, edges, side="left"), [n]])) / n
    model_mass = np.diff(np.concatenate([[0.0], model.y_cdf(edges, left=True), [1.0]]))
    out = {"ks": ks, "tv": float(0.5 * np.abs(data_mass - model_mass).sum())}
    if model.activation in ("relu", "relu6"):
        out["zero_frac_data"] = float((y <= 0).mean())
        out["zero_frac_model"] = float(model.x_cdf(0.0))
    return out


# --- quantizers ----------------------------------------------------------------------------------------


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


def _uniform_grid_cost(model: FeatureModel, lo: np.ndarray, hi: np.ndarray, n: int, lam: float) -> np.ndarray:
    """``D + λR`` of N-level uniform quantizers on ``[lo_k, hi_k]`` (vectors), under the model."""
    lo = np.asarray(lo, dtype=np.float64)[:, None]
    hi = np.asarray(hi, dtype=np.float64)[:, None]
    levels = lo + (hi - lo) * np.linspace(0.0, 1.0, n)[None, :]
    thresholds = 0.5 * (levels[:, 1:] + levels[:, :-1])
    p, d = model.cell_stats(thresholds, levels)
    return d.sum(-1) + lam * entropy_bits(p)


def _one_sided(model: FeatureModel) -> bool:
    return model.activation in ("relu", "relu6")


def optimal_range(model: FeatureModel, n: int, lam: float = 0.0, *, grid: int = 48) -> tuple[float, float, float]:
    """Clip range ``(lo, hi)`` of the ``n``-level uniform quantizer minimising ``D + lam·R`` under the model.

    ReLU/ReLU6 keep ``lo = 0`` (a level exactly at the zero mass); leaky-ReLU and ``other`` search both
    ends.  The search runs over tail probabilities (a log grid, then a local refinement), so it is
    scale-free.  Returns ``(lo, hi, J)``.
    """
    if n < 2:
        raise CodecError("optimal_range needs at least 2 levels")
    tails = np.logspace(-9, math.log10(0.45), grid)
    if _one_sided(model):
        pos = 1.0 - float(model.x_cdf(0.0))
        if pos <= 1e-12:
            return 0.0, 0.0, float("inf")
        his = model.y_ppf(1.0 - tails * pos)
        his = np.where(his > 0, his, np.nan)
        cost = _uniform_grid_cost(model, np.zeros_like(his), np.nan_to_num(his, nan=1.0), n, lam)
        cost = np.where(np.isnan(his), np.inf, cost)
        k = int(np.argmin(cost))
        lo_t, hi_t = math.log(tails[max(k - 1, 0)]), math.log(tails[min(k + 1, grid - 1)])

        def f(log_t: float) -> float:
            hi = float(model.y_ppf(1.0 - math.exp(log_t) * pos))
            return float(_uniform_grid_cost(model, np.zeros(1), np.array([hi]), n, lam)[0]) if hi > 0 else np.inf

        res = optimize.minimize_scalar(f, bounds=(lo_t, hi_t), method="bounded", options={"xatol": 1e-4})
        best_t, best_j = (res.x, res.fun) if res.fun <= cost[k] else (math.log(tails[k]), cost[k])
        return 0.0, float(model.y_ppf(1.0 - math.exp(best_t) * pos)), float(best_j)
    los = model.y_ppf(tails)
    his = model.y_ppf(1.0 - tails)
    glo, ghi = np.meshgrid(los, his, indexing="ij")
    with np.errstate(invalid="ignore"):
        cost = _uniform_grid_cost(model, glo.ravel(), ghi.ravel(), n, lam).reshape(grid, grid)
    cost = np.where(np.isfinite(cost) & (ghi > glo), cost, np.inf)
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)

    t_min, t_max = math.log(1e-12), math.log(0.45)

    def ends(theta: np.ndarray) -> tuple[float, float]:
        t_lo, t_hi = (math.exp(min(max(float(v), t_min), t_max)) for v in theta)
        return float(model.y_ppf(t_lo)), float(model.y_ppf(1.0 - t_hi))

    def g(theta: np.ndarray) -> float:
        lo, hi = ends(theta)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            return np.inf
        value = float(_uniform_grid_cost(model, np.array([lo]), np.array([hi]), n, lam)[0])
        return value if math.isfinite(value) else np.inf

    x0 = np.array([math.log(tails[i]), math.log(tails[j])])
    res = optimize.minimize(g, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-12, "maxiter": 400})
    theta, best_j = (res.x, res.fun) if res.fun <= cost[i, j] else (x0, cost[i, j])
    lo, hi = ends(theta)
    return lo, hi, float(best_j)


#: Level counts tried by :func:`choose_uniform`: every count up to 8, then steps of about 1/8.
LEVEL_COUNTS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 36, 40, 45, 50, 56, 64)


def choose_uniform(
    model: FeatureModel, lam: float, levels: int | None = None, max_levels: int = 16
) -> tuple[int, float, float, float]:
    """Jointly pick the number of levels (unless given) and the clip range minimising ``D + lam·R``.

    Level counts (:data:`LEVEL_COUNTS` up to ``max_levels``) are tried upwards on a coarse range grid,
    stopping once ``J`` has risen for two counts in a row (``J`` is unimodal in the count in every case we
    met); the chosen count's range is then searched on the full grid.  Returns ``(n, lo, hi, J)``.
    """
    if levels is not None:
        return (levels, *optimal_range(model, levels, lam))
    candidates = [n for n in LEVEL_COUNTS if n <= max_levels] or [2]
    best: tuple[int, float] | None = None
    worse = 0
    for n in candidates:
        j = optimal_range(model, n, lam, grid=24)[2]
        if best is None or j < best[1]:
            best, worse = (n, j), 0
        else:
            worse += 1
            if worse == 2:
                break
    assert best is not None
    return (best[0], *optimal_range(model, best[0], lam))


def _envelope(levels: np.ndarray, lengths: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower envelope of the costs ``(y - r_i)^2 + lam·ℓ_i`` over sorted levels.

    Returns ``(kept level indices, thresholds between consecutive kept levels)``.  With equal curvature the
    costs differ by lines, so this is the convex-hull trick: level ``j`` takes over from ``i`` at
    ``y = (r_i + r_j)/2 + lam (ℓ_j - ℓ_i) / (2 (r_j - r_i))``.
    """
    keep: list[int] = []
    cuts: list[float] = []
    for j in range(len(levels)):
        cut = -np.inf
        dominated = False
        while keep:
            i = keep[-1]
            if levels[j] <= levels[i]:  # coincident levels: keep the cheaper one
                if lengths[j] < lengths[i]:
                    keep.pop()
                    if cuts:
                        cuts.pop()
                    continue
                dominated = True
                break
            cut = 0.5 * (levels[i] + levels[j]) + lam * (lengths[j] - lengths[i]) / (2.0 * (levels[j] - levels[i]))
            if cuts and cut <= cuts[-1]:  # level i is never the cheapest
                keep.pop()
                cuts.pop()
                continue
            break
        if dominated:
            continue
        if keep:
            cuts.append(cut)
        keep.append(j)
    return np.array(keep, dtype=np.int64), np.array(cuts, dtype=np.float64)


def design_ecsq(
    y: np.ndarray,
    init_levels: np.ndarray,
    lam: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    fix_zero: bool = False,
    max_iter: int = 100,
    tol: float = 1e-9,
    max_values: int = 500_000,
) -> ScalarQuantizer:
    """Entropy-constrained scalar quantizer (Chou–Lookabaugh–Gray) designed on values ``y``.

    The values are clipped to ``[lo, hi]`` first (the "modified" design on clipped activations); with
    ``fix_zero`` the level nearest 0 is moved to exactly 0 and stays there (the ReLU zero mass).  Levels
    whose cell empties are dropped, so the result may have fewer levels than ``init_levels``.  ``info``
    holds the design's ``mse`` (against the clipped values), ``bits`` (empirical entropy) and ``iterations``.
    """
    ys = np.sort(_subsample(y, max_values))
    if lo is not None or hi is not None:
        ys = np.clip(ys, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    n = ys.size
    if n == 0:
        raise CodecError("design_ecsq needs at least one value")
    c1 = np.concatenate([[0.0], np.cumsum(ys)])
    c2 = np.concatenate([[0.0], np.cumsum(ys * ys)])
    r = np.asarray(init_levels, dtype=np.float64).copy()
    if fix_zero and r.size:
        r[np.argmin(np.abs(r))] = 0.0
    r = np.unique(r)
    lengths = np.full(r.size, math.log2(max(r.size, 1)))
    prev = np.inf
    it = 0
    mse = bits = 0.0
    for it in range(1, max_iter + 1):
        order = np.argsort(r, kind="stable")
        r, lengths = r[order], lengths[order]
        keep, cuts = _envelope(r, lengths, lam)
        r = r[keep]
        starts = np.concatenate([[0], np.searchsorted(ys, cuts, side="left"), [n]])
        counts = np.diff(starts)
        nonempty = counts > 0
        if not nonempty.all():
            r, lengths = r[nonempty], lengths[keep][nonempty]
            continue
        s1 = c1[starts[1:]] - c1[starts[:-1]]
        s2 = c2[starts[1:]] - c2[starts[:-1]]
        new_r = s1 / counts  # centroids
        if fix_zero:
            new_r[r == 0.0] = 0.0
        p = counts / n
        lengths = -np.log2(p)
        sse = s2 - 2.0 * new_r * s1 + new_r * new_r * counts
        mse = float(max(sse.sum(), 0.0) / n)
        bits = float(entropy_bits(p))
        j = mse + lam * bits
        r = new_r
        if prev - j <= tol * max(abs(j), 1e-30):
            break
        prev = j
    order = np.argsort(r, kind="stable")
    r, lengths = r[order], lengths[order]
    keep, cuts = _envelope(r, lengths, lam)
    levels32 = r[keep].astype(np.float32)
    cuts32 = cuts.astype(np.float32)
    # float32 rounding may merge neighbours: drop a level whose cell collapsed
    good = np.concatenate([[True], np.diff(cuts32) > 0]) if cuts32.size else np.ones(0, bool)
    if not good.all():
        levels32 = np.concatenate([levels32[:1], levels32[1:][good]])
        cuts32 = cuts32[good]
    return ScalarQuantizer(cuts32, levels32, info={"mse": mse, "bits": bits, "iterations": it})
