"""Encoder-side estimation of the payload's model parameters (any values decode; these code well)."""

from __future__ import annotations

import numpy as np

from splitcodec.codecs.nearlossless.layout import Layout, reference_channels
from splitcodec.codecs.nearlossless.params import BETA_SCALE, COEF_SCALE, GAUSS, MODE_SPARSE, N_COEF, ModelParams

__all__ = ["HIT_MIN_FRACTION", "fit_params", "flat_prediction"]

#: hit flags are coded when at least this fraction of the values equal their flat prediction
HIT_MIN_FRACTION = 0.03
_CROSS_MIN_ELEMENTS = 64  # cross-channel prediction is only considered for channels of this many values


def _regression(u: np.ndarray, nzmask: np.ndarray, sel: np.ndarray, relu: bool, zero: int):
    """Features (left, above, above-left around the channel mean, zero-neighbour term) and targets of
    the least-squares predictor, over the selected values of the planes ``u`` (un-leaked)."""
    cnt = np.maximum(sel.sum((1, 2)), 1)
    m = (np.where(sel, u, 0.0).sum((1, 2)) / cnt)[:, None, None]
    pad_u = np.pad(u, ((0, 0), (1, 0), (1, 0)))
    pad_ok = np.pad(nzmask if relu else np.ones_like(nzmask), ((0, 0), (1, 0), (1, 0)))
    pad_av = np.pad(np.ones_like(nzmask), ((0, 0), (1, 0), (1, 0)))
    views = [(slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)), (slice(None, -1), slice(None, -1))]
    feats = [np.where(pad_ok[:, a, b], pad_u[:, a, b] - m, 0.0) for a, b in views]
    if relu:
        nzero = sum((pad_av[:, a, b] & ~pad_ok[:, a, b]).astype(np.float64) for a, b in views)
        feats.append(nzero * (zero - m))
    else:
        feats.append(np.zeros_like(u))
    return np.stack([f[sel] for f in feats], axis=1), (u - m)[sel]


def _least_squares(X: np.ndarray, y: np.ndarray) -> tuple[int, ...]:
    """Ridge-regularised least-squares coefficients, as the integers the payload carries."""
    coef = np.zeros(N_COEF)
    if len(y) >= N_COEF:
        gram = X.T @ X
        coef = np.linalg.solve(gram + 1e-3 * (np.trace(gram) / N_COEF + 1e-9) * np.eye(N_COEF), X.T @ y)
    return tuple(int(c) for c in np.clip(np.rint(coef * COEF_SCALE), -32767, 32767))


def fit_params(q: np.ndarray, lay: Layout, top: int, zero: int, mode: int, slope256: int) -> ModelParams:
    """Least-squares predictor coefficients and global statistics of one tensor's flat levels ``q``."""
    qp = q.reshape(lay.P, lay.H, lay.W)
    sparse = mode == MODE_SPARSE
    relu = sparse and slope256 == 0
    slope = slope256 / 256.0 if slope256 else 1.0
    u = np.where(qp < zero, zero + (qp - zero) / slope, qp).astype(np.float64)
    nzmask = qp != zero
    sel = nzmask if sparse else np.ones_like(nzmask)
    X, y = _regression(u, nzmask, sel, relu, zero)
    coef_i = _least_squares(X, y)
    res = y - X @ (np.array(coef_i) / COEF_SCALE)
    spread = float(np.abs(res).mean()) if len(res) else 1.0
    mean = float(u[sel].mean()) if sel.any() else 0.0
    rate = float(nzmask.mean())
    return ModelParams(
        mode=mode,
        hits=float((qp == flat_prediction(qp)).mean()) >= HIT_MIN_FRACTION,
        family=GAUSS,
        slope256=slope256 if sparse else 0,
        mean16=int(np.clip(round(mean * 16), 0, 2**32 - 1)),
        spread16=int(np.clip(round(spread * 16), 0, 2**32 - 1)),
        rate256=min(int(round(rate * 256)), 255),
        coef=coef_i,
        cross=_fit_cross(res, sel, lay),
    )


def _fit_cross(res: np.ndarray, sel: np.ndarray, lay: Layout) -> tuple[tuple[int, int, int], ...]:
    """For each non-reference channel, the reference channel whose prediction residual at the same
    position correlates best with its own, when the bits it should save pay for its 3 bytes."""
    G, hw = lay.G, lay.H * lay.W
    R = reference_channels(G, lay.H, lay.W)
    if R >= G or hw * (lay.P // G) < _CROSS_MIN_ELEMENTS:  # too few values to pay for the side information
        return ()
    full = np.zeros(sel.shape)
    full[sel] = res
    r = full.reshape(lay.P // G, G, hw).transpose(1, 0, 2).reshape(G, -1)  # channel × (sample, position)
    ok = sel.reshape(lay.P // G, G, hw).transpose(1, 0, 2).reshape(G, -1).astype(np.float64)
    both = ok[R:] @ ok[:R].T  # elements where both values are coded
    sxy = r[R:] @ r[:R].T
    sxx = (r[R:] ** 2) @ ok[:R].T
    syy = ok[R:] @ (r[:R] ** 2).T
    with np.errstate(invalid="ignore", divide="ignore"):
        rho2 = np.where(both > 8, sxy**2 / (sxx * syy), 0.0)
    rho2 = np.nan_to_num(rho2)
    # the best of R candidates is biased upwards by chance: subtract what noise alone would reach
    noise = 2.0 * np.log(max(R, 2)) / np.maximum(both, 1)
    gain = -0.5 * np.log2(np.clip(1 - rho2 + noise, 1e-6, 1.0)) * both  # bits saved, roughly
    best = np.argmax(gain, axis=1)
    out = []
    for j, ref in enumerate(best):
        if gain[j, ref] > 2 * 8 * 4:
            beta = sxy[j, ref] / max(syy[j, ref], 1e-9)
            b = int(np.clip(np.rint(beta * BETA_SCALE), -127, 127))
            if b:
                out.append((R + j, int(ref), b))
    return tuple(out)


def flat_prediction(qp: np.ndarray) -> np.ndarray:
    """Median (LOCO-I) prediction of every level from its left / above / above-left neighbours."""
    q = qp.astype(np.int64)
    out = q.copy()
    l, a, al = q[:, 1:, :-1], q[:, :-1, 1:], q[:, :-1, :-1]
    out[:, 1:, 1:] = np.clip(l + a - al, np.minimum(l, a), np.maximum(l, a))
    out[:, 0, 1:] = q[:, 0, :-1]
    out[:, 1:, 0] = q[:, :-1, 0]
    out[:, 0, 0] = -1
    return out
