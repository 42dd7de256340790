"""``nearlossless``: n-bit quantization, then a lossless coder built for deep features (Choi & Bajić 2018).

The only loss is the per-tensor min–max quantization to ``bits`` bits (:func:`splitcodec.tiling.quantize`,
the same integers the image/video-codec anchors tile into a mosaic).  The integers are then coded
losslessly with what distinguishes features from pictures:

* **channels are separate signals**: prediction never crosses a channel border, and every channel keeps
  running statistics (mean, spread, sparsity) that adapt as it is decoded;
* **channels share their geometry**: a quarter of the channels (the *reference* channels) is coded
  first; for the others, the fraction of reference channels that are zero / exactly predictable at the
  same position is context (the background of the input shows up at the same place in every channel),
  and a channel may add a multiple of one reference channel's prediction residual at the same position
  to its prediction (chosen by the encoder where it pays for its 3 bytes);
* **the activation**: values at the quantized zero (ReLU sparsity) get a significance flag; for a
  leaky ReLU the negative side is "un-leaked" (divided by the slope) before prediction and coded with its
  own scale, so its ten-times finer levels are not mistaken for noise;
* **flat regions**: whether a value equals its median (LOCO-I) prediction is a binary event with
  activity contexts — feature maps hold large regions of exactly repeated values;
* **a causal linear predictor** (left, above, above-left, around the channel's running mean) fitted
  per tensor by least squares, blended with the median-gradient predictor by their recent errors; the
  remaining values are coded under quantized Gaussians (or Laplace or Cauchy distributions, whichever is
  shortest for the tensor) with that mean and a spread from the channel's running spread and the
  neighbours' residuals, self-calibrated against the residuals seen so far.

All binary events use adaptive counts; values use
``constriction``'s ANS coder (``QuantizedGaussian``/``Laplace``/``Cauchy`` with per-symbol parameters).
Decoding runs over anti-diagonal wavefronts (all positions with the same ``h + w``, in every channel of
all channels at once, the non-reference ones one diagonal behind): ``H + W`` vectorised numpy steps.

``fit`` records only the split point's activation (``relu``/``relu6``/``leaky_relu`` with its slope, or
``other``), which picks the mode: significance coding for (leaky) ReLU features, dense coding otherwise.
An unfitted codec tries both where the data suggests it and keeps the shorter stream; a fixed-width copy
of the levels bounds the worst case.  The payload format is in ``docs/nearlossless.md``.

>>> import numpy as np, torch
>>> x = torch.relu(torch.randn(1, 8, 6, 6))
>>> codec = get_codec("nearlossless", bits=8)
>>> y = codec.decode(codec.encode(x))
>>> bool(np.array_equal(quantize(y.numpy(), 8)[0], quantize(x.numpy(), 8)[0]))
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from splitcodec.codecs.base import Codec, as_array
from splitcodec.codecs.registry import get_codec, register_codec
from splitcodec.entropy import read_varint, write_varint
from splitcodec.errors import BitstreamError, CodecError
from splitcodec.tiling import dequantize, quantize

if TYPE_CHECKING:
    from splitcodec.split import Activation

__all__ = ["NearLossless", "encode_levels", "decode_levels"]

MAX_BITS = 16
_RANGE = struct.Struct("<ff")  # lo, hi of the quantizer
_MODE_HIST, _MODE_DENSE, _MODE_SPARSE, _MODE_RAW = 0, 1, 2, 3  # hist: order-0 adaptive; raw: fixed-width
#: the order-0 adaptive histogram mode is tried on tensors up to this many values (and up to 10 bits),
#: where a tensor is too small for per-channel statistics to settle
HIST_MAX_VALUES = 16384
HIST_MAX_PLANE = 25  # ... whose channels hold at most this many values
_HIST_KERNEL = np.array([1, 8, 28, 56, 70, 56, 28, 8, 1], dtype=np.int64)  # binomial, sums to 256

_FLAG_HITS = 4  # payload flag: flat-prediction hit flags are coded
_FAMILY_SHIFT = 3  # payload flags bits 3-4: distribution family of the values
_GAUSS, _LAPLACE, _CAUCHY = 0, 1, 2
_CAUCHY_PER_MAD = 0.7  # Cauchy scale per mean |residual| (heavy tails: sparse magnitudes, object edges)
#: the sparse mode is tried when at least this fraction of the values sit at the quantized zero
SPARSE_MIN_FRACTION = 0.05
#: hit flags are coded when at least this fraction of the values equal their flat prediction
HIT_MIN_FRACTION = 0.03
#: leaky slope tried by an unfitted codec when many values lie below the quantized zero
DEFAULT_LEAKY_SLOPE = 0.1
_COEF_SCALE = 1024  # predictor coefficients travel as int16 / 1024
_N_COEF = 4
_COEFS = struct.Struct("<4h")
_BETA_SCALE = 64  # cross-channel coefficients travel as int8 / 64
_CROSS_MIN_ELEMENTS = 64  # cross-channel prediction is only considered for channels of this many values
# prior weights (in samples) of the global statistics against a channel's own running statistics
_K_MEAN, _K_SPREAD, _K_RATE = 4.0, 12.0, 4.0
_K_CALIB = 16.0  # prior weight (in values) of the spread calibration
_GAUSS_PER_MAD = 1.2533141373155001  # sigma / mean absolute deviation of a Gaussian
_MIN_STD = 0.3
_WIDE = 1.0
_ADAPT_W = True
_BLEND = 1.0
_W_CHANNEL, _W_LOCAL = 0.5, 0.65  # spread = mix of the channel's and the neighbours' residuals
_PRIOR_WEIGHT = 2.0  # pseudo-counts of the initial binary probabilities
_FLAG_CHUNK, _MAX_FLAG_CHUNKS = 32, 32  # binary events of a step are coded in chunks of >= 32, at most 32
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


# --- plane layout and wavefront order ------------------------------------------------------------------
def _planes(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(P, G, H, W): P planes of H×W in groups of G channels (one group per sample).

    The last two dims are the spatial plane and the third-last the channels; lower-rank tensors are
    planes of 1×1, all in one group.
    """
    if len(shape) >= 3:
        return int(np.prod(shape[:-2], dtype=np.int64)), int(shape[-3]), int(shape[-2]), int(shape[-1])
    n = int(np.prod(shape, dtype=np.int64))
    return n, max(n, 1), 1, 1


@dataclass(frozen=True)
class _Layout:
    """Coding order: anti-diagonal wavefronts; the non-reference channels run one diagonal behind the
    reference channels, so each of their positions sees every reference channel's value there."""

    P: int
    G: int
    H: int
    W: int
    order: np.ndarray  # flat indices in coding order
    bounds: np.ndarray  # step t covers order[bounds[t]:bounds[t + 1]]
    chan: np.ndarray  # plane of each element, in order
    pos: np.ndarray  # sample * H * W + h * W + w of each element, in order (index into the cross maps)
    follower: np.ndarray  # element of a non-reference channel, in order
    has_l: np.ndarray
    has_a: np.ndarray
    # per step: positions (into the cross maps) whose reference values the step completes, and the flat
    # indices of those reference values, shape (positions, R)
    done_pos: tuple[np.ndarray, ...]
    done_refs: tuple[np.ndarray, ...]

    @property
    def steps(self) -> int:
        return len(self.bounds) - 1


def _reference_channels(G: int, H: int, W: int) -> int:
    """How many leading channels of each sample are coded first and serve as cross-channel context."""
    if H * W < 4 or G < 4:
        return G
    return (G + 3) // 4


@lru_cache(maxsize=32)
def _layout(P: int, G: int, H: int, W: int) -> _Layout:
    R = _reference_channels(G, H, W)
    hw = H * W
    plane = np.arange(P).repeat(hw)
    h = np.tile(np.arange(H).repeat(W), P)
    w = np.tile(np.arange(W), P * H)
    follower = (plane % G) >= R
    key = h + w + follower  # followers one diagonal behind
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    samples = P // G
    ref_planes = (np.arange(samples)[:, None] * G + np.arange(R)[None, :]).ravel()  # (samples·R)
    done_pos, done_refs = [], []
    diag = (np.arange(hw) // W) + (np.arange(hw) % W)
    for t in range(len(counts)):
        cells = np.flatnonzero(diag == t) if R < G else np.zeros(0, dtype=np.int64)
        pos = (np.arange(samples)[:, None] * hw + cells[None, :]).ravel()
        refs = (ref_planes.reshape(samples, R)[:, None, :] * hw + cells[None, :, None]).reshape(-1, R)
        done_pos.append(pos)
        done_refs.append(refs)
    o_hw = order % hw
    return _Layout(
        P=P,
        G=G,
        H=H,
        W=W,
        order=order,
        bounds=bounds,
        chan=order // hw,
        pos=(order // hw // G) * hw + o_hw,
        follower=follower[order],
        has_l=(o_hw % W) > 0,
        has_a=(o_hw // W) > 0,
        done_pos=tuple(done_pos),
        done_refs=tuple(done_refs),
    )


# --- the adaptive model, shared by encoder and decoder ---------------------------------------------------
@dataclass(frozen=True)
class _Params:
    """What the payload carries besides the ANS words (all integers, so both sides compute alike)."""

    mode: int
    hits: bool  # hit flags coded
    family: int  # distribution of the values: _GAUSS, _LAPLACE or _CAUCHY
    slope256: int  # leaky slope × 256 (sparse mode; 0 = ReLU)
    mean16: int  # global mean of the coded (non-zero) values ×16, in un-leaked units
    spread16: int  # global mean |residual| ×16
    rate256: int  # fraction of non-zero values ×256
    coef: tuple[int, ...]  # predictor coefficients ×_COEF_SCALE
    #: cross-channel prediction: (channel, reference channel, coefficient × _BETA_SCALE), channels of a group
    cross: tuple[tuple[int, int, int], ...] = ()

    def pack(self) -> bytes:
        flags = self.mode | (_FLAG_HITS if self.hits else 0) | (self.family << _FAMILY_SHIFT)
        return (
            bytes([flags, self.slope256, self.rate256])
            + write_varint(self.mean16)
            + write_varint(self.spread16)
            + _COEFS.pack(*self.coef)
            + write_varint(len(self.cross))
            + b"".join(write_varint(c) + write_varint(r) + struct.pack("<b", b) for c, r, b in self.cross)
        )

    @classmethod
    def unpack(cls, data: bytes, top: int, lay: _Layout) -> tuple["_Params", int]:
        if len(data) < 3:
            raise BitstreamError(f"nearlossless: payload of {len(data)} bytes is shorter than its parameters")
        flags, slope256, rate256 = data[0], data[1], data[2]
        mode = flags & 3
        bad_mode = mode not in (_MODE_DENSE, _MODE_SPARSE) or (mode == _MODE_SPARSE and top < 2)
        if flags & ~31 or (flags >> _FAMILY_SHIFT) > _CAUCHY or bad_mode:
            raise BitstreamError(f"nearlossless: invalid coding flags {flags:#04x}")
        mean16, pos = read_varint(data, 3, max_bytes=5, what="nearlossless mean")
        spread16, pos = read_varint(data, pos, max_bytes=5, what="nearlossless spread")
        if pos + _COEFS.size > len(data):
            raise BitstreamError("nearlossless: payload truncated inside the predictor coefficients")
        coef = _COEFS.unpack_from(data, pos)
        pos += _COEFS.size
        n, pos = read_varint(data, pos, max_bytes=5, what="nearlossless cross-channel count")
        R = _reference_channels(lay.G, lay.H, lay.W)
        if n > lay.G - R:
            raise BitstreamError(f"nearlossless: {n} cross-channel predictions for {lay.G - R} channels")
        cross = []
        for _ in range(n):
            c, pos = read_varint(data, pos, max_bytes=5, what="nearlossless cross channel")
            r, pos = read_varint(data, pos, max_bytes=5, what="nearlossless cross reference")
            if pos >= len(data) or not R <= c < lay.G or not 0 <= r < R:
                raise BitstreamError(f"nearlossless: invalid cross-channel prediction {c} <- {r}")
            cross.append((c, r, struct.unpack_from("<b", data, pos)[0]))
            pos += 1
        params = cls(
            mode=mode, hits=bool(flags & _FLAG_HITS), family=flags >> _FAMILY_SHIFT, slope256=slope256,
            mean16=mean16, spread16=spread16, rate256=rate256, coef=tuple(coef), cross=tuple(cross),
        )
        return params, pos


@dataclass
class _StepModel:
    """Model parameters of every element of one wavefront step (computed before any of them is coded)."""

    idx: np.ndarray
    ch: np.ndarray
    zctx: np.ndarray  # context of "value != zero level" (sparse mode)
    hat: np.ndarray  # flat prediction: median of left, above, left + above - above-left
    hctx: np.ndarray  # context of "value == hat"
    sctx: np.ndarray  # context of "value < zero level" (given: not zero, not hat)
    mu: np.ndarray  # prediction, un-leaked units
    std: np.ndarray  # spread, un-leaked units
    d: np.ndarray  # the channel's running mean |residual|
    loc: np.ndarray  # the neighbours' mean |residual|
    mu_ls: np.ndarray  # the linear predictor alone
    mu_g: np.ndarray  # the median-gradient predictor alone


def _binary_counts(prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return prior * _PRIOR_WEIGHT, (1.0 - prior) * _PRIOR_WEIGHT


class _State:
    """Decoded values, running per-channel statistics and binary context counts."""

    def __init__(self, lay: _Layout, p: _Params, top: int, zero: int) -> None:
        self.lay, self.p, self.top, self.zero = lay, p, top, zero
        self.sparse = p.mode == _MODE_SPARSE
        self.relu = self.sparse and p.slope256 == 0
        self.slope = p.slope256 / 256.0 if p.slope256 else 1.0  # scale of the values below zero
        n = lay.P * lay.H * lay.W
        P = lay.P
        self.q = np.zeros(n, dtype=np.int64)  # decoded levels
        self.u = np.zeros(n, dtype=np.float64)  # decoded values, un-leaked
        self.e = np.zeros(n, dtype=np.float64)  # |u - prediction| of decoded non-zero values
        self.r = np.zeros(n, dtype=np.float64)  # u - prediction of decoded non-zero values (0 elsewhere)
        self.els = np.zeros(n, dtype=np.float64)  # |u - linear prediction|
        self.eg = np.zeros(n, dtype=np.float64)  # |u - median-gradient prediction|
        # cross-channel prediction: reference plane and coefficient of every plane (-1: none)
        self.xref = np.full(P, -1, dtype=np.int64)
        self.xbeta = np.zeros(P)
        samples = P // lay.G if lay.G else 0
        for c, r, b in p.cross:
            planes = np.arange(samples) * lay.G
            self.xref[planes + c] = planes + r
            self.xbeta[planes + c] = b / _BETA_SCALE
        self.nz = np.zeros(n, dtype=bool)
        self.hit = np.zeros(n, dtype=bool)
        self.cnt, self.sum, self.sad = np.zeros(P), np.zeros(P), np.zeros(P)  # over non-zero values
        self.all = np.zeros(P)
        self.g_mean = p.mean16 / 16.0
        self.g_spread = max(p.spread16 / 16.0, _MIN_STD)
        self.g_rate = min(max(p.rate256, 1), 255) / 256.0
        self.coef = np.array(p.coef, dtype=np.float64) / _COEF_SCALE
        self.act_shift = max(0, top.bit_length() - 8)
        self.z1, self.z0 = _binary_counts(np.repeat(_RATE_PRIOR, _N_NB * _N_CROSS))
        self.h1, self.h0 = _binary_counts(np.repeat(np.tile(_HIT_PRIOR, 8), _N_CROSS))
        self.s1, self.s0 = _binary_counts(_SIDE_PRIOR.copy())
        # per position: fraction of the reference channels that hit / are non-zero there
        self.xhit = np.zeros((P // lay.G) * lay.H * lay.W if lay.G else 0)
        self.xnz = np.zeros_like(self.xhit)
        # self-calibration of the spread: observed vs predicted |residual| of the Gaussian-coded values
        self.obs = self.pred = _K_CALIB * self.g_spread
        self.err_c = self.err_l = _K_CALIB * self.g_spread  # how well each spread estimate predicted |residual|

    def unleak(self, q: np.ndarray) -> np.ndarray:
        q = q.astype(np.float64)
        return np.where(q < self.zero, self.zero + (q - self.zero) / self.slope, q)

    def update_cross(self, t: int) -> None:
        """Summarise the reference channels completed by step ``t`` into the cross-channel maps."""
        pos, refs = self.lay.done_pos[t], self.lay.done_refs[t]
        if len(pos):
            self.xhit[pos] = self.hit[refs].mean(axis=1)
            self.xnz[pos] = self.nz[refs].mean(axis=1)

    @staticmethod
    def _cross(frac: np.ndarray, pos: np.ndarray, follower: np.ndarray) -> np.ndarray:
        """Context bucket: 0 for reference channels, else 1 + bucket of the fraction at the position."""
        return np.where(follower, 1 + np.searchsorted(_CROSS_EDGES, frac[pos], side="right"), 0)

    def model(self, sl: slice) -> _StepModel:
        lay, W, zero = self.lay, self.lay.W, self.zero
        idx, ch, hl, ha, pos = lay.order[sl], lay.chan[sl], lay.has_l[sl], lay.has_a[sl], lay.pos[sl]
        follower = lay.follower[sl]
        hal = hl & ha
        il, ia, ial = np.where(hl, idx - 1, idx), np.where(ha, idx - W, idx), np.where(hal, idx - W - 1, idx)
        avail = hl.astype(np.int64) + ha
        nstate = np.minimum(avail, 2)
        # flat prediction (levels) and local activity
        ql, qa, qal = self.q[il], self.q[ia], self.q[ial]
        med = np.clip(ql + qa - qal, np.minimum(ql, qa), np.maximum(ql, qa))
        m = (self.sum[ch] + _K_MEAN * self.g_mean) / (self.cnt[ch] + _K_MEAN)
        d = (self.sad[ch] + _K_SPREAD * self.g_spread) / (self.cnt[ch] + _K_SPREAD)
        fallback = np.clip(np.rint(m), 0, self.top).astype(np.int64) if not self.sparse else np.full(len(idx), zero)
        hat = np.where(hal, med, np.where(hl, ql, np.where(ha, qa, fallback)))
        act = np.where(hal, np.abs(ql - qal) + np.abs(qa - qal) + np.abs(ql - qa), 0) >> self.act_shift
        abucket = np.searchsorted(_ACT_EDGES, act, side="right")
        # significance
        nzl, nza, nzal = self.nz[il] & hl, self.nz[ia] & ha, self.nz[ial] & hal
        nbz = nzl.astype(np.int64) + nza + nzal
        if self.sparse:
            rate = (self.cnt[ch] + _K_RATE * self.g_rate) / (self.all[ch] + _K_RATE)
            state = np.where(avail == 0, 0, np.where(avail == 1, 1 + nbz, 3 + nbz))
            zctx = (np.searchsorted(_RATE_EDGES, rate) * _N_NB + state) * _N_CROSS + self._cross(self.xnz, pos, follower)
            anyzero = (avail - nbz) > 0
        else:
            zctx = np.zeros(0, dtype=np.int64)
            anyzero = np.zeros(len(idx), dtype=bool)
        # linear prediction in un-leaked units; under a plain ReLU, zero neighbours only count as such
        if self.relu:
            wl, wa, wal = nzl, nza, nzal
            nzero = (avail + hal - nbz).astype(np.float64)
            extra = self.coef[3] * nzero * (zero - m)
        else:
            wl, wa, wal = hl, ha, hal
            extra = 0.0
        ul, ua, ual = self.u[il], self.u[ia], self.u[ial]
        a = self.coef
        mu = m + a[0] * np.where(wl, ul - m, 0.0) + a[1] * np.where(wa, ua - m, 0.0) + a[2] * np.where(wal, ual - m, 0.0)
        mu = mu + extra
        if len(self.p.cross):  # followers: the reference channel's residual at this position
            ref = self.xref[ch]
            has = ref >= 0
            hw = lay.H * lay.W
            mu = mu + np.where(has, self.xbeta[ch] * self.r[np.where(has, ref * hw + idx % hw, idx)], 0.0)
        mu_ls = mu
        if _BLEND:  # blend with the median-gradient predictor, each weighted by the other's recent errors
            grad_u = np.clip(ul + ua - ual, np.minimum(ul, ua), np.maximum(ul, ua))
            mu_g = np.where(hal, grad_u, np.where(hl, ul, np.where(ha, ua, mu_ls)))
            e_ls = np.where(wl, self.els[il], 0.0) + np.where(wa, self.els[ia], 0.0) + np.where(wal, self.els[ial], 0.0)
            e_g = np.where(wl, self.eg[il], 0.0) + np.where(wa, self.eg[ia], 0.0) + np.where(wal, self.eg[ial], 0.0)
            mu = (mu_ls * (e_g + _BLEND) + mu_g * (e_ls + _BLEND)) / (e_ls + e_g + 2 * _BLEND)
        else:
            mu_g = mu_ls
        nloc = wl.astype(np.float64) + wa + wal
        eloc = np.where(wl, self.e[il], 0.0) + np.where(wa, self.e[ia], 0.0) + np.where(wal, self.e[ial], 0.0)
        if _WIDE:
            w_ = lay.W
            hw_ = idx % (lay.H * w_)
            hll = hl & (hw_ % w_ >= 2)
            haa = ha & (hw_ // w_ >= 2)
            ill = np.where(hll, idx - 2, idx)
            iaa = np.where(haa, idx - 2 * w_, idx)
            vll = hll & (self.nz[ill] | ~self.relu)
            vaa = haa & (self.nz[iaa] | ~self.relu)
            eloc = eloc + _WIDE * (np.where(vll, self.e[ill], 0.0) + np.where(vaa, self.e[iaa], 0.0))
            nloc = nloc + _WIDE * (vll.astype(np.float64) + vaa)
        loc = (eloc + d) / (nloc + 1.0)
        if _ADAPT_W:
            wc = self.err_l / (self.err_c + self.err_l)
            mix = wc * d + (1.0 - wc) * loc
        else:
            mix = _W_CHANNEL * d + _W_LOCAL * loc
        std = np.maximum(_GAUSS_PER_MAD * mix * (self.obs / self.pred), _MIN_STD)
        sb = np.searchsorted(_STD_EDGES * (1 << self.act_shift), std)
        hctx = ((anyzero * 4 + sb) * len(_HIT_PRIOR) + abucket) * _N_CROSS + self._cross(self.xhit, pos, follower)
        sctx = np.searchsorted(_SIDE_EDGES, (mu - zero) / std, side="right")
        return _StepModel(idx, ch, zctx, hat.astype(np.int64), hctx, sctx, mu, std, d, loc, mu_ls, mu_g)

    @staticmethod
    def _learn(c1: np.ndarray, c0: np.ndarray, ctx: np.ndarray, bit: np.ndarray) -> None:
        if len(ctx) * 8 < len(c1):  # a few events: scatter them
            np.add.at(c1, ctx, bit.astype(np.float64))
            np.add.at(c0, ctx, (~bit).astype(np.float64))
        else:
            c1 += np.bincount(ctx, weights=bit.astype(np.float64), minlength=len(c1))
            c0 += np.bincount(ctx, weights=(~bit).astype(np.float64), minlength=len(c0))

    def commit(self, sm: _StepModel, levels: np.ndarray, nonzero: np.ndarray, coded: np.ndarray) -> None:
        """Record the levels of one step and update the statistics (``coded``: values coded by a Gaussian)."""
        if coded.any():
            r = np.abs(self.unleak(levels[coded]) - sm.mu[coded])
            self.obs += float(r.sum())
            self.err_c += float(np.abs(r - sm.d[coded]).sum())
            self.err_l += float(np.abs(r - sm.loc[coded]).sum())
            self.pred += float(sm.std[coded].sum()) / _GAUSS_PER_MAD
        P = self.lay.P
        u = self.unleak(levels)
        self.q[sm.idx] = levels
        self.u[sm.idx] = u
        self.nz[sm.idx] = nonzero
        self.hit[sm.idx] = levels == sm.hat
        self.all += np.bincount(sm.ch, minlength=P)
        ch, v = sm.ch[nonzero], u[nonzero]
        signed = v - sm.mu[nonzero]
        err = np.abs(signed)
        self.r[sm.idx[nonzero]] = signed
        self.els[sm.idx[nonzero]] = np.abs(v - sm.mu_ls[nonzero])
        self.eg[sm.idx[nonzero]] = np.abs(v - sm.mu_g[nonzero])
        self.e[sm.idx[nonzero]] = err
        self.cnt += np.bincount(ch, minlength=P)
        self.sum += np.bincount(ch, weights=v, minlength=P)
        self.sad += np.bincount(ch, weights=err, minlength=P)


# --- parameter estimation (encoder side only: any values decode, these just code well) -------------------
def _fit_params(q: np.ndarray, lay: _Layout, top: int, zero: int, mode: int, slope256: int) -> _Params:
    """Least-squares predictor coefficients and global statistics of one tensor (already un-leaked)."""
    qp = q.reshape(lay.P, lay.H, lay.W)
    sparse = mode == _MODE_SPARSE
    relu = sparse and slope256 == 0
    slope = slope256 / 256.0 if slope256 else 1.0
    u = np.where(qp < zero, zero + (qp - zero) / slope, qp).astype(np.float64)
    nzmask = qp != zero
    sel = nzmask if sparse else np.ones_like(nzmask)
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
    X = np.stack([f[sel] for f in feats], axis=1)
    y = (u - m)[sel]
    coef = np.zeros(_N_COEF)
    if len(y) >= _N_COEF:
        gram = X.T @ X
        coef = np.linalg.solve(gram + 1e-3 * (np.trace(gram) / _N_COEF + 1e-9) * np.eye(_N_COEF), X.T @ y)
    coef_i = tuple(int(c) for c in np.clip(np.rint(coef * _COEF_SCALE), -32767, 32767))
    res = y - X @ (np.array(coef_i) / _COEF_SCALE)
    spread = float(np.abs(res).mean()) if len(res) else 1.0
    mean = float(u[sel].mean()) if sel.any() else 0.0
    rate = float(nzmask.mean())
    return _Params(
        mode=mode,
        hits=float((qp == _flat_prediction(qp)).mean()) >= HIT_MIN_FRACTION,
        family=_GAUSS,
        slope256=slope256 if sparse else 0,
        mean16=int(np.clip(round(mean * 16), 0, 2**32 - 1)),
        spread16=int(np.clip(round(spread * 16), 0, 2**32 - 1)),
        rate256=min(int(round(rate * 256)), 255),
        coef=coef_i,
        cross=_fit_cross(y - X @ (np.array(coef_i) / _COEF_SCALE), sel, lay),
    )


def _fit_cross(res: np.ndarray, sel: np.ndarray, lay: _Layout) -> tuple[tuple[int, int, int], ...]:
    """For each non-reference channel, the reference channel whose prediction residual at the same
    position correlates best with its own, when the bits it should save pay for its 3 bytes."""
    G, hw = lay.G, lay.H * lay.W
    R = _reference_channels(G, lay.H, lay.W)
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
            b = int(np.clip(np.rint(beta * _BETA_SCALE), -127, 127))
            if b:
                out.append((R + j, int(ref), b))
    return tuple(out)


def _flat_prediction(qp: np.ndarray) -> np.ndarray:
    """Median (LOCO-I) prediction of every level from its left / above / above-left neighbours."""
    q = qp.astype(np.int64)
    out = q.copy()
    l, a, al = q[:, 1:, :-1], q[:, :-1, 1:], q[:, :-1, :-1]
    out[:, 1:, 1:] = np.clip(l + a - al, np.minimum(l, a), np.maximum(l, a))
    out[:, 0, 1:] = q[:, 0, :-1]
    out[:, 1:, 0] = q[:, :-1, 0]
    out[:, 0, 0] = -1
    return out


def _zero_level(lo: float, hi: float, top: int) -> int:
    """The level the real value 0 quantizes to (0 when 0 lies outside the range)."""
    if hi <= lo or lo > 0 or hi < 0:
        return 0
    return int(np.clip(np.rint((0.0 - np.float32(lo)) / (np.float32(hi) - np.float32(lo)) * np.float32(top)), 0, top))


# --- coding of the integer levels ------------------------------------------------------------------------
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


def _value_model(n: int, family: int, mean: np.ndarray, std: np.ndarray):
    """The value distribution and its parameters; ``std`` is a Gaussian's, the others match its spread."""
    if family == _LAPLACE:
        return _laplace(n), (mean, std / _GAUSS_PER_MAD)
    if family == _CAUCHY:
        return _cauchy(n), (mean, std * (_CAUCHY_PER_MAD / _GAUSS_PER_MAD))
    return _gauss(n), (mean, std)


@lru_cache(maxsize=1)
def _bern():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def _code_flags(coder: Any, c1: np.ndarray, c0: np.ndarray, ctx: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """Code binary events of one step under their contexts' adaptive counts, in chunks with the counts
    updated in between (a wide step would otherwise code hundreds of events on a stale estimate)."""
    n = len(ctx)
    out = np.empty(n, dtype=bool)
    size = max(_FLAG_CHUNK, -(-n // _MAX_FLAG_CHUNKS))
    for a in range(0, n, size):
        cx = ctx[a : a + size]
        p1 = c1[cx] / (c1[cx] + c0[cx])
        bits = _code_bits(coder, p1, None if truth is None else truth[a : a + size])
        _State._learn(c1, c0, cx, bits)
        out[a : a + size] = bits
    return out


def _code_bits(coder: Any, p1: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    if len(p1) == 0:
        return np.zeros(0, dtype=bool)
    if truth is not None:
        coder.append((_bern(), truth.astype(np.int32), (p1,)))
        return truth
    return np.asarray(coder.decode(_bern(), p1), dtype=bool)


def _run(lay: _Layout, p: _Params, top: int, zero: int, levels: np.ndarray | None, coder: Any) -> np.ndarray:
    """One pass over the wavefronts.  Encoding (``levels`` given): appends every symbol with its model to
    ``coder`` (a list, ANS-coded in reverse afterwards).  Decoding: pulls the symbols from ``coder``."""
    st = _State(lay, p, top, zero)
    enc = levels is not None
    for t in range(lay.steps):
        sl = slice(int(lay.bounds[t]), int(lay.bounds[t + 1]))
        sm = st.model(sl)
        n = len(sm.idx)
        v = levels[sm.idx] if enc else None
        # 1. significance (sparse mode)
        if st.sparse:
            nonzero = _code_flags(coder, st.z1, st.z0, sm.zctx, None if v is None else v != zero)
        else:
            nonzero = np.ones(n, dtype=bool)
        # levels still possible per element: below zero [0, zero - 1], above [zero + 1, top] (sparse) or all
        # 2. does the value equal the flat prediction?
        hit = np.zeros(n, dtype=bool)
        cand = nonzero & (sm.hat != zero) & (sm.hat >= 0) if st.sparse else nonzero.copy()
        if not p.hits:
            cand[:] = False
        if cand.any():
            h = _code_flags(coder, st.h1, st.h0, sm.hctx[cand], None if v is None else v[cand] == sm.hat[cand])
            hit[cand] = h
        out = np.where(nonzero, sm.hat, zero).astype(np.int64)
        rest = nonzero & ~hit
        if rest.any():
            out[rest] = _code_values(coder, st, sm, rest, cand[rest], None if v is None else v[rest])
        st.commit(sm, out, nonzero, rest)
        st.update_cross(t)
    return st.q


def _code_values(
    coder: Any, st: _State, sm: _StepModel, rest: np.ndarray, excl: np.ndarray, truth: np.ndarray | None
) -> np.ndarray:
    """Code the levels of the elements ``rest`` (non-zero, not the flat prediction when ``excl``)."""
    top, zero, sparse = st.top, st.zero, st.sparse
    hat, mu, std = sm.hat[rest], sm.mu[rest], sm.std[rest]
    k = len(hat)
    # the two sides: [0, zero - 1] and [zero + 1, top] in sparse mode, one side [0, top] otherwise
    if sparse:
        lo_neg, hi_neg, lo_pos, hi_pos = 0, zero - 1, zero + 1, top
        ex_neg = excl & (hat <= hi_neg)
        ex_pos = excl & (hat >= lo_pos)
        n_neg = max(zero, 0) - ex_neg
        n_pos = max(top - zero, 0) - ex_pos
        side_coded = (n_neg > 0) & (n_pos > 0)
        if truth is not None:
            neg_truth = truth < zero
        neg = np.zeros(k, dtype=bool)
        sc = np.flatnonzero(side_coded)
        if len(sc):
            bits = _code_flags(coder, st.s1, st.s0, sm.sctx[rest][sc], None if truth is None else neg_truth[sc])
            neg[sc] = bits
        neg |= ~side_coded & (n_pos <= 0)
        if truth is None and np.any((n_neg <= 0) & (n_pos <= 0)):
            raise BitstreamError("nearlossless: a value has no level left to take")
        lo = np.where(neg, lo_neg, lo_pos)
        n = np.where(neg, n_neg, n_pos)
        ex = np.where(neg, ex_neg, ex_pos)
        # below zero, the Gaussian lives in leaked units: mean and spread scale by the slope
        mean = np.where(neg, zero + (mu - zero) * st.slope, mu)
        spread = np.where(neg, std * st.slope, std)
    else:
        lo, n, ex = np.zeros(k, dtype=np.int64), top + 1 - excl.astype(np.int64), excl
        mean, spread = mu, std
    if truth is None and np.any(n <= 0):
        raise BitstreamError("nearlossless: a value has no level left to take")
    skip = np.where(ex, hat, top + 1)  # the excluded level (none: past the top)
    out = np.empty(k, dtype=np.int64)
    # symbol = level - lo, minus one above the excluded level; mean shifted alike
    m_sym = mean - lo - (mean > skip)
    m_sym = np.clip(m_sym, -2.0 * spread - 0.5, (n - 1) + 2.0 * spread + 0.5)
    spread = np.maximum(spread, _MIN_STD)
    for size in np.unique(n):
        g = n == size
        if size == 1:
            sym = np.zeros(int(g.sum()), dtype=np.int64)
        elif truth is not None:
            t = truth[g]
            sym = t - lo[g] - (t > skip[g])
            coder.append((int(size), sym.astype(np.int32), (m_sym[g], spread[g])))
        else:
            model, params = _value_model(int(size), st.p.family, m_sym[g], spread[g])
            sym = np.asarray(coder.decode(model, *params), dtype=np.int64)
        level = sym + lo[g]
        out[g] = level + (level >= skip[g])
    return out


def _encode_with(q: np.ndarray, lay: _Layout, top: int, zero: int, mode: int, slope256: int) -> bytes:
    import constriction

    p = _fit_params(q, lay, top, zero, mode, slope256)
    pushed: list = []
    _run(lay, p, top, zero, q, pushed)
    # the simulation does not depend on the value distribution: cost the value chunks under each family
    # (their information content adds up, ANS or not), then code everything under the cheapest
    values = [(size, symbols, params) for size, symbols, params in pushed if isinstance(size, int)]
    cost = {}
    for family in (_GAUSS, _LAPLACE, _CAUCHY):
        probe = constriction.stream.stack.AnsCoder()
        for size, symbols, params in values:
            model, args = _value_model(size, family, *params)
            probe.encode_reverse(symbols, model, *args)
        cost[family] = probe.num_bits()
    family = min(cost, key=cost.__getitem__)
    coder = constriction.stream.stack.AnsCoder()
    for model, symbols, params in reversed(pushed):
        if isinstance(model, int):  # a value chunk: alphabet size, (mean, spread)
            model, params = _value_model(model, family, *params)
        coder.encode_reverse(symbols, model, *params)
    return replace(p, family=family).pack() + coder.get_compressed().astype("<u4").tobytes()


def encode_levels(
    q: np.ndarray, bits: int, zero: int = 0, slope: float | None = None, activation: str | None = None
) -> bytes:
    """Code an integer array with values in ``[0, 2**bits)`` losslessly (no container, no range).

    ``zero`` is the level of the real value 0.  What produced the features picks the coding mode:
    ``activation="other"`` → the dense mode; a known ``slope`` (0 for ReLU, the leaky slope otherwise) →
    the sparse mode (significance flags, un-leaking below ``zero``); neither → the dense mode, and also
    the sparse mode when at least :data:`SPARSE_MIN_FRACTION` of the values sit at ``zero`` or a tenth
    lie below it (slope :data:`DEFAULT_LEAKY_SLOPE` then), keeping the shorter.  A fixed-width copy of
    the levels is the fallback when it is shorter still.
    """
    if not 1 <= bits <= MAX_BITS:
        raise CodecError(f"nearlossless: bits must be in 1..{MAX_BITS}, got {bits}")
    top = (1 << bits) - 1
    q = np.asarray(q)
    flat = q.reshape(-1).astype(np.int64)
    if flat.size == 0:
        return b""
    if flat.min() < 0 or flat.max() > top:
        raise CodecError(f"nearlossless: levels must lie in [0, {top}], got [{flat.min()}, {flat.max()}]")
    if not 0 <= zero <= top:
        raise CodecError(f"nearlossless: zero level {zero} outside [0, {top}]")
    lay = _layout(*_planes(q.shape))
    below, at_zero = float((flat < zero).mean()), float((flat == zero).mean())
    candidates: list[tuple[int, float]] = []  # (mode, slope)
    if top >= 2 and activation != "other":
        if slope is not None:
            candidates.append((_MODE_SPARSE, slope))
        elif at_zero >= SPARSE_MIN_FRACTION or below >= 0.1:
            candidates.append((_MODE_SPARSE, DEFAULT_LEAKY_SLOPE if below >= 0.1 else 0.0))
    if slope is None or not candidates:
        candidates.insert(0, (_MODE_DENSE, 0.0))
    best = b""
    for mode, s in candidates:
        data = _encode_with(flat, lay, top, zero, mode, int(np.clip(round(s * 256), 0, 255)))
        if not best or len(data) < len(best):
            best = data
    if flat.size <= HIST_MAX_VALUES and lay.H * lay.W <= HIST_MAX_PLANE and bits <= 10:
        data = _encode_hist(flat, top)
        if len(data) < len(best):
            best = data
    raw = bytes([_MODE_RAW]) + _pack_bits(flat, bits)
    return raw if len(raw) <= len(best) else best


def _hist_probs(counts: np.ndarray) -> np.ndarray:
    """Order-0 model from the levels seen so far: a small floor, the counts and their binomial blur
    (integers until the final division, so both sides build the same table)."""
    blur = np.convolve(counts, _HIST_KERNEL)[4 : 4 + len(counts)]  # centred, any alphabet size
    weights = 102 + 512 * counts + blur
    return (weights / weights.sum()).astype(np.float32)


def _hist_chunks(n: int) -> list[tuple[int, int]]:
    size = max(64, n // 64)
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def _encode_hist(flat: np.ndarray, top: int) -> bytes:
    """Levels in raster order under an adaptive order-0 histogram, refreshed every chunk."""
    import constriction

    counts = np.zeros(top + 1, dtype=np.int64)
    models = []
    for a, b in _hist_chunks(len(flat)):
        models.append(_hist_probs(counts))
        counts += np.bincount(flat[a:b], minlength=top + 1)
    coder = constriction.stream.stack.AnsCoder()
    for (a, b), probs in zip(reversed(_hist_chunks(len(flat))), reversed(models)):
        coder.encode_reverse(flat[a:b].astype(np.int32), constriction.stream.model.Categorical(probs, perfect=False))
    return bytes([_MODE_HIST]) + coder.get_compressed().astype("<u4").tobytes()


def _decode_hist(words: bytes, n: int, top: int) -> np.ndarray:
    import constriction

    if len(words) % 4:
        raise BitstreamError(f"nearlossless: ANS payload of {len(words)} bytes is not a multiple of 4")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    counts = np.zeros(top + 1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    for a, b in _hist_chunks(n):
        model = constriction.stream.model.Categorical(_hist_probs(counts), perfect=False)
        out[a:b] = coder.decode(model, b - a)
        counts += np.bincount(out[a:b], minlength=top + 1)
    return out


def _pack_bits(flat: np.ndarray, bits: int) -> bytes:
    planes = (flat[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    return np.packbits(planes.astype(np.uint8).ravel()).tobytes()


def _unpack_bits(data: bytes, n: int, bits: int) -> np.ndarray:
    if len(data) != (n * bits + 7) // 8:
        raise BitstreamError(f"nearlossless: raw payload of {len(data)} bytes, expected {(n * bits + 7) // 8}")
    planes = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: n * bits].reshape(n, bits).astype(np.int64)
    return (planes << np.arange(bits - 1, -1, -1)).sum(axis=1)


def decode_levels(data: bytes, shape: tuple[int, ...], bits: int, zero: int = 0) -> np.ndarray:
    """Inverse of :func:`encode_levels`: the uint16 array of ``shape``."""
    import constriction

    if not 1 <= bits <= MAX_BITS:
        raise CodecError(f"nearlossless: bits must be in 1..{MAX_BITS}, got {bits}")
    top = (1 << bits) - 1
    lay = _layout(*_planes(tuple(shape)))
    n = lay.P * lay.H * lay.W
    if n == 0:
        if data:
            raise BitstreamError(f"nearlossless: {len(data)} unexpected bytes for an empty tensor")
        return np.zeros(shape, dtype=np.uint16)
    if data[:1] == bytes([_MODE_RAW]):
        return _unpack_bits(data[1:], n, bits).astype(np.uint16).reshape(shape)
    if data[:1] == bytes([_MODE_HIST]):
        if n > HIST_MAX_VALUES or lay.H * lay.W > HIST_MAX_PLANE or bits > 10:
            raise BitstreamError("nearlossless: histogram mode for a tensor it is never used for")
        return _decode_hist(data[1:], n, top).astype(np.uint16).reshape(shape)
    p, pos = _Params.unpack(data, top, lay)
    words = data[pos:]
    if len(words) % 4:
        raise BitstreamError(f"nearlossless: ANS payload of {len(words)} bytes is not a multiple of 4")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    q = _run(lay, p, top, zero, None, coder)
    if q.min() < 0 or q.max() > top:
        raise BitstreamError("nearlossless: payload decodes to levels out of range")
    return q.astype(np.uint16).reshape(shape)


# --- the codec -------------------------------------------------------------------------------------------
_SLOPES = {"relu": 0.0, "relu6": 0.0}


@register_codec
class NearLossless(Codec):
    """n-bit min–max quantization, then lossless feature-specific coding of the integers.

    Args:
        bits: quantizer bit depth (1–16); the integers are coded losslessly, so this is the only loss.
    """

    codec_id = "nearlossless"
    description = "n-bit quantization + lossless feature coder (channel contexts, ReLU/leaky significance, ANS)"
    sweep = tuple({"bits": b} for b in (10, 8, 6, 4))

    def __init__(self, bits: int = 8) -> None:
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
            raise CodecError(f"nearlossless: bits must be an integer in 1..{MAX_BITS}, got {bits!r}")
        self.bits = bits
        self._activation: str | None = None
        self._slope: float | None = None

    @property
    def top(self) -> int:
        return (1 << self.bits) - 1

    # --- fitted state: only the activation that produced the features, read from the split point --------
    def fit(self, features: Any, activation: Activation | None = None) -> "NearLossless":
        """Record the activation of the split point (``relu``/``relu6``/``leaky_relu`` + slope, ``other``);
        it picks the coding mode.  Nothing else is learned: every statistic adapts inside each tensor."""
        as_array(features, what="calibration features")  # validates the input
        slope = None if activation is None else activation.negative_slope
        activation = None if activation is None else activation.kind
        if activation in _SLOPES:
            self._activation, self._slope = activation, _SLOPES[activation]
        elif activation == "leaky_relu" and isinstance(slope, (int, float)) and 0 <= slope < 1:
            self._activation, self._slope = activation, float(slope)
        elif activation is not None:
            self._activation, self._slope = "other", None
        else:
            self._activation = self._slope = None
        return self

    def get_state(self) -> dict[str, Any] | None:
        if self._activation is None:
            return None
        return {"activation": self._activation, "slope": self._slope}

    def set_state(self, state: dict[str, Any]) -> None:
        activation = state.get("activation") if isinstance(state, dict) else None
        slope = state.get("slope") if isinstance(state, dict) else None
        ok_slope = slope is None or (not isinstance(slope, bool) and isinstance(slope, (int, float)) and 0 <= slope < 1)
        known = activation in ("relu", "relu6", "leaky_relu", "other")
        if not known or not ok_slope or (slope is None) != (activation == "other"):
            raise CodecError(
                f"nearlossless: state needs an 'activation' (relu, relu6, leaky_relu, other) and its 'slope' "
                f"in [0, 1) (null for other), got {state!r}"
            )
        self._activation, self._slope = activation, None if slope is None else float(slope)

    # --- coding ------------------------------------------------------------------------------------------
    def encode_array(self, x: np.ndarray) -> bytes:
        q, lo, hi = quantize(x, self.bits)
        head = _RANGE.pack(lo, hi)
        if q.size == 0 or hi <= lo:
            return head  # constant tensor: the range says it all
        zero = _zero_level(lo, hi, self.top)
        return head + encode_levels(q, self.bits, zero, slope=self._slope, activation=self._activation)

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        if len(payload) < _RANGE.size:
            raise BitstreamError(f"nearlossless: payload of {len(payload)} bytes is shorter than its range header")
        lo, hi = _RANGE.unpack_from(payload)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise BitstreamError(f"nearlossless: invalid value range [{lo}, {hi}] in payload")
        if lo == hi:
            if len(payload) != _RANGE.size:
                raise BitstreamError("nearlossless: constant tensor followed by unexpected bytes")
            return np.full(shape, lo, dtype=np.float32)
        q = decode_levels(payload[_RANGE.size :], shape, self.bits, _zero_level(lo, hi, self.top))
        return dequantize(q, lo, hi, self.bits)
