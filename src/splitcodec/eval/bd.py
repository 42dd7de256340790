"""Bjøntegaard deltas between two rate–accuracy curves (PCHIP fits over the overlapping range).

``bd_rate(a, b)``: average rate difference of curve *b* relative to curve *a* at equal accuracy, in %
(negative: *b* needs fewer bits).  ``bd_accuracy(a, b)``: average accuracy difference *b − a* at equal
rate (same units as the accuracies given).  Each curve is reduced to its monotone upper envelope first
(a point with more bits and no more accuracy than another is dominated and dropped).

>>> a = ([1.0, 2.0, 4.0], [80.0, 85.0, 88.0])
>>> b = ([0.5, 1.0, 2.0], [80.0, 85.0, 88.0])   # same accuracy at half the rate
>>> round(bd_rate(*a, *b), 6)
-50.0
>>> round(bd_accuracy(*a, *a), 6)
0.0
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from splitcodec.errors import CurveError, DisjointCurvesError, ShortCurveError

__all__ = ["bd_rate", "bd_accuracy", "envelope"]


def envelope(rate: Sequence[float], acc: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points of the curve where accuracy strictly increases with rate (sorted by rate)."""
    r = np.asarray(rate, dtype=np.float64)
    a = np.asarray(acc, dtype=np.float64)
    if r.shape != a.shape or r.ndim != 1:
        raise CurveError("rate and accuracy must be 1-D sequences of the same length")
    keep = np.isfinite(r) & np.isfinite(a) & (r > 0)
    r, a = r[keep], a[keep]
    order = np.lexsort((-a, r))
    out_r, out_a = [], []
    for ri, ai in zip(r[order], a[order]):
        if not out_a or ai > out_a[-1]:
            if out_r and ri == out_r[-1]:
                continue
            out_r.append(ri)
            out_a.append(ai)
    return np.array(out_r), np.array(out_a)


def _check(curve: tuple[np.ndarray, np.ndarray], name: str) -> None:
    if len(curve[0]) < 2:
        raise ShortCurveError(f"curve {name} needs at least 2 points with increasing accuracy for a BD figure")


def bd_rate(rate_a: Sequence[float], acc_a: Sequence[float], rate_b: Sequence[float], acc_b: Sequence[float]) -> float:
    """Average % rate change of b vs a at equal accuracy."""
    ra, aa = envelope(rate_a, acc_a)
    rb, ab = envelope(rate_b, acc_b)
    _check((ra, aa), "a")
    _check((rb, ab), "b")
    lo, hi = max(aa.min(), ab.min()), min(aa.max(), ab.max())
    if hi <= lo:
        raise DisjointCurvesError(f"the curves' accuracy ranges do not overlap ({aa.min():.3g}–{aa.max():.3g} vs {ab.min():.3g}–{ab.max():.3g})")
    fa = PchipInterpolator(aa, np.log(ra))
    fb = PchipInterpolator(ab, np.log(rb))
    avg = (fb.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo)
    return float((np.exp(avg) - 1.0) * 100.0)


def bd_accuracy(rate_a: Sequence[float], acc_a: Sequence[float], rate_b: Sequence[float], acc_b: Sequence[float]) -> float:
    """Average accuracy difference b − a at equal rate."""
    ra, aa = envelope(rate_a, acc_a)
    rb, ab = envelope(rate_b, acc_b)
    _check((ra, aa), "a")
    _check((rb, ab), "b")
    la, lb = np.log(ra), np.log(rb)
    lo, hi = max(la.min(), lb.min()), min(la.max(), lb.max())
    if hi <= lo:
        raise DisjointCurvesError(f"the curves' rate ranges do not overlap ({ra.min():.3g}–{ra.max():.3g} vs {rb.min():.3g}–{rb.max():.3g})")
    fa = PchipInterpolator(la, aa)
    fb = PchipInterpolator(lb, ab)
    return float((fb.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo))
