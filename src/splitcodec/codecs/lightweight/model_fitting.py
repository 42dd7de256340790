"""Fitting the error model to post-activation features, and measuring how well it fits.

ReLU/ReLU6 features get a censored maximum-likelihood fit (a value at 0 or 6 only says "X was beyond");
leaky-ReLU features are mapped back (``X = Y / slope`` below 0) and fitted as complete data, as are
``other`` features.  Gaussian and Laplace have closed-form complete-data estimates; the generalised
Gaussian's shape is always fitted numerically.
"""

from __future__ import annotations

import math

import numpy as np

from splitcodec._lazy import lazy_module
from splitcodec.codecs.lightweight import densities
from splitcodec.codecs.lightweight.error_model import ACTIVATIONS, FAMILIES, RELU6_CAP, FeatureModel
from splitcodec.errors import CodecError

optimize = lazy_module("scipy.optimize")  # fitting only: the encoder runs without scipy

__all__ = ["fit_feature_model", "fit_report", "subsample"]


def subsample(y: np.ndarray, max_values: int) -> np.ndarray:
    """``y`` flattened to float64, thinned to ``max_values`` evenly spaced values when longer."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size > max_values:
        y = y[np.linspace(0, y.size - 1, max_values).astype(np.int64)]
    return y


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
        total = float(densities.logpdf(family, beta, (x - mu) / s).sum()) - len(x) * math.log(s)
        if n_lo:
            total += n_lo * densities.logcdf(family, beta, (lo - mu) / s)
        if n_hi:
            total += n_hi * densities.logcdf(family, beta, -(hi - mu) / s)  # symmetric densities: sf(z) = cdf(-z)
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


def _pre_activation(y: np.ndarray, activation: str, slope: float) -> tuple[np.ndarray, int, int]:
    """The observed pre-activation values, and how many are censored at ``X <= 0`` and ``X >= 6``."""
    n_lo = n_hi = 0
    if activation in ("relu", "relu6"):
        observed = y > 0
        n_lo = int((~observed).sum())
        if activation == "relu6":
            n_hi = int((y >= RELU6_CAP).sum())
            observed &= y < RELU6_CAP
        return y[observed], n_lo, n_hi
    if activation == "leaky_relu":
        return np.where(y < 0, y / slope, y), 0, 0
    return y, 0, 0


def fit_feature_model(
    y: np.ndarray,
    activation: str,
    slope: float = 0.0,
    family: str = "auto",
    *,
    max_values: int = 200_000,
) -> tuple[FeatureModel | None, dict[str, float]]:
    """Fit the pre-activation model from post-activation values ``y``.

    Returns ``(model, log-likelihood per family)``; ``family="auto"`` keeps the most likely one.  The model
    is None when the values carry no spread to fit (e.g. a channel that is always 0).
    """
    if activation not in ACTIVATIONS:
        raise CodecError(f"unknown activation {activation!r}; use one of {ACTIVATIONS}")
    families = FAMILIES if family == "auto" else (family,)
    if any(f not in FAMILIES for f in families):
        raise CodecError(f"unknown model family {family!r}; use 'auto' or one of {FAMILIES}")
    y = subsample(y, max_values)
    lo, hi = 0.0, RELU6_CAP
    x, n_lo, n_hi = _pre_activation(y, activation, slope)
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
            ll = float(densities.logpdf(fam, b0, (x - mu0) / s0).mean()) - math.log(s0)
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
    y = np.sort(subsample(y, max_values))
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

