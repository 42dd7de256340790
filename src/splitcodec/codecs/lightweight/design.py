"""From calibration features to a :class:`~.state.FittedState`: activation, clip, levels, ECSQ, tables.

One quantizer per tensor (its tables and channel levels refined per channel), or with ``per_channel``
one per channel.  ``lam_abs`` is λ in absolute units: the codec's ``lam`` times the features' mean square.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from splitcodec.codecs.lightweight.checkerboard import CONTEXTS, anchors, neighbour_counts
from splitcodec.codecs.lightweight.clip_search import choose_uniform, optimal_range
from splitcodec.codecs.lightweight.ecsq import design_ecsq
from splitcodec.codecs.lightweight.error_model import ACTIVATIONS, RELU6_CAP, FeatureModel
from splitcodec.codecs.lightweight.model_fitting import fit_feature_model
from splitcodec.codecs.lightweight.quantizer import ScalarQuantizer, model_cost, uniform_quantizer
from splitcodec.codecs.lightweight.state import Design, FittedState
from splitcodec.codecs.lightweight.tables import (
    TABLE_GROUPS,
    TABLE_PRIOR,
    channel_centroids,
    group_channels,
    index_histogram,
    probability_table,
)

if TYPE_CHECKING:
    from splitcodec.codecs.lightweight.codec import Lightweight
    from splitcodec.split import Activation

__all__ = ["infer_activation", "fit_shared", "fit_per_channel"]


def infer_activation(arr: np.ndarray, activation: Activation | None) -> tuple[str, float]:
    """``(kind, slope)`` to model ``arr`` with: the given activation when the values agree, else a guess."""
    act = None if activation is None else activation.kind
    slope = float((activation and activation.negative_slope) or 0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if act is None:
        if lo >= 0:
            act = "relu6" if hi <= RELU6_CAP and float((arr == RELU6_CAP).mean()) > 1e-3 else "relu"
        else:
            act = "other"
    if act not in ACTIVATIONS:
        act = "other"
    if act == "leaky_relu" and not 0 < slope < 1:
        act = "other"
    if (act in ("relu", "relu6") and lo < 0) or (act == "relu6" and hi > RELU6_CAP):
        warnings.warn(
            f"lightweight.fit: features said to follow {act} lie in [{lo:.3g}, {hi:.3g}]; modelling them as 'other'",
            stacklevel=3,
        )
        act = "other"
    return act, slope if act == "leaky_relu" else 0.0


def design_quantizer(
    y: np.ndarray, activation: str, slope: float, lam_abs: float, n: int | None, opts: Lightweight, grid: int = 48
) -> Design:
    """Fit the model to ``y``, choose the clip (and ``n`` when None), then the uniform or ECSQ quantizer."""
    one_sided = activation in ("relu", "relu6")
    model, _ = fit_feature_model(y, activation, slope, opts.family)
    y_lo, y_hi = float(y.min()), float(y.max())
    if model is None or not y_hi > y_lo:
        level = 0.0 if one_sided else float(np.float32(y.mean()))
        return Design(ScalarQuantizer(np.zeros(0), np.array([level])), model, (level, level))
    if opts.clip == "model":
        if n is None:
            n, lo, hi, _ = choose_uniform(model, lam_abs, None, opts.max_levels)
        else:
            lo, hi, _ = optimal_range(model, n, lam_abs, grid=grid)
    else:
        lo, hi = _data_clip(y, opts)
        if one_sided:
            lo = 0.0
        if n is None:  # levels minimising D + λR on this range, under the model
            n = min(range(2, opts.max_levels + 1), key=lambda k: _cost(model, uniform_quantizer(lo, hi, k), lam_abs))
    q = uniform_quantizer(lo, hi, n)
    if opts.quantizer == "ecsq" and q.n > 1:
        q = design_ecsq(y, q.levels, lam_abs, lo=lo, hi=hi, fix_zero=one_sided)
    return Design(q, model, (float(lo), float(hi)))


def _data_clip(y: np.ndarray, opts: Lightweight) -> tuple[float, float]:
    """The ``minmax`` or ``percentile`` clip range of the values (min–max when the percentiles meet)."""
    y_lo, y_hi = float(y.min()), float(y.max())
    if opts.clip == "minmax":
        return y_lo, y_hi
    lo, hi = float(np.percentile(y, 100.0 - opts.percentile)), float(np.percentile(y, opts.percentile))
    return (lo, hi) if hi > lo else (y_lo, y_hi)


def _cost(model: FeatureModel, q: ScalarQuantizer, lam: float) -> float:
    d, r = model_cost(model, q)
    return d + lam * r


def fit_per_channel(arr: np.ndarray, activation: str, slope: float, lam_abs: float, opts: Lightweight) -> FittedState:
    """A quantizer and a table per channel; the number of levels is chosen once for the tensor."""
    planes = [np.ascontiguousarray(arr[:, c]).ravel() for c in range(arr.shape[1])]
    n = opts.levels
    if n is None and opts.clip == "model":
        tensor_model, _ = fit_feature_model(arr, activation, slope, opts.family)
        if tensor_model is not None:
            n = choose_uniform(tensor_model, lam_abs, None, opts.max_levels)[0]
    designs = [design_quantizer(y, activation, slope, lam_abs, n, opts, grid=24) for y in planes]
    # each channel's own histogram, with half a count per level so that no level is impossible
    tables = [
        probability_table(np.bincount(d.quantizer.quantize(y), minlength=d.quantizer.n) + 0.5)
        for d, y in zip(designs, planes)
    ]
    return FittedState(activation, slope, arr.shape[1], designs, tables, table_of=np.arange(arr.shape[1]))


def fit_shared(arr: np.ndarray, activation: str, slope: float, lam_abs: float, opts: Lightweight) -> FittedState:
    """One quantizer for the tensor, with the channel tables, channel levels and context model asked for."""
    design = design_quantizer(arr.ravel(), activation, slope, lam_abs, opts.levels, opts)
    q = design.quantizer
    idx = q.quantize(arr)
    hist = np.bincount(idx.ravel(), minlength=q.n).astype(np.float64)
    prior = TABLE_PRIOR * hist / hist.sum()  # what a table knows before its own observations
    has_channels = arr.ndim >= 3
    fitted = FittedState(activation, slope, None, [design], [], rest=int(np.argmax(hist)))
    plain = idx
    if opts.context and arr.ndim == 4 and q.n > 1:
        anchor = anchors(arr.shape)
        plain = np.where(anchor, idx, -1)  # non-anchors are coded under their context
        counts = neighbour_counts(idx, anchor, fitted.rest)[..., ~anchor]
        others = idx[..., ~anchor]
        fitted.ctx_tables = [
            probability_table(np.bincount(others[counts == k], minlength=q.n) + prior) for k in range(CONTEXTS)
        ]
    if opts.channel_tables and has_channels and q.n > 1 and arr.shape[1] > 1:
        hists = np.stack([index_histogram(plain[:, c], q.n) for c in range(arr.shape[1])])
        fitted.table_of = group_channels(hists, min(TABLE_GROUPS, arr.shape[1]))
        groups = int(fitted.table_of.max()) + 1
        fitted.tables = [probability_table(hists[fitted.table_of == g].sum(0) + prior) for g in range(groups)]
    else:
        fitted.tables = [probability_table(index_histogram(plain, q.n) + prior)]
    if opts.channel_levels and has_channels:
        fitted.channel_levels = channel_centroids(arr, idx, q.levels)
    if fitted.table_of is not None or fitted.channel_levels is not None:
        fitted.channels = arr.shape[1]
    return fitted
