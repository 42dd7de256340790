"""Entropy-constrained scalar quantizer design (Chou, Lookabaugh & Gray 1989) on calibration values.

Assign each value to the level minimising ``(y - r_i)^2 + λ ℓ_i``, move the levels to their cells'
centroids (a level at exactly 0 stays there for ReLU), set the code lengths ``ℓ_i = -log2 p_i``, repeat
until ``J = D + λR`` stops falling.
"""

from __future__ import annotations

import math

import numpy as np

from splitcodec.codecs.lightweight.model_fitting import subsample
from splitcodec.codecs.lightweight.quantizer import ScalarQuantizer, entropy_bits
from splitcodec.errors import CodecError

__all__ = ["design_ecsq", "lower_envelope"]


def lower_envelope(levels: np.ndarray, lengths: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
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
    """Entropy-constrained scalar quantizer designed on values ``y``, starting from ``init_levels``.

    The values are clipped to ``[lo, hi]`` first (the "modified" design on clipped activations); with
    ``fix_zero`` the level nearest 0 is moved to exactly 0 and stays there (the ReLU zero mass).  Levels
    whose cell empties are dropped, so the result may have fewer levels than ``init_levels``.  ``info``
    holds the design's ``mse`` (against the clipped values), ``bits`` (empirical entropy) and ``iterations``.
    """
    ys = np.sort(subsample(y, max_values))
    if lo is not None or hi is not None:
        ys = np.clip(ys, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    if ys.size == 0:
        raise CodecError("design_ecsq needs at least one value")
    r = np.asarray(init_levels, dtype=np.float64).copy()
    if fix_zero and r.size:
        r[np.argmin(np.abs(r))] = 0.0
    r = np.unique(r)
    lengths = np.full(r.size, math.log2(max(r.size, 1)))
    r, lengths, info = _iterate(ys, r, lengths, lam, fix_zero, max_iter, tol)
    return _float32_quantizer(r, lengths, lam, info)


def _iterate(
    ys: np.ndarray, r: np.ndarray, lengths: np.ndarray, lam: float, fix_zero: bool, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """The design iterations on sorted values ``ys``: ``(levels, code lengths, info)``."""
    n = ys.size
    c1 = np.concatenate([[0.0], np.cumsum(ys)])
    c2 = np.concatenate([[0.0], np.cumsum(ys * ys)])
    prev = np.inf
    it = 0
    mse = bits = 0.0
    for it in range(1, max_iter + 1):
        order = np.argsort(r, kind="stable")
        r, lengths = r[order], lengths[order]
        keep, cuts = lower_envelope(r, lengths, lam)
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
    return r, lengths, {"mse": mse, "bits": bits, "iterations": it}


def _float32_quantizer(r: np.ndarray, lengths: np.ndarray, lam: float, info: dict[str, float]) -> ScalarQuantizer:
    """The quantizer of the final levels and code lengths, in float32."""
    order = np.argsort(r, kind="stable")
    r, lengths = r[order], lengths[order]
    keep, cuts = lower_envelope(r, lengths, lam)
    levels32 = r[keep].astype(np.float32)
    cuts32 = cuts.astype(np.float32)
    # float32 rounding may merge neighbours: drop a level whose cell collapsed
    good = np.concatenate([[True], np.diff(cuts32) > 0]) if cuts32.size else np.ones(0, bool)
    if not good.all():
        levels32 = np.concatenate([levels32[:1], levels32[1:][good]])
        cuts32 = cuts32[good]
    return ScalarQuantizer(cuts32, levels32, info=info)
