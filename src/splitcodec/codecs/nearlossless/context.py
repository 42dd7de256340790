"""The adaptive model shared by encoder and decoder: decoded data, running statistics, event contexts.

Both sides build the same :class:`ContextState` from the payload's parameters and update it with the
same levels after every wavefront step, so each step's :class:`StepModel` (contexts, prediction,
spread) is computed identically before any of its elements is coded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitcodec.codecs.nearlossless.events import EventCounts
from splitcodec.codecs.nearlossless.layout import Layout, Neighbours, neighbours
from splitcodec.codecs.nearlossless.params import BETA_SCALE, COEF_SCALE, MODE_SPARSE, ModelParams
from splitcodec.codecs.nearlossless.predictor import (
    GAUSS_PER_MAD,
    MIN_STD,
    predict_mean,
    predict_spread,
    usable_neighbours,
)

__all__ = ["ContextState", "StepModel"]

# prior weights (in samples) of the global statistics against a channel's own running statistics
_K_MEAN, _K_SPREAD, _K_RATE = 4.0, 12.0, 4.0
_K_CALIB = 16.0  # prior weight (in values) of the spread calibration
# context buckets (the prior probabilities are literals so that every platform starts from the same counts)
_RATE_EDGES = np.array([0.03, 0.08, 0.15, 0.25, 0.4, 0.6, 0.75, 0.87, 0.95])  # channel non-zero rate
_RATE_PRIOR = np.array([0.015, 0.055, 0.115, 0.2, 0.325, 0.5, 0.675, 0.81, 0.91, 0.975])
_N_NB = 7  # neighbourhood states: (available neighbours, non-zero ones) in {(0,0),(1,0),(1,1),(3,0..3)}
_ACT_EDGES = np.array([1, 3, 7, 15, 31, 63])  # local activity (8-bit units): 0 | 1-2 | 3-6 | ... | 63+
_HIT_PRIOR = np.array([0.6, 0.3, 0.15, 0.08, 0.04, 0.02, 0.01])  # P(value == flat prediction) per activity
_STD_EDGES = np.array([1.0, 3.0, 10.0])  # spread buckets (8-bit units) of the hit contexts
_CROSS_EDGES = np.array([0.2, 0.4, 0.6, 0.8])  # fraction of reference channels
_N_CROSS = len(_CROSS_EDGES) + 2  # bucket 0: not known yet (while coding the reference channels)
_SIDE_EDGES = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])  # (prediction - zero) / spread
_SIDE_PRIOR = np.array([0.99, 0.93, 0.77, 0.6, 0.4, 0.23, 0.07, 0.01])  # P(below zero) per bucket


@dataclass
class StepModel:
    """Model of every element of one wavefront step (computed before any of them is coded)."""

    index: np.ndarray  # flat index of each element
    plane: np.ndarray  # its plane
    nonzero_ctx: np.ndarray  # context of "value != zero level" (sparse mode)
    flat: np.ndarray  # flat prediction (levels): median of left, above, left + above - above-left
    hit_ctx: np.ndarray  # context of "value == flat"
    side_ctx: np.ndarray  # context of "value < zero level" (given: not zero, not flat)
    mean: np.ndarray  # prediction, un-leaked units
    spread: np.ndarray  # spread (a Gaussian's sigma), un-leaked units
    channel_spread: np.ndarray  # the channel's running mean |residual|
    local_spread: np.ndarray  # the neighbours' mean |residual|
    mean_linear: np.ndarray  # the linear predictor alone
    mean_gradient: np.ndarray  # the median-gradient predictor alone


def _cross_bucket(fraction: np.ndarray, nb: Neighbours) -> np.ndarray:
    """Context bucket: 0 for reference channels, else 1 + bucket of the fraction at the position."""
    return np.where(nb.follower, 1 + np.searchsorted(_CROSS_EDGES, fraction[nb.cross_pos], side="right"), 0)


class ContextState:
    """Decoded values, running per-channel statistics and binary context counts of one tensor."""

    def __init__(self, lay: Layout, p: ModelParams, top: int, zero: int) -> None:
        self.layout, self.params, self.top, self.zero = lay, p, top, zero
        self.sparse = p.mode == MODE_SPARSE  # significance flags are coded
        self.relu = self.sparse and p.slope256 == 0  # plain ReLU: nothing below the zero level
        self.slope = p.slope256 / 256.0 if p.slope256 else 1.0  # scale of the values below zero
        n, P = lay.size, lay.P
        # per element (flat index)
        self.levels = np.zeros(n, dtype=np.int64)  # decoded levels
        self.values = np.zeros(n, dtype=np.float64)  # decoded values, un-leaked
        self.abs_residual = np.zeros(n, dtype=np.float64)  # |value - prediction| of decoded non-zero values
        self.residual = np.zeros(n, dtype=np.float64)  # value - prediction of decoded non-zero values (0 elsewhere)
        self.abs_err_linear = np.zeros(n, dtype=np.float64)  # |value - linear prediction|
        self.abs_err_gradient = np.zeros(n, dtype=np.float64)  # |value - median-gradient prediction|
        self.nonzero = np.zeros(n, dtype=bool)  # decoded level is not the zero level (dense mode: every decoded level)
        self.hit = np.zeros(n, dtype=bool)  # decoded level equals its flat prediction
        # per plane
        self.cross_ref_plane, self.cross_beta = self._cross_prediction(lay, p)
        self.nonzero_count = np.zeros(P)  # decoded non-zero values
        self.nonzero_sum = np.zeros(P)  # sum of the decoded non-zero values
        self.nonzero_abs_residual = np.zeros(P)  # sum of their |residual|
        self.decoded_count = np.zeros(P)  # decoded values, zero or not
        # global parameters from the payload
        self.global_mean = p.mean16 / 16.0
        self.global_spread = max(p.spread16 / 16.0, MIN_STD)
        self.global_rate = min(max(p.rate256, 1), 255) / 256.0
        self.coef = np.array(p.coef, dtype=np.float64) / COEF_SCALE  # linear predictor coefficients
        self.activity_shift = max(0, top.bit_length() - 8)  # local activity in 8-bit units
        # binary event counts per context
        self.nonzero_counts = EventCounts.from_prior(np.repeat(_RATE_PRIOR, _N_NB * _N_CROSS))
        self.hit_counts = EventCounts.from_prior(np.repeat(np.tile(_HIT_PRIOR, 8), _N_CROSS))
        self.side_counts = EventCounts.from_prior(_SIDE_PRIOR.copy())
        # per position of a sample: fraction of the reference channels that hit / are non-zero there
        self.ref_hit_fraction = np.zeros((P // lay.G) * lay.H * lay.W if lay.G else 0)
        self.ref_nonzero_fraction = np.zeros_like(self.ref_hit_fraction)
        # self-calibration of the spread: observed vs predicted |residual| of the distribution-coded values
        self.calib_observed = self.calib_predicted = _K_CALIB * self.global_spread
        # how well each spread estimate (channel, neighbours) has predicted |residual|: summed error
        self.err_channel = self.err_local = _K_CALIB * self.global_spread

    @staticmethod
    def _cross_prediction(lay: Layout, p: ModelParams) -> tuple[np.ndarray, np.ndarray]:
        """Reference plane (-1: none) and coefficient of every plane's cross-channel prediction."""
        ref_plane = np.full(lay.P, -1, dtype=np.int64)
        beta = np.zeros(lay.P)
        samples = lay.P // lay.G if lay.G else 0
        for c, r, b in p.cross:
            planes = np.arange(samples) * lay.G
            ref_plane[planes + c] = planes + r
            beta[planes + c] = b / BETA_SCALE
        return ref_plane, beta

    def unleak(self, q: np.ndarray) -> np.ndarray:
        """Levels as values in un-leaked units: below zero, divided by the leaky slope."""
        q = q.astype(np.float64)
        return np.where(q < self.zero, self.zero + (q - self.zero) / self.slope, q)

    def update_cross(self, t: int) -> None:
        """Summarise the reference channels completed by step ``t`` into the cross-channel maps."""
        pos, refs = self.layout.done_pos[t], self.layout.done_refs[t]
        if len(pos):
            self.ref_hit_fraction[pos] = self.hit[refs].mean(axis=1)
            self.ref_nonzero_fraction[pos] = self.nonzero[refs].mean(axis=1)

    def _flat_prediction(self, nb: Neighbours, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat prediction in levels, local activity bucket) of each element."""
        hl, ha, hal = nb.has_left, nb.has_above, nb.has_above_left
        ql, qa, qal = self.levels[nb.left], self.levels[nb.above], self.levels[nb.above_left]
        med = np.clip(ql + qa - qal, np.minimum(ql, qa), np.maximum(ql, qa))
        if self.sparse:
            fallback = np.full(len(nb.index), self.zero)
        else:
            fallback = np.clip(np.rint(mean), 0, self.top).astype(np.int64)
        flat = np.where(hal, med, np.where(hl, ql, np.where(ha, qa, fallback)))
        act = np.where(hal, np.abs(ql - qal) + np.abs(qa - qal) + np.abs(ql - qa), 0) >> self.activity_shift
        return flat.astype(np.int64), np.searchsorted(_ACT_EDGES, act, side="right")

    def _nonzero_context(self, nb: Neighbours, nonzero: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(significance context, some existing neighbour is zero) of each element (sparse mode)."""
        if not self.sparse:
            return np.zeros(0, dtype=np.int64), np.zeros(len(nb.index), dtype=bool)
        ch, avail = nb.plane, nb.available
        n_nonzero = nonzero[0].astype(np.int64) + nonzero[1] + nonzero[2]
        rate = (self.nonzero_count[ch] + _K_RATE * self.global_rate) / (self.decoded_count[ch] + _K_RATE)
        state = np.where(avail == 0, 0, np.where(avail == 1, 1 + n_nonzero, 3 + n_nonzero))
        ctx = (np.searchsorted(_RATE_EDGES, rate) * _N_NB + state) * _N_CROSS + _cross_bucket(self.ref_nonzero_fraction, nb)
        return ctx, (avail - n_nonzero) > 0

    def step_model(self, sl: slice) -> StepModel:
        """Contexts, prediction and spread of the elements of the coding-order slice ``sl``."""
        nb = neighbours(self.layout, sl)
        ch = nb.plane
        mean = (self.nonzero_sum[ch] + _K_MEAN * self.global_mean) / (self.nonzero_count[ch] + _K_MEAN)
        channel_spread = (self.nonzero_abs_residual[ch] + _K_SPREAD * self.global_spread) / (self.nonzero_count[ch] + _K_SPREAD)
        flat, activity = self._flat_prediction(nb, mean)
        nonzero = (
            self.nonzero[nb.left] & nb.has_left,
            self.nonzero[nb.above] & nb.has_above,
            self.nonzero[nb.above_left] & nb.has_above_left,
        )
        nonzero_ctx, any_zero = self._nonzero_context(nb, nonzero)
        usable = usable_neighbours(self, nb, nonzero)
        mu, mu_linear, mu_gradient = predict_mean(self, nb, mean, usable, nonzero)
        std, local = predict_spread(self, nb, channel_spread, usable)
        spread_bucket = np.searchsorted(_STD_EDGES * (1 << self.activity_shift), std)
        hit_ctx = ((any_zero * 4 + spread_bucket) * len(_HIT_PRIOR) + activity) * _N_CROSS + _cross_bucket(
            self.ref_hit_fraction, nb
        )
        side_ctx = np.searchsorted(_SIDE_EDGES, (mu - self.zero) / std, side="right")
        return StepModel(
            nb.index, ch, nonzero_ctx, flat, hit_ctx, side_ctx, mu, std, channel_spread, local, mu_linear, mu_gradient
        )

    def _calibrate(self, sm: StepModel, abs_residual: np.ndarray, coded: np.ndarray) -> None:
        """Update the spread calibration with the |residual| of the distribution-coded values."""
        self.calib_observed += float(abs_residual.sum())
        self.err_channel += float(np.abs(abs_residual - sm.channel_spread[coded]).sum())
        self.err_local += float(np.abs(abs_residual - sm.local_spread[coded]).sum())
        self.calib_predicted += float(sm.spread[coded].sum()) / GAUSS_PER_MAD

    def commit(self, sm: StepModel, levels: np.ndarray, nonzero: np.ndarray, coded: np.ndarray) -> None:
        """Record the levels of one step and update the statistics (``coded``: values coded by a
        distribution, a subset of ``nonzero``)."""
        P = self.layout.P
        u = self.unleak(levels)
        residual = u - sm.mean
        abs_residual = np.abs(residual)
        if coded.any():
            self._calibrate(sm, abs_residual[coded], coded)
        self.levels[sm.index] = levels
        self.values[sm.index] = u
        self.nonzero[sm.index] = nonzero
        self.hit[sm.index] = levels == sm.flat
        self.decoded_count += np.bincount(sm.plane, minlength=P)
        ch, v, at = sm.plane[nonzero], u[nonzero], sm.index[nonzero]
        self.residual[at] = residual[nonzero]
        self.abs_err_linear[at] = np.abs(v - sm.mean_linear[nonzero])
        self.abs_err_gradient[at] = np.abs(v - sm.mean_gradient[nonzero])
        self.abs_residual[at] = abs_residual[nonzero]
        self.nonzero_count += np.bincount(ch, minlength=P)
        self.nonzero_sum += np.bincount(ch, weights=v, minlength=P)
        self.nonzero_abs_residual += np.bincount(ch, weights=abs_residual[nonzero], minlength=P)
