"""``lightweight``: model-derived clipping + entropy-constrained scalar quantizer + ANS, no retraining.

After Choi, Bajić & Cohen, "Lightweight compression of intermediate neural network features for
collaborative intelligence" (2021; seed 000, ``shared/notes/methods.md`` §1)::

    fit (once, ≤ 64 calibration samples)                 encode (per sample)         decode
    ────────────────────────────────────                 ───────────────────         ──────
    features ─► pre-activation model (Gaussian /         y ─► cell index             ANS ─► index
      Laplace / generalised Gaussian, seen through         (searchsorted on           ─► levels[c, index]
      ReLU / leaky-ReLU with the model's slope)            N-1 thresholds)            (table lookup)
      ─► clip range + levels (min D + λR)                ─► ANS (constriction)
      ─► ECSQ design ─► integer probability tables
      ═════════════ codec config, sent once ═════════════►

``fit`` builds everything the decoder needs and keeps it in the codec config: the thresholds, the
reconstruction levels and integer probability tables (counts summing to 2^16).  The receiver gets the config
once: ``encode(x, config="ref")`` writes only its 4-byte reference, so a per-sample stream is the 16-byte
container + the ANS words (up to 3 trailing zero bytes dropped), nothing else.  A receiver holds the config
in a :class:`~splitcodec.codecs.ConfigStore` (``store.add(codec.get_config())``, or ``splitcodec encode
--config-out codec.json`` then ``splitcodec decode --config codec.json``).  ``encode(x)`` (the default)
carries the config inline instead: self-describing, but kilobytes per stream.

Rate knob: ``lam`` (λ, in units of the calibration features' mean square per bit:
``J = MSE / E[y²] + λ · bits``).  The clip range and — unless ``levels`` is given — the number of levels are
picked jointly by minimising ``J`` under the fitted model (λ = 0 is the MSE-optimal clip); the ECSQ design
(Chou–Lookabaugh–Gray) then runs on the clipped calibration features with the same λ, the level nearest 0
pinned at 0 (ReLU zero mass; leaky-ReLU's dense region around 0).  Ablations are parameters:
``clip="minmax" | "percentile" | "model"``, ``quantizer="uniform" | "ecsq"``, ``per_channel`` (a quantizer
per channel).

Three refinements of the coding, each a parameter that is on by default and measured in
``benchmarks/lightweight.py``; none adds per-sample header bytes, all stay table lookups:

* ``channel_tables``: probability tables per group of channels with similar index histograms (at most
  ``TABLE_GROUPS``, clustered at fit time; the quantizer is shared); channels differ a lot in how often
  they are active.
* ``channel_levels``: one reconstruction value per (channel, cell) — the calibration centroid — instead of
  one per cell.  Same thresholds, same rate; it removes the per-channel offset a shared level leaves
  (measured: this matters for leaky-ReLU cuts, where most values share the cell around 0).
* ``context``: the indices of a 4-D tensor are coded in two passes over a checkerboard: the anchors
  ((h + w) even), then the others with one of 5 tables chosen by how many of their 4 anchor neighbours are
  not at the rest level.  Both passes decode with vectorised table lookups.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> calib = torch.relu(torch.randn(16, 8, 6, 6))
>>> codec = get_codec("lightweight", lam=0.05).fit(calib)
>>> data = codec.encode(calib[:1], config="ref")
>>> y = codec.decode(data)
>>> y.shape == calib[:1].shape and bool((y >= 0).all())
True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from splitcodec import bitstream
from splitcodec.codecs.base import Codec, as_array
from splitcodec.codecs.registry import register_codec
from splitcodec.entropy import quantize_pmf
from splitcodec.errors import BitstreamError, CodecError
from splitcodec.quantization import (
    ACTIVATIONS,
    FAMILIES,
    RELU6_CAP,
    FeatureModel,
    ScalarQuantizer,
    choose_uniform,
    design_ecsq,
    fit_feature_model,
    model_cost,
    optimal_range,
    uniform_quantizer,
)

if TYPE_CHECKING:
    from splitcodec.split import Activation

__all__ = ["Lightweight", "CALIBRATION_SAMPLES", "PRECISION", "CONTEXTS"]

#: At most this many calibration samples are used by ``fit`` (the first ones given).
CALIBRATION_SAMPLES = 64
#: Probability tables are integer counts summing to 2**PRECISION.
PRECISION = 16
MAX_LEVELS = 64
#: With channel_tables, channels are clustered into at most this many tables (one ANS call per table).
TABLE_GROUPS = 16
#: Pseudo-observations of the tensor's index histogram mixed into every channel or context table.
TABLE_PRIOR = 32.0
#: A (channel, cell) centroid needs this many calibration values, else the cell's shared level is kept.
MIN_CENTROID_COUNT = 20
#: Context classes of the non-anchor indices: 0..4 active anchor neighbours.
CONTEXTS = 5
_CLIPS = ("model", "percentile", "minmax")
_QUANTIZERS = ("ecsq", "uniform")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class _Design:
    """One quantizer with what it was designed from (the whole tensor, or one channel)."""

    quantizer: ScalarQuantizer
    model: FeatureModel | None
    clip: tuple[float, float]


@dataclass
class _Fitted:
    """Everything ``fit`` decides; ``channels`` is set when anything is per channel."""

    activation: str
    slope: float
    channels: int | None
    designs: list[_Design]  # 1 (shared) or one per channel
    tables: list[np.ndarray]  # the plain (or anchor) indices' tables: 1, or one per channel group
    table_of: np.ndarray | None = None  # (channels,) table index of each channel, when there are several
    ctx_tables: list[np.ndarray] | None = None  # CONTEXTS tables for the non-anchor indices
    rest: int = 0  # the index the context counts against (the most frequent one)
    channel_levels: np.ndarray | None = None  # (channels, N) float32 reconstruction table

    @cached_property
    def groups(self) -> list[tuple[int, np.ndarray, int]]:
        """``(table, its channels, levels)`` per table, in decoding order (channels in increasing order)."""
        assert self.table_of is not None
        out = []
        for t in range(len(self.tables)):
            members = np.flatnonzero(self.table_of == t)
            n = self.designs[int(members[0]) if len(self.designs) > 1 else 0].quantizer.n if members.size else 1
            out.append((t, members, n))
        return out


def _ans_model(counts: np.ndarray):
    import constriction

    probs = (counts.astype(np.float64) / float(1 << PRECISION)).astype(np.float32)  # exact: counts < 2**24
    return constriction.stream.model.Categorical(probs, perfect=False)


@register_codec
class Lightweight(Codec):
    """Model-derived clipping + ECSQ (or uniform) scalar quantizer + ANS; decoder is a table lookup."""

    codec_id = "lightweight"
    description = "clip from a fitted ReLU/leaky-ReLU error model + entropy-constrained quantizer + ANS (no retraining)"
    needs_fit = True
    sweep = tuple({"lam": lam} for lam in (0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5))

    def __init__(
        self,
        lam: float = 0.2,
        levels: int | None = None,
        quantizer: str = "ecsq",
        clip: str = "model",
        percentile: float = 99.9,
        family: str = "auto",
        channel_tables: bool = True,
        channel_levels: bool = True,
        context: bool = True,
        per_channel: bool = False,
        max_levels: int = 64,
    ) -> None:
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise CodecError(f"lightweight: lam must be a finite number >= 0, got {lam!r}")
        if not _is_int(max_levels) or not 2 <= max_levels <= MAX_LEVELS:
            raise CodecError(f"lightweight: max_levels must be an integer in 2..{MAX_LEVELS}, got {max_levels!r}")
        if levels is not None and (not _is_int(levels) or not 2 <= levels <= MAX_LEVELS):
            raise CodecError(f"lightweight: levels must be null (chosen by the model) or an integer in 2..{MAX_LEVELS}, got {levels!r}")
        if quantizer not in _QUANTIZERS:
            raise CodecError(f"lightweight: quantizer must be one of {_QUANTIZERS}, got {quantizer!r}")
        if clip not in _CLIPS:
            raise CodecError(f"lightweight: clip must be one of {_CLIPS}, got {clip!r}")
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 50 < percentile <= 100:
            raise CodecError(f"lightweight: percentile must be in (50, 100], got {percentile!r}")
        if family != "auto" and family not in FAMILIES:
            raise CodecError(f"lightweight: family must be 'auto' or one of {FAMILIES}, got {family!r}")
        flags = {"channel_tables": channel_tables, "channel_levels": channel_levels, "context": context, "per_channel": per_channel}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise CodecError(f"lightweight: {name} must be true or false, got {value!r}")
        self.lam = lam
        self.levels = levels
        self.quantizer = quantizer
        self.clip = clip
        self.percentile = percentile
        self.family = family
        self.channel_tables = channel_tables
        self.channel_levels = channel_levels
        self.context = context
        self.per_channel = per_channel
        self.max_levels = max_levels
        self._fit: _Fitted | None = None
        self._ans: dict[tuple[str, int], Any] = {}
        self._ref: tuple[Any, tuple[Any, ...], bytes] | None = None

    # --- fit ---------------------------------------------------------------------------------------------
    def fit(self, features: torch.Tensor | np.ndarray, activation: Activation | None = None) -> "Lightweight":
        """Fit the error model and design the quantizer(s) on at most 64 calibration samples (dim 0).

        ``activation`` (e.g. ``split_point.act``) says what produced the features; without it,
        non-negative features are taken as ReLU outputs and anything else as ``other``.  The channel
        refinements need features shaped (N, C, ...) (the context model (N, C, H, W)); for other shapes
        they are left out.
        """
        arr, _ = as_array(features, what="calibration features")
        if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
            raise CodecError("lightweight.fit: need at least one non-empty calibration sample on dim 0")
        if not np.isfinite(arr).all():
            raise CodecError("lightweight.fit: calibration features hold non-finite values")
        arr = arr[:CALIBRATION_SAMPLES]
        if self.per_channel and arr.ndim < 3:
            raise CodecError(f"lightweight.fit: per_channel needs features shaped (N, C, ...), got {arr.shape}")
        kind, slope = self._activation_of(arr, activation)
        lam_abs = self.lam * float(np.mean(np.square(arr, dtype=np.float64)))
        if self.per_channel:
            self._set(self._fit_per_channel(arr, kind, slope, lam_abs))
        else:
            self._set(self._fit_shared(arr, kind, slope, lam_abs))
        return self

    def _fit_per_channel(self, arr: np.ndarray, activation: str, slope: float, lam_abs: float) -> _Fitted:
        planes = [np.ascontiguousarray(arr[:, c]).ravel() for c in range(arr.shape[1])]
        # The number of levels is chosen once for the tensor; each channel gets its own clip and design.
        n = self.levels
        if n is None and self.clip == "model":
            tensor_model, _ = fit_feature_model(arr, activation, slope, self.family)
            if tensor_model is not None:
                n = choose_uniform(tensor_model, lam_abs, None, self.max_levels)[0]
        designs = [self._design(y, activation, slope, lam_abs, n, grid=24) for y in planes]
        # each channel's own histogram, with half a count per level so that no level is impossible
        tables = [_table(np.bincount(d.quantizer.quantize(y), minlength=d.quantizer.n) + 0.5) for d, y in zip(designs, planes)]
        return _Fitted(activation, slope, arr.shape[1], designs, tables, table_of=np.arange(arr.shape[1]))

    def _fit_shared(self, arr: np.ndarray, activation: str, slope: float, lam_abs: float) -> _Fitted:
        design = self._design(arr.ravel(), activation, slope, lam_abs, self.levels)
        q = design.quantizer
        idx = q.quantize(arr)
        hist = np.bincount(idx.ravel(), minlength=q.n).astype(np.float64)
        prior = TABLE_PRIOR * hist / hist.sum()  # what a table knows before its own observations
        has_channels = arr.ndim >= 3
        fitted = _Fitted(activation, slope, None, [design], [], rest=int(np.argmax(hist)))
        plain = idx
        if self.context and arr.ndim == 4 and q.n > 1:
            anchor = _anchors(arr.shape)
            plain = np.where(anchor, idx, -1)  # non-anchors are coded under their context
            counts = _neighbour_counts(idx, anchor, fitted.rest)[..., ~anchor]
            others = idx[..., ~anchor]
            fitted.ctx_tables = [_table(np.bincount(others[counts == k], minlength=q.n) + prior) for k in range(CONTEXTS)]
        if self.channel_tables and has_channels and q.n > 1 and arr.shape[1] > 1:
            hists = np.stack([_hist(plain[:, c], q.n) for c in range(arr.shape[1])])
            fitted.table_of = _group_channels(hists, min(TABLE_GROUPS, arr.shape[1]))
            groups = int(fitted.table_of.max()) + 1
            fitted.tables = [_table(hists[fitted.table_of == g].sum(0) + prior) for g in range(groups)]
        else:
            fitted.tables = [_table(_hist(plain, q.n) + prior)]
        if self.channel_levels and has_channels:
            fitted.channel_levels = _channel_centroids(arr, idx, q.levels)
        if fitted.table_of is not None or fitted.channel_levels is not None:
            fitted.channels = arr.shape[1]
        return fitted

    def _set(self, fitted: _Fitted) -> None:
        self._fit = fitted
        self._ans = {}

    def _activation_of(self, arr: np.ndarray, activation: Activation | None) -> tuple[str, float]:
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

    def _design(self, y: np.ndarray, activation: str, slope: float, lam_abs: float, n: int | None, grid: int = 48) -> _Design:
        one_sided = activation in ("relu", "relu6")
        model, _ = fit_feature_model(y, activation, slope, self.family)
        y_lo, y_hi = float(y.min()), float(y.max())
        if model is None or not y_hi > y_lo:
            level = 0.0 if one_sided else float(np.float32(y.mean()))
            return _Design(ScalarQuantizer(np.zeros(0), np.array([level])), model, (level, level))
        if self.clip == "model":
            if n is None:
                n, lo, hi, _ = choose_uniform(model, lam_abs, None, self.max_levels)
            else:
                lo, hi, _ = optimal_range(model, n, lam_abs, grid=grid)
        else:
            if self.clip == "minmax":
                lo, hi = y_lo, y_hi
            else:
                lo, hi = float(np.percentile(y, 100.0 - self.percentile)), float(np.percentile(y, self.percentile))
                if not hi > lo:
                    lo, hi = y_lo, y_hi
            if one_sided:
                lo = 0.0
            if n is None:  # levels minimising D + λR on this range, under the model
                n = min(range(2, self.max_levels + 1), key=lambda k: _j(model, uniform_quantizer(lo, hi, k), lam_abs))
        q = uniform_quantizer(lo, hi, n)
        if self.quantizer == "ecsq" and q.n > 1:
            q = design_ecsq(y, q.levels, lam_abs, lo=lo, hi=hi, fix_zero=one_sided)
        return _Design(q, model, (float(lo), float(hi)))

    # --- state -------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any] | None:
        f = self._fit
        if f is None:
            return None
        return {
            "activation": f.activation,
            "slope": f.slope,
            "channels": f.channels,
            "thresholds": [d.quantizer.thresholds.tolist() for d in f.designs],
            "levels": [d.quantizer.levels.tolist() for d in f.designs],
            "clip": [list(d.clip) for d in f.designs],
            "model": [None if d.model is None else d.model.to_json() for d in f.designs],
            "counts": [t.tolist() for t in f.tables],
            "table_of_channel": None if f.table_of is None else f.table_of.tolist(),
            "context": None if f.ctx_tables is None else {"rest": f.rest, "counts": [t.tolist() for t in f.ctx_tables]},
            "channel_levels": None if f.channel_levels is None else f.channel_levels.tolist(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        try:
            activation = state["activation"]
            slope = float(state["slope"])
            channels = state["channels"]
            rows = list(zip(state["thresholds"], state["levels"], state["clip"], state["model"], strict=True))
            tables = [np.asarray(c, dtype=np.int64) for c in state["counts"]]
            raw_of = state.get("table_of_channel")
            table_of = None if raw_of is None else np.asarray(raw_of, dtype=np.int64)
            context = state.get("context")
            ctx_tables = None if context is None else [np.asarray(c, dtype=np.int64) for c in context["counts"]]
            rest = 0 if context is None else context["rest"]
            raw_levels = state.get("channel_levels")
            channel_levels = None if raw_levels is None else np.asarray(raw_levels, dtype=np.float64)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"lightweight: malformed state ({exc})") from exc
        if activation not in ACTIVATIONS:
            raise CodecError(f"lightweight: state has unknown activation {activation!r}")
        if channels is not None and (not _is_int(channels) or channels < 1):
            raise CodecError(f"lightweight: state announces {channels!r} channels")
        if len(rows) not in ({1} if channels is None else {1, channels}):
            raise CodecError(f"lightweight: state has {len(rows)} quantizers for channels={channels!r}")
        if table_of is None:
            if len(tables) != 1 or len(rows) != 1:
                raise CodecError("lightweight: several quantizers or tables need a table_of_channel map")
        elif channels is None or table_of.shape != (channels,) or table_of.min(initial=0) < 0 or (
            table_of.max(initial=0) >= len(tables)
        ):
            raise CodecError(f"lightweight: table_of_channel must map {channels} channels to the {len(tables)} tables")
        designs = []
        for i, (t, r, clip, m) in enumerate(rows):
            try:
                t64, r64 = np.asarray(t, dtype=np.float64), np.asarray(r, dtype=np.float64)
                q = ScalarQuantizer(t64, r64)
                model = None if m is None else FeatureModel.from_json(m, activation, slope)
                clip_t = (float(clip[0]), float(clip[1]))
            except (TypeError, ValueError, IndexError, OverflowError) as exc:
                raise CodecError(f"lightweight: state of quantizer {i} is malformed ({exc})") from exc
            if not (np.array_equal(q.levels, r64) and np.array_equal(q.thresholds, t64)) or q.n > MAX_LEVELS:
                raise CodecError(f"lightweight: quantizer {i} must hold at most {MAX_LEVELS} float32 levels")
            designs.append(_Design(q, model, clip_t))
        if len(designs) > 1 and (table_of is None or not np.array_equal(table_of, np.arange(len(designs)))):
            raise CodecError("lightweight: per-channel quantizers need one table per channel")
        for i, counts in enumerate(tables):
            _check_table(counts, designs[i if len(designs) > 1 else 0].quantizer.n, f"table {i}")
        n = designs[0].quantizer.n
        if ctx_tables is not None:
            if len(designs) != 1 or len(ctx_tables) != CONTEXTS or not _is_int(rest) or not 0 <= rest < n:
                raise CodecError(f"lightweight: a context state needs one quantizer, {CONTEXTS} tables and a rest index < {n}")
            for i, counts in enumerate(ctx_tables):
                _check_table(counts, n, f"context table {i}")
        if channel_levels is not None:
            if len(designs) != 1 or channels is None or channel_levels.shape != (channels, n):
                raise CodecError(f"lightweight: channel_levels must be {channels} × {n} values for one shared quantizer")
            if not (np.isfinite(channel_levels).all() and np.array_equal(channel_levels.astype(np.float32), channel_levels)):
                raise CodecError("lightweight: channel_levels must be finite float32 values")
            channel_levels = channel_levels.astype(np.float32)
        self._set(_Fitted(activation, slope, channels, designs, tables, table_of, ctx_tables, int(rest), channel_levels))

    @property
    def is_fitted(self) -> bool:
        return self._fit is not None

    @property
    def config_ref(self) -> bytes:
        """The 4-byte config reference, cached until a re-fit or a parameter change (the config is large)."""
        params = tuple(getattr(self, name) for name in _PARAM_NAMES)
        if self._ref is None or self._ref[0] is not self._fit or self._ref[1] != params:
            self._ref = (self._fit, params, bitstream.config_ref(self.get_config()))
        return self._ref[2]

    # --- coding ------------------------------------------------------------------------------------------
    #
    # Payload: ANS words of, in decoding order, (1) the "plain" indices — every index, or with the context
    # model only the checkerboard anchors ((h + w) even) — per channel (channel tables) or all at once,
    # then (2) with the context model, the other indices grouped by their context (how many of their four
    # anchor neighbours are not at the rest index), each group in raster order.

    def _fitted(self, shape: tuple[int, ...]) -> _Fitted:
        f = self._fit
        assert f is not None
        if f.channels is not None and (len(shape) < 2 or shape[1] != f.channels):
            raise CodecError(f"lightweight: fitted for {f.channels} channels on dim 1, got a tensor of shape {shape}")
        return f

    def _model(self, kind: str, i: int):
        key = (kind, i)
        if key not in self._ans:
            f = self._fit
            assert f is not None
            self._ans[key] = _ans_model(f.tables[i] if kind == "t" else f.ctx_tables[i])  # type: ignore[index]
        return self._ans[key]

    @staticmethod
    def _anchor(f: _Fitted, shape: tuple[int, ...]) -> np.ndarray | None:
        return _anchors(shape) if f.ctx_tables is not None and len(shape) == 4 else None

    def encode_array(self, x: np.ndarray) -> bytes:
        import constriction

        f = self._fitted(x.shape)
        if len(f.designs) == 1:
            idx = f.designs[0].quantizer.quantize(x)
        else:
            idx = np.empty(x.shape, dtype=np.int32)
            for c, d in enumerate(f.designs):
                idx[:, c] = d.quantizer.quantize(x[:, c])
        anchor = self._anchor(f, x.shape)
        plain = idx if anchor is None else idx[..., anchor]  # anchors of (N, C, H, W): (N, C, n_anchor)
        seq: list[tuple[np.ndarray, Any]] = []
        if f.table_of is None:
            if f.designs[0].quantizer.n > 1:  # a one-level quantizer costs nothing and is not coded
                seq.append((plain.ravel(), self._model("t", 0)))
        else:
            by_channel = np.ascontiguousarray(np.moveaxis(plain, 1, 0)).reshape(plain.shape[1], -1)
            seq += [(by_channel[members].ravel(), self._model("t", t)) for t, members, n in f.groups if n > 1 and members.size]
        if anchor is not None:
            order, sizes = _by_context(_neighbour_counts(idx, anchor, f.rest)[..., ~anchor])
            grouped = np.split(idx[..., ~anchor].ravel()[order], np.cumsum(sizes)[:-1])
            seq += [(grouped[k], self._model("c", k)) for k in range(CONTEXTS)]
        coder = constriction.stream.stack.AnsCoder()
        for symbols, model in reversed(seq):
            if symbols.size:
                coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), model)
        data = coder.get_compressed().astype("<u4").tobytes()
        # The last word's high bytes are often zero: drop up to 3 of them (restored by decode_array).
        cut = len(data)
        while cut > len(data) - 3 and cut > 0 and data[cut - 1] == 0:
            cut -= 1
        return data[:cut]

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        import constriction

        f = self._fitted(shape)
        padded = payload + b"\0" * (-len(payload) % 4)
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))

        def take(model: Any, count: int) -> np.ndarray:
            if count == 0:
                return np.zeros(0, dtype=np.int32)
            try:
                return np.asarray(coder.decode(model, count), dtype=np.int32)
            except (ValueError, RuntimeError, AssertionError) as exc:
                raise BitstreamError(f"lightweight: entropy-coded payload cannot be decoded: {exc}") from exc

        idx = np.zeros(shape, dtype=np.int32)
        anchor = self._anchor(f, shape)
        plain_shape = shape if anchor is None else shape[:-2] + (int(anchor.sum()),)
        if f.table_of is None:
            count = int(np.prod(plain_shape)) if f.designs[0].quantizer.n > 1 else 0
            plain = take(self._model("t", 0), count).reshape(plain_shape) if count else np.zeros(plain_shape, np.int32)
        else:
            moved = (plain_shape[1], plain_shape[0]) + plain_shape[2:]
            by_channel = np.zeros((moved[0], int(np.prod(moved[1:]))), dtype=np.int32)
            for t, members, n in f.groups:
                if n > 1 and members.size:
                    by_channel[members] = take(self._model("t", t), members.size * by_channel.shape[1]).reshape(-1, by_channel.shape[1])
            plain = np.moveaxis(by_channel.reshape(moved), 0, 1)
        if anchor is None:
            idx[...] = plain
        else:
            idx[..., anchor] = plain
        if anchor is not None:
            counts = _neighbour_counts(idx, anchor, f.rest)[..., ~anchor]
            order, sizes = _by_context(counts)
            others = np.empty(counts.size, dtype=np.int32)
            others[order] = np.concatenate([take(self._model("c", k), int(sizes[k])) for k in range(CONTEXTS)])
            idx[..., ~anchor] = others.reshape(counts.shape)
        if not coder.is_empty():
            raise BitstreamError("lightweight: payload holds more data than the tensor's symbols")
        # the decoder proper: one table lookup per element
        if f.channel_levels is not None:
            channel = np.arange(shape[1]).reshape((1, -1) + (1,) * (len(shape) - 2))
            return f.channel_levels[channel, idx]
        if len(f.designs) == 1:
            return f.designs[0].quantizer.levels[idx]
        out = np.empty(shape, dtype=np.float32)
        for c, d in enumerate(f.designs):
            out[:, c] = d.quantizer.levels[idx[:, c]]
        return out

    # --- reporting ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What ``fit`` chose: activation, levels, clip, model family/parameters, model-predicted MSE and bits."""
        f = self._fit
        if f is None:
            return {}
        d = f.designs
        out: dict[str, Any] = {
            "activation": f.activation,
            "slope": f.slope,
            "quantizers": len(d),
            "tables": len(f.tables),
            "context": f.ctx_tables is not None,
            "channel_levels": f.channel_levels is not None,
        }
        if len(d) == 1:
            q = d[0].quantizer
            out.update(levels=q.levels.tolist(), thresholds=q.thresholds.tolist(), clip=list(d[0].clip))
            if d[0].model is not None:
                mse, bits = model_cost(d[0].model, q)
                out.update(model=d[0].model.to_json(), model_mse=mse, model_bits=bits)
        else:
            out["mean_levels"] = float(np.mean([x.quantizer.n for x in d]))
        return out


_PARAM_NAMES = tuple(Lightweight.param_names())


def _check_table(counts: np.ndarray, n: int, what: str) -> None:
    if counts.shape != (n,) or counts.min() < 1 or int(counts.sum()) != 1 << PRECISION:
        raise CodecError(f"lightweight: {what} needs {n} counts >= 1 summing to 2**{PRECISION}")


def _table(weights: np.ndarray) -> np.ndarray:
    return quantize_pmf(np.asarray(weights, dtype=np.float64), PRECISION)


def _hist(idx: np.ndarray, n: int) -> np.ndarray:
    """Histogram of the indices >= 0 (-1 marks indices coded elsewhere)."""
    flat = idx.ravel()
    return np.bincount(flat[flat >= 0], minlength=n).astype(np.float64)


def _group_channels(hists: np.ndarray, groups: int, iterations: int = 20) -> np.ndarray:
    """Cluster channels (rows of index histograms) into ``groups`` tables of small total code length.

    Start from equal-count groups ordered by how often the channel sits at its most common index, then
    alternate: pool each group's histogram, move each channel to the table that codes it in fewest bits.
    Returned labels are renumbered 0..G-1 in order of first appearance.
    """
    c, n = hists.shape
    p = (hists + 0.5) / (hists + 0.5).sum(1, keepdims=True)
    order = np.argsort(p.max(1), kind="stable")
    labels = np.empty(c, dtype=np.int64)
    labels[order] = np.arange(c) * groups // c
    for _ in range(iterations):
        pooled = np.stack([hists[labels == g].sum(0) for g in range(groups)]) + 0.5
        cost = -hists @ np.log2(pooled / pooled.sum(1, keepdims=True)).T  # bits of channel c under table g
        new = np.argmin(cost, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    _, first = np.unique(labels, return_index=True)
    remap = np.empty(groups, dtype=np.int64)
    remap[labels[np.sort(first)]] = np.arange(first.size)
    return remap[labels]


def _channel_centroids(arr: np.ndarray, idx: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(C, N) table: the mean calibration value of each (channel, cell), or the cell's level when rare."""
    c_count, n = arr.shape[1], levels.size
    key = (np.arange(c_count).reshape((1, -1) + (1,) * (arr.ndim - 2)) * n + idx).ravel()
    counts = np.bincount(key, minlength=c_count * n).reshape(c_count, n)
    sums = np.bincount(key, weights=arr.astype(np.float64).ravel(), minlength=c_count * n).reshape(c_count, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums / counts
    table = np.where(counts >= MIN_CENTROID_COUNT, centroids, levels[None, :].astype(np.float64))
    return table.astype(np.float32)


def _anchors(shape: tuple[int, ...]) -> np.ndarray:
    """The checkerboard of a (N, C, H, W) tensor's planes: True where (h + w) is even."""
    h, w = shape[-2:]
    return (np.add.outer(np.arange(h), np.arange(w)) % 2) == 0


def _neighbour_counts(idx: np.ndarray, anchor: np.ndarray, rest: int) -> np.ndarray:
    """For every position, how many of its 4 neighbours are anchors whose index is not ``rest`` (0..4)."""
    active = ((idx != rest) & anchor).view(np.uint8)
    out = np.zeros(idx.shape, dtype=np.uint8)
    out[..., 1:, :] += active[..., :-1, :]
    out[..., :-1, :] += active[..., 1:, :]
    out[..., :, 1:] += active[..., :, :-1]
    out[..., :, :-1] += active[..., :, 1:]
    return out


def _by_context(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the flattened non-anchor indices) sorted by context, and each context's size."""
    flat = counts.ravel()
    return np.argsort(flat, kind="stable"), np.bincount(flat, minlength=CONTEXTS)


def _j(model: FeatureModel, q: ScalarQuantizer, lam: float) -> float:
    d, r = model_cost(model, q)
    return d + lam * r
