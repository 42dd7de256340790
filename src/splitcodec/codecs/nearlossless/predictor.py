"""Prediction of each value (its mean) and of the size of its residual (its spread), from decoded data.

The mean blends a causal linear predictor (left, above, above-left around the channel's running mean,
plus a reference channel's residual for cross-predicted channels) with the median-gradient predictor,
each weighted by the other's recent errors.  The spread mixes the channel's running mean |residual|
with the neighbours' residuals, weighted by how well each has done so far in the tensor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from splitcodec.codecs.nearlossless.layout import Neighbours

if TYPE_CHECKING:
    from splitcodec.codecs.nearlossless.context import ContextState

__all__ = ["GAUSS_PER_MAD", "MIN_STD", "predict_mean", "predict_spread", "usable_neighbours"]

GAUSS_PER_MAD = 1.2533141373155001  # sigma / mean absolute deviation of a Gaussian
MIN_STD = 0.3  # smallest spread (levels) a value is coded with
_BLEND_PRIOR = 1.0  # error (levels) added to each predictor's recent errors before they weight the blend

Mask3 = tuple[np.ndarray, np.ndarray, np.ndarray]  # (left, above, above-left)


def _sum3(mask: Mask3, values: np.ndarray, nb: Neighbours) -> np.ndarray:
    """Sum of ``values`` at the left, above and above-left neighbours where ``mask`` holds."""
    ml, ma, mal = mask
    return np.where(ml, values[nb.left], 0.0) + np.where(ma, values[nb.above], 0.0) + np.where(mal, values[nb.above_left], 0.0)


def usable_neighbours(st: ContextState, nb: Neighbours, nonzero: Mask3) -> Mask3:
    """Neighbours the predictor uses: under a plain ReLU only the non-zero ones, else all that exist."""
    if st.relu:
        return nonzero
    return nb.has_left, nb.has_above, nb.has_above_left


def _linear_prediction(st: ContextState, nb: Neighbours, mean: np.ndarray, usable: Mask3, nonzero: Mask3) -> np.ndarray:
    """The linear predictor around the channel's running ``mean``, in un-leaked units."""
    wl, wa, wal = usable
    if st.relu:  # zero neighbours only count as such
        n_nonzero = nonzero[0].astype(np.int64) + nonzero[1] + nonzero[2]
        n_zero = (nb.available + nb.has_above_left - n_nonzero).astype(np.float64)
        extra = st.coef[3] * n_zero * (st.zero - mean)
    else:
        extra = 0.0
    ul, ua, ual = st.values[nb.left], st.values[nb.above], st.values[nb.above_left]
    a = st.coef
    mu = mean + a[0] * np.where(wl, ul - mean, 0.0) + a[1] * np.where(wa, ua - mean, 0.0) + a[2] * np.where(wal, ual - mean, 0.0)
    mu = mu + extra
    if len(st.params.cross):  # followers: the reference channel's residual at this position
        ref = st.cross_ref_plane[nb.plane]
        has = ref >= 0
        hw = st.layout.H * st.layout.W
        at_ref = np.where(has, ref * hw + nb.index % hw, nb.index)
        mu = mu + np.where(has, st.cross_beta[nb.plane] * st.residual[at_ref], 0.0)
    return mu


def predict_mean(
    st: ContextState, nb: Neighbours, mean: np.ndarray, usable: Mask3, nonzero: Mask3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blended prediction, linear prediction, median-gradient prediction), un-leaked units."""
    mu_linear = _linear_prediction(st, nb, mean, usable, nonzero)
    hl, ha, hal = nb.has_left, nb.has_above, nb.has_above_left
    ul, ua, ual = st.values[nb.left], st.values[nb.above], st.values[nb.above_left]
    grad = np.clip(ul + ua - ual, np.minimum(ul, ua), np.maximum(ul, ua))
    mu_gradient = np.where(hal, grad, np.where(hl, ul, np.where(ha, ua, mu_linear)))
    err_linear = _sum3(usable, st.abs_err_linear, nb)
    err_gradient = _sum3(usable, st.abs_err_gradient, nb)
    blended = (mu_linear * (err_gradient + _BLEND_PRIOR) + mu_gradient * (err_linear + _BLEND_PRIOR)) / (
        err_linear + err_gradient + 2 * _BLEND_PRIOR
    )
    return blended, mu_linear, mu_gradient


def predict_spread(
    st: ContextState, nb: Neighbours, channel_spread: np.ndarray, usable: Mask3
) -> tuple[np.ndarray, np.ndarray]:
    """(spread of each value as a Gaussian's sigma, the neighbours' mean |residual|), un-leaked units.

    The neighbours are left, above, above-left and the two-away left and above (the usable ones).
    """
    wl, wa, wal = usable
    n_local = wl.astype(np.float64) + wa + wal
    e_local = _sum3(usable, st.abs_residual, nb)
    far_l, far_a = nb.has_left2, nb.has_above2
    if st.relu:
        far_l, far_a = far_l & st.nonzero[nb.left2], far_a & st.nonzero[nb.above2]
    e_local = e_local + (np.where(far_l, st.abs_residual[nb.left2], 0.0) + np.where(far_a, st.abs_residual[nb.above2], 0.0))
    n_local = n_local + (far_l.astype(np.float64) + far_a)
    local = (e_local + channel_spread) / (n_local + 1.0)
    w_channel = st.err_local / (st.err_channel + st.err_local)
    mix = w_channel * channel_spread + (1.0 - w_channel) * local
    std = np.maximum(GAUSS_PER_MAD * mix * (st.calib_observed / st.calib_predicted), MIN_STD)
    return std, local
