"""Statistics that hold on a few hundred images: paired intervals, rate at a given loss, extrapolation notes.

**Paired accuracy loss.**  The uncut and the coded model see the same images, so the top-1 loss
``top1_ref − top1`` is a difference of *paired* proportions: only the images whose correctness changed
matter.  With ``f`` images right before and wrong after coding, ``g`` the other way round, and ``n``
images, the loss is ``(f − g) / n``.  :func:`paired_loss_interval` gives Newcombe's hybrid score
interval for it (Newcombe 1998, *Statistics in Medicine* 17:2635, method 10: Wilson intervals of both
marginals combined with the paired correlation), which keeps its coverage at 0 or 1 % loss where a
normal interval collapses.  :func:`changed_predictions` counts the images whose top-1 class changed.

**Rate at a loss.**  :func:`rate_at_loss` reads "bpe at X % loss" off the monotone hull of a codec's
curve (the points where the loss falls as the rate rises), interpolating linearly in (log rate, loss),
and gives its interval from the hulls of the loss intervals' upper and lower ends.

>>> lo, hi = paired_loss_interval(both=90, ref_only=6, coded_only=2, neither=2)
>>> round(100 * (6 - 2) / 100, 1), round(lo, 2), round(hi, 2)
(4.0, -1.9, 10.64)
>>> r = rate_at_loss([1.0, 2.0, 4.0], [3.0, 1.0, 0.0], 2.0)
>>> round(r.rate, 4), r.note
(1.4142, '')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = [
    "Z95",
    "wilson",
    "paired_loss_interval",
    "paired_counts",
    "changed_predictions",
    "paired_fields",
    "RateAtLoss",
    "loss_hull",
    "rate_at_loss",
    "curve_rate_at_loss",
]

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (fractions, not percent)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_loss_interval(both: int, ref_only: int, coded_only: int, neither: int, z: float = Z95) -> tuple[float, float]:
    """95 % interval (percentage points) of the paired loss ``(ref_only − coded_only) / n × 100``.

    ``both``: images right with and without coding; ``ref_only``: right only uncut; ``coded_only``:
    right only after coding; ``neither``: wrong both times.  Newcombe's hybrid score method.
    """
    e, f, g, h = both, ref_only, coded_only, neither
    n = e + f + g + h
    if n == 0:
        return float("nan"), float("nan")
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = wilson(e + f, n, z)
    l2, u2 = wilson(e + g, n, z)
    den = (e + f) * (g + h) * (e + g) * (f + h)
    phi = (e * h - f * g) / math.sqrt(den) if den > 0 else 0.0
    d = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return 100.0 * max(-1.0, d - delta), 100.0 * min(1.0, d + eps)


def paired_counts(ref_correct: Any, coded_correct: Any) -> tuple[int, int, int, int]:
    """(both, ref_only, coded_only, neither) from two boolean per-image correctness vectors."""
    a = np.asarray(ref_correct, dtype=bool)
    b = np.asarray(coded_correct, dtype=bool)
    return int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum())


def changed_predictions(ref_pred: Any, coded_pred: Any) -> int:
    """Number of images whose predicted class differs between the uncut and the coded model."""
    return int((np.asarray(ref_pred) != np.asarray(coded_pred)).sum())


def paired_fields(ref_out: Any, out: Any, labels: Any | None) -> dict[str, Any]:
    """The :class:`~splitcodec.eval.Record` interval fields for classifier logits ``out`` vs ``ref_out``.

    Returns ``changed`` (count of changed top-1 predictions) and, with labels, ``loss_low`` /
    ``loss_high`` (95 % paired interval of ``top1_loss``, percentage points).
    """
    ref_pred = np.asarray(ref_out.argmax(1))
    pred = np.asarray(out.argmax(1))
    fields: dict[str, Any] = {"changed": changed_predictions(ref_pred, pred)}
    if labels is not None:
        y = np.asarray(labels)
        lo, hi = paired_loss_interval(*paired_counts(ref_pred == y, pred == y))
        fields.update(loss_low=lo, loss_high=hi)
    return fields


@dataclass(frozen=True)
class RateAtLoss:
    """The rate at which a curve first reaches a loss of at most ``loss`` (None where it never does).

    ``low`` / ``high``: the same read off the hulls of the loss interval's lower / upper ends (None where
    that hull never reaches ``loss``).  ``note`` says when the value is a bound, not an interpolation.
    """

    loss: float
    rate: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def loss_hull(rate: Sequence[float], loss: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points where the loss strictly falls as the rate rises (sorted by rate); NaNs dropped."""
    r = np.asarray(rate, dtype=np.float64)
    v = np.asarray(loss, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(v) & (r > 0)
    r, v = r[keep], v[keep]
    out_r: list[float] = []
    out_v: list[float] = []
    for ri, vi in zip(*(a[np.lexsort((v, r))] for a in (r, v))):
        if not out_v or vi < out_v[-1]:
            if out_r and ri == out_r[-1]:
                continue
            out_r.append(float(ri))
            out_v.append(float(vi))
    return np.array(out_r), np.array(out_v)


def _crossing(rate: Sequence[float], loss: Sequence[float], x: float) -> tuple[float | None, str]:
    r, v = loss_hull(rate, loss)
    if not len(r):
        return None, "no points"
    if v[0] <= x:
        return float(r[0]), f"already at the lowest rate ({r[0]:.3g}): an upper bound"
    below = np.nonzero(v <= x)[0]
    if not len(below):
        return None, f"never reached (best loss {v[-1]:.2f} pp)"
    j = int(below[0])
    t = (v[j - 1] - x) / (v[j - 1] - v[j])
    return float(math.exp(math.log(r[j - 1]) + t * (math.log(r[j]) - math.log(r[j - 1])))), ""


def rate_at_loss(
    rate: Sequence[float],
    loss: Sequence[float],
    x: float,
    loss_low: Sequence[float] | None = None,
    loss_high: Sequence[float] | None = None,
) -> RateAtLoss:
    """Lowest rate at which the hull of (rate, loss) reaches ``loss <= x``, with its interval.

    The interval's lower end comes from the optimistic curve ``loss_low``, its upper end from the
    pessimistic ``loss_high`` (each reduced to its own hull).
    """
    value, note = _crossing(rate, loss, x)
    low = _crossing(rate, loss_low, x)[0] if loss_low is not None else None
    high = _crossing(rate, loss_high, x)[0] if loss_high is not None else None
    return RateAtLoss(loss=x, rate=value, low=low, high=high, note=note)


def curve_rate_at_loss(records: Sequence[Any], x: float, rate_attr: str = "bpe") -> RateAtLoss:
    """:func:`rate_at_loss` over the records of one codec curve (their ``top1_loss`` and interval)."""
    recs = [r for r in records if r.top1_loss is not None]
    rate = [getattr(r, rate_attr) for r in recs]
    loss = [r.top1_loss for r in recs]
    has_ci = recs and all(getattr(r, "loss_low", None) is not None for r in recs)
    lo = [r.loss_low for r in recs] if has_ci else None
    hi = [r.loss_high for r in recs] if has_ci else None
    return rate_at_loss(rate, loss, x, lo, hi)
