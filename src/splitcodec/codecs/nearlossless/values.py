"""Coding of the levels that are neither the zero level nor their flat prediction.

In the sparse mode a binary *side* event first says below or above zero (where both sides have levels
left); the level is then coded within its side, without the excluded flat prediction, under a quantized
Gaussian, Laplace or Cauchy distribution with the predicted mean and spread.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from splitcodec.codecs.nearlossless.context import ContextState, StepModel
from splitcodec.codecs.nearlossless.events import code_events
from splitcodec.codecs.nearlossless.params import CAUCHY, LAPLACE
from splitcodec.codecs.nearlossless.predictor import GAUSS_PER_MAD, MIN_STD
from splitcodec.errors import PayloadError

__all__ = ["code_values", "value_model"]

_CAUCHY_PER_MAD = 0.7  # Cauchy scale per mean |residual| (heavy tails: sparse magnitudes, object edges)


@lru_cache(maxsize=64)
def _gauss(n: int):
    """Quantized Gaussian over ``0 .. n - 1`` (parameters: mean, standard deviation)."""
    import constriction

    return constriction.stream.model.QuantizedGaussian(0, n - 1)


@lru_cache(maxsize=64)
def _laplace(n: int):
    """Quantized Laplace over ``0 .. n - 1`` (parameters: mean, scale)."""
    import constriction

    return constriction.stream.model.QuantizedLaplace(0, n - 1)


@lru_cache(maxsize=64)
def _cauchy(n: int):
    """Quantized Cauchy over ``0 .. n - 1`` (parameters: location, scale)."""
    import constriction

    return constriction.stream.model.QuantizedCauchy(0, n - 1)


def value_model(n: int, family: int, mean: np.ndarray, std: np.ndarray):
    """The value distribution and its parameters; ``std`` is a Gaussian's, the others match its spread."""
    if family == LAPLACE:
        return _laplace(n), (mean, std / GAUSS_PER_MAD)
    if family == CAUCHY:
        return _cauchy(n), (mean, std * (_CAUCHY_PER_MAD / GAUSS_PER_MAD))
    return _gauss(n), (mean, std)


def _sides(
    coder: Any, st: ContextState, sm: StepModel, rest: np.ndarray, excl: np.ndarray, truth: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """Sparse mode: code which side of zero each value lies on; returns, per value, the first level of
    its side, how many levels the side leaves, whether the flat prediction is excluded there, and the
    mean and spread in leaked (coded) units."""
    top, zero = st.top, st.zero
    flat, mu, std = sm.flat[rest], sm.mean[rest], sm.spread[rest]
    lo_neg, hi_neg, lo_pos = 0, zero - 1, zero + 1  # the two sides: [0, zero - 1] and [zero + 1, top]
    ex_neg = excl & (flat <= hi_neg)
    ex_pos = excl & (flat >= lo_pos)
    n_neg = max(zero, 0) - ex_neg
    n_pos = max(top - zero, 0) - ex_pos
    side_coded = (n_neg > 0) & (n_pos > 0)
    neg = np.zeros(len(flat), dtype=bool)
    sc = np.flatnonzero(side_coded)
    if len(sc):
        neg[sc] = code_events(coder, st.side_counts, sm.side_ctx[rest][sc], None if truth is None else (truth < zero)[sc])
    neg |= ~side_coded & (n_pos <= 0)
    if truth is None and np.any((n_neg <= 0) & (n_pos <= 0)):
        raise PayloadError("nearlossless: a value has no level left to take")
    lo = np.where(neg, lo_neg, lo_pos)
    n = np.where(neg, n_neg, n_pos)
    ex = np.where(neg, ex_neg, ex_pos)
    # below zero, the distribution lives in leaked units: mean and spread scale by the slope
    mean = np.where(neg, zero + (mu - zero) * st.slope, mu)
    spread = np.where(neg, std * st.slope, std)
    return lo, n, ex, mean, spread


def code_values(
    coder: Any, st: ContextState, sm: StepModel, rest: np.ndarray, excl: np.ndarray, truth: np.ndarray | None
) -> np.ndarray:
    """Code the levels of the elements ``rest`` (non-zero, not the flat prediction when ``excl``).

    Encoding (``truth`` given) appends (alphabet size, symbols, (mean, spread)) to ``coder`` (a list; the
    distribution family is chosen afterwards); decoding pulls the symbols from ``coder``.
    """
    top = st.top
    flat = sm.flat[rest]
    if st.sparse:
        lo, n, ex, mean, spread = _sides(coder, st, sm, rest, excl, truth)
    else:  # one side: [0, top]
        lo, n, ex = np.zeros(len(flat), dtype=np.int64), top + 1 - excl.astype(np.int64), excl
        mean, spread = sm.mean[rest], sm.spread[rest]
    if truth is None and np.any(n <= 0):
        raise PayloadError("nearlossless: a value has no level left to take")
    skip = np.where(ex, flat, top + 1)  # the excluded level (none: past the top)
    out = np.empty(len(flat), dtype=np.int64)
    # symbol = level - lo, minus one above the excluded level; mean shifted alike
    m_sym = mean - lo - (mean > skip)
    m_sym = np.clip(m_sym, -2.0 * spread - 0.5, (n - 1) + 2.0 * spread + 0.5)
    spread = np.maximum(spread, MIN_STD)
    for size in np.unique(n):
        g = n == size
        if size == 1:
            sym = np.zeros(int(g.sum()), dtype=np.int64)
        elif truth is not None:
            t = truth[g]
            sym = t - lo[g] - (t > skip[g])
            coder.append((int(size), sym.astype(np.int32), (m_sym[g], spread[g])))
        else:
            model, params = value_model(int(size), st.params.family, m_sym[g], spread[g])
            sym = np.asarray(coder.decode(model, *params), dtype=np.int64)
        level = sym + lo[g]
        out[g] = level + (level >= skip[g])
    return out
