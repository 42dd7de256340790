"""Standardised densities of the pre-activation model, location 0 and scale 1.

Families: ``gaussian`` φ(z), ``laplace`` ½e^{-|z|}, and ``gengauss`` β / (2Γ(1/β)) exp(-|z|^β) (shape β).
Each gives its CDF, quantile, log-density and the partial moments ∫ z^k g(z) dz (k = 0, 1, 2) over a cell,
the closed forms behind the exact cell statistics of :mod:`.error_model`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from splitcodec._lazy import lazy_module

special = lazy_module("scipy.special")  # fitting only: the encoder runs without scipy

__all__ = ["partial_moments", "cdf", "ppf", "logpdf", "logcdf"]

_SQRT2PI = math.sqrt(2.0 * math.pi)
Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


def _zphi(z: np.ndarray) -> np.ndarray:
    """z·φ(z), 0 at ±inf."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = z * np.exp(-0.5 * z * z) / _SQRT2PI
    return np.where(np.isinf(z), 0.0, out)


def _gauss_moments(za: np.ndarray, zb: np.ndarray) -> Moments:
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


def _laplace_upper(u: np.ndarray) -> Moments:
    """∫_u^inf z^k ½e^{-z} dz for k = 0, 1, 2 and u >= 0."""
    finite = np.isfinite(u)
    uu = np.where(finite, u, 0.0)
    e = np.where(finite, 0.5 * np.exp(-uu), 0.0)
    return e, (uu + 1.0) * e, (uu * uu + 2.0 * uu + 2.0) * e


def _gengauss_upper(u: np.ndarray, beta: float) -> Moments:
    """∫_u^inf z^k g(z) dz for k = 0, 1, 2 and u >= 0, g(z) = β / (2Γ(1/β)) exp(-|z|^β)."""
    finite = np.isfinite(u)
    t = np.where(finite, u, 0.0) ** beta
    out = []
    for k in range(3):
        a = (k + 1) / beta
        val = math.exp(special.gammaln(a) - special.gammaln(1.0 / beta)) * 0.5 * special.gammaincc(a, t)
        out.append(np.where(finite, val, 0.0))
    return out[0], out[1], out[2]


def _symmetric_moments(upper: Callable[[np.ndarray], Moments], za: np.ndarray, zb: np.ndarray) -> Moments:
    """∫ z^k g(z) dz over [za, zb) for a symmetric density given by its upper partial moments."""
    a0, a1, a2 = upper(np.maximum(za, 0.0))
    b0, b1, b2 = upper(np.maximum(zb, 0.0))
    # negative part [min(za,0), min(zb,0)) mirrored to (−min(zb,0), −min(za,0)]
    c0, c1, c2 = upper(-np.minimum(zb, 0.0))
    d0, d1, d2 = upper(-np.minimum(za, 0.0))
    return (a0 - b0) + (c0 - d0), (a1 - b1) - (c1 - d1), (a2 - b2) + (c2 - d2)


def partial_moments(family: str, beta: float, za: np.ndarray, zb: np.ndarray) -> Moments:
    """∫ z^k g(z) dz over [za, zb) for k = 0, 1, 2 (za <= zb), elementwise."""
    if family == "gaussian":
        return _gauss_moments(za, zb)
    if family == "laplace":
        return _symmetric_moments(_laplace_upper, za, zb)
    return _symmetric_moments(lambda u: _gengauss_upper(u, beta), za, zb)


def cdf(family: str, beta: float, z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if family == "gaussian":
        return special.ndtr(z)
    if family == "laplace":
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))
    half_tail = 0.5 * special.gammaincc(1.0 / beta, np.abs(z) ** beta)
    return np.where(z < 0, half_tail, 1.0 - half_tail)


def ppf(family: str, beta: float, p: np.ndarray) -> np.ndarray:
    """Quantile function (inverse CDF)."""
    p = np.asarray(p, dtype=np.float64)
    if family == "gaussian":
        return special.ndtri(p)
    if family == "laplace":
        return -np.sign(p - 0.5) * np.log1p(-2.0 * np.abs(p - 0.5))
    tail = 2.0 * np.minimum(p, 1.0 - p)
    mag = special.gammainccinv(1.0 / beta, np.clip(tail, 0.0, 1.0)) ** (1.0 / beta)
    return np.sign(p - 0.5) * mag


def logpdf(family: str, beta: float, z: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return -0.5 * z * z - math.log(_SQRT2PI)
    if family == "laplace":
        return -np.abs(z) - math.log(2.0)
    return math.log(beta / 2.0) - float(special.gammaln(1.0 / beta)) - np.abs(z) ** beta


def logcdf(family: str, beta: float, z: float) -> float:
    if family == "gaussian":
        return float(special.log_ndtr(z))
    if family == "laplace":
        return math.log(0.5) + z if z < 0 else math.log1p(-0.5 * math.exp(-z))
    value = float(cdf(family, beta, np.array(z)))
    return math.log(value) if value > 0 else -1e300
