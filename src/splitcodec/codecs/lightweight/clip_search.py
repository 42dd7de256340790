"""The clip range and number of levels of a uniform quantizer that minimise ``J = D + λR`` under the model.

``D`` and ``R`` (index entropy, bits/element) are exact (:func:`.quantizer.model_cost`); ``λ = 0`` gives the
MSE-optimal clip.  The range search runs over tail probabilities (a log grid, then a local refinement), so
it does not depend on the features' scale.
"""

from __future__ import annotations

import math

import numpy as np

from splitcodec._lazy import lazy_module
from splitcodec.codecs.lightweight.error_model import FeatureModel
from splitcodec.codecs.lightweight.quantizer import entropy_bits
from splitcodec.errors import CodecError

optimize = lazy_module("scipy.optimize")  # fitting only: the encoder runs without scipy

__all__ = ["LEVEL_COUNTS", "optimal_range", "choose_uniform"]

#: Level counts tried by :func:`choose_uniform`: every count up to 8, then steps of about 1/8.
LEVEL_COUNTS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 36, 40, 45, 50, 56, 64)


def _uniform_grid_cost(model: FeatureModel, lo: np.ndarray, hi: np.ndarray, n: int, lam: float) -> np.ndarray:
    """``D + λR`` of N-level uniform quantizers on ``[lo_k, hi_k]`` (vectors), under the model."""
    lo = np.asarray(lo, dtype=np.float64)[:, None]
    hi = np.asarray(hi, dtype=np.float64)[:, None]
    levels = lo + (hi - lo) * np.linspace(0.0, 1.0, n)[None, :]
    thresholds = 0.5 * (levels[:, 1:] + levels[:, :-1])
    p, d = model.cell_stats(thresholds, levels)
    return d.sum(-1) + lam * entropy_bits(p)


def optimal_range(model: FeatureModel, n: int, lam: float = 0.0, *, grid: int = 48) -> tuple[float, float, float]:
    """Clip range ``(lo, hi)`` of the ``n``-level uniform quantizer minimising ``D + lam·R`` under the model.

    ReLU/ReLU6 keep ``lo = 0`` (a level exactly at the zero mass); leaky-ReLU and ``other`` search both
    ends.  Returns ``(lo, hi, J)``.
    """
    if n < 2:
        raise CodecError("optimal_range needs at least 2 levels")
    tails = np.logspace(-9, math.log10(0.45), grid)
    if model.activation in ("relu", "relu6"):
        return _upper_end(model, n, lam, tails)
    return _both_ends(model, n, lam, tails)


def _upper_end(model: FeatureModel, n: int, lam: float, tails: np.ndarray) -> tuple[float, float, float]:
    """:func:`optimal_range` with ``lo = 0``: a grid over the upper tail mass, then a bounded 1-D search."""
    grid = tails.size
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


def _both_ends(model: FeatureModel, n: int, lam: float, tails: np.ndarray) -> tuple[float, float, float]:
    """:func:`optimal_range` over both tail masses: a 2-D grid, then Nelder–Mead in log tail mass."""
    grid = tails.size
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
