"""``lightweight``: model-derived clipping + entropy-constrained scalar quantizer + ANS, no retraining.

After Choi, Bajić & Cohen, "Lightweight compression of intermediate neural network features for
collaborative intelligence" (2021; seed 000, ``shared/notes/methods.md`` §1)::

    fit (once, ≤ 64 calibration samples)              encode (per sample)          decode
    ─────────────────────────────────────              ───────────────────          ──────
    features ─► Gaussian/Laplace pre-activation       y ─► cell index              ANS ─► index
               model (ReLU / leaky slope from the          (searchsorted on          ─► levels[index]
               split point) ─► clip range, levels          N-1 thresholds)            (table lookup)
               (min D + λR) ─► ECSQ design ─► integer     ─► ANS (constriction)
               probability table  ══ config, sent once ══►

``fit`` builds everything the decoder needs — thresholds, reconstruction levels and an integer probability
table (counts summing to 2^16), per tensor or per channel — and it lives in the codec config.  The receiver
gets that config once: ``encode(x, config="ref")`` writes only its 4-byte reference, so a per-sample stream
is the 16-byte container + the ANS words (with up to 3 trailing zero bytes dropped), nothing else; a
receiver holds the config in a :class:`~splitcodec.codecs.ConfigStore` (``store.add(codec.get_config())``,
or ``splitcodec encode --config-out codec.json`` / ``splitcodec decode --config codec.json``).  The default
``encode(x)`` carries the config inline instead (self-describing, a few hundred bytes more).

Rate knob: ``lam`` (λ, in units of the calibration features' mean square per bit: ``J = MSE/E[y²] + λ·bits``).
The clip range and — unless ``levels`` is given — the number of levels are picked jointly by minimising
``J`` under the fitted model (λ = 0 is the MSE-optimal clip), then the ECSQ design (Chou–Lookabaugh–Gray,
zero level fixed for ReLU) runs on the clipped calibration features with the same λ.  The ablations of the
paper's parts are parameters: ``clip="minmax" | "percentile" | "model"`` and ``quantizer="uniform" | "ecsq"``.

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
from typing import Any

import numpy as np
import torch

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

__all__ = ["Lightweight", "CALIBRATION_SAMPLES", "PRECISION"]

#: At most this many calibration samples are used by ``fit`` (the first ones given).
CALIBRATION_SAMPLES = 64
#: Probability tables are integer counts summing to 2**PRECISION.
PRECISION = 16
MAX_LEVELS = 64
_CLIPS = ("model", "percentile", "minmax")
_QUANTIZERS = ("ecsq", "uniform")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Group:
    """One quantizer + its entropy model (the whole tensor, or one channel)."""

    __slots__ = ("quantizer", "counts", "model", "clip", "_ans")

    def __init__(self, quantizer: ScalarQuantizer, counts: np.ndarray, model: FeatureModel | None, clip: tuple[float, float]):
        self.quantizer = quantizer
        self.counts = counts
        self.model = model
        self.clip = clip
        self._ans = None

    @property
    def coded(self) -> bool:
        """A one-level group costs no bits and is not entropy-coded."""
        return self.quantizer.n > 1

    def ans_model(self):
        if self._ans is None:
            import constriction

            probs = (self.counts.astype(np.float64) / float(1 << PRECISION)).astype(np.float32)
            self._ans = constriction.stream.model.Categorical(probs, perfect=False)
        return self._ans


@register_codec
class Lightweight(Codec):
    """Model-derived clipping + ECSQ (or uniform) scalar quantizer + ANS; decoder is a table lookup."""

    codec_id = "lightweight"
    description = "clip from a fitted ReLU/leaky-ReLU error model + entropy-constrained quantizer + ANS (no retraining)"
    needs_fit = True
    sweep = tuple({"lam": lam} for lam in (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16))

    def __init__(
        self,
        lam: float = 0.02,
        levels: int | None = None,
        quantizer: str = "ecsq",
        clip: str = "model",
        percentile: float = 99.9,
        family: str = "auto",
        per_channel: bool = False,
        max_levels: int = 16,
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
        if not isinstance(per_channel, bool):
            raise CodecError(f"lightweight: per_channel must be true or false, got {per_channel!r}")
        self.lam = float(lam) if not _is_int(lam) else lam
        self.levels = levels
        self.quantizer = quantizer
        self.clip = clip
        self.percentile = percentile
        self.family = family
        self.per_channel = per_channel
        self.max_levels = max_levels
        self._activation: str | None = None
        self._slope = 0.0
        self._channels: int | None = None
        self._groups: list[_Group] | None = None

    # --- fit ---------------------------------------------------------------------------------------------
    def fit(self, features: torch.Tensor | np.ndarray, split_point: Any = None) -> "Lightweight":
        """Fit the error model and design the quantizer(s) on at most 64 calibration samples (dim 0).

        ``split_point.activation`` / ``.negative_slope`` say what produced the features; without a split
        point, non-negative features are taken as ReLU outputs and anything else as ``other``.
        """
        arr, _ = as_array(features, what="calibration features")
        if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
            raise CodecError("lightweight.fit: need at least one non-empty calibration sample on dim 0")
        if not np.isfinite(arr).all():
            raise CodecError("lightweight.fit: calibration features hold non-finite values")
        arr = arr[:CALIBRATION_SAMPLES]
        if self.per_channel and arr.ndim < 3:
            raise CodecError(f"lightweight.fit: per_channel needs features shaped (N, C, ...), got {arr.shape}")
        activation, slope = self._activation_of(arr, split_point)
        lam_abs = self.lam * float(np.mean(np.square(arr, dtype=np.float64)))
        one_sided = activation in ("relu", "relu6")
        if self.per_channel:
            channels = arr.shape[1]
            # The number of levels is chosen once for the tensor; each channel gets its own clip and design.
            n = self.levels
            if n is None and self.clip == "model":
                tensor_model, _ = fit_feature_model(arr, activation, slope, self.family)
                if tensor_model is not None:
                    n = choose_uniform(tensor_model, lam_abs, None, self.max_levels)[0]
            groups = [
                self._design(np.ascontiguousarray(arr[:, c]).ravel(), activation, slope, lam_abs, one_sided, n)
                for c in range(channels)
            ]
        else:
            channels = None
            groups = [self._design(arr.ravel(), activation, slope, lam_abs, one_sided, self.levels)]
        self._activation, self._slope, self._channels, self._groups = activation, slope, channels, groups
        return self

    def _activation_of(self, arr: np.ndarray, split_point: Any) -> tuple[str, float]:
        act = getattr(split_point, "activation", None)
        slope = float(getattr(split_point, "negative_slope", None) or 0.0)
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

    def _design(self, y: np.ndarray, activation: str, slope: float, lam_abs: float, one_sided: bool, n: int | None) -> _Group:
        model, _ = fit_feature_model(y, activation, slope, self.family)
        y_lo, y_hi = float(y.min()), float(y.max())
        if model is None or not y_hi > y_lo:
            level = 0.0 if one_sided else float(np.float32(y.mean()))
            return self._group(ScalarQuantizer(np.zeros(0), np.array([level])), y, model, (level, level))
        if self.clip == "model":
            n_opt, lo, hi, _ = choose_uniform(model, lam_abs, n, self.max_levels) if n is None else (n, *optimal_range(model, n, lam_abs))
            n = n_opt
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
        return self._group(q, y, model, (lo, hi))

    @staticmethod
    def _group(q: ScalarQuantizer, y: np.ndarray, model: FeatureModel | None, clip: tuple[float, float]) -> _Group:
        hist = np.bincount(q.quantize(y), minlength=q.n)
        return _Group(q, quantize_pmf(hist, PRECISION), model, (float(clip[0]), float(clip[1])))

    # --- state -------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any] | None:
        if self._groups is None:
            return None
        g = self._groups
        return {
            "activation": self._activation,
            "slope": self._slope,
            "channels": self._channels,
            "thresholds": [gr.quantizer.thresholds.tolist() for gr in g],
            "levels": [gr.quantizer.levels.tolist() for gr in g],
            "counts": [gr.counts.tolist() for gr in g],
            "clip": [list(gr.clip) for gr in g],
            "model": [None if gr.model is None else gr.model.to_json() for gr in g],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        try:
            activation = state["activation"]
            slope = float(state["slope"])
            channels = state["channels"]
            rows = list(zip(state["thresholds"], state["levels"], state["counts"], state["clip"], state["model"], strict=True))
        except (KeyError, TypeError, ValueError) as exc:
            raise CodecError(f"lightweight: malformed state ({exc})") from exc
        if activation not in ACTIVATIONS:
            raise CodecError(f"lightweight: state has unknown activation {activation!r}")
        if channels is not None and (not _is_int(channels) or channels < 1 or channels != len(rows)):
            raise CodecError(f"lightweight: state announces {channels!r} channels for {len(rows)} quantizers")
        if channels is None and len(rows) != 1:
            raise CodecError(f"lightweight: a per-tensor state needs exactly 1 quantizer, got {len(rows)}")
        groups = []
        for i, (t, r, c, clip, m) in enumerate(rows):
            try:
                q = ScalarQuantizer(np.asarray(t, dtype=np.float64), np.asarray(r, dtype=np.float64))
                counts = np.asarray(c, dtype=np.int64)
                model = None if m is None else FeatureModel(str(m[0]), float(m[1]), float(m[2]), activation, slope)
                clip_t = (float(clip[0]), float(clip[1]))
            except (TypeError, ValueError, IndexError, OverflowError) as exc:
                raise CodecError(f"lightweight: state of quantizer {i} is malformed ({exc})") from exc
            if not np.array_equal(q.levels.astype(np.float64), np.asarray(r, dtype=np.float64)) or not np.array_equal(
                q.thresholds.astype(np.float64), np.asarray(t, dtype=np.float64)
            ):
                raise CodecError(f"lightweight: quantizer {i} holds values that are not float32")
            if q.n > MAX_LEVELS or counts.shape != (q.n,) or counts.min() < 1 or int(counts.sum()) != 1 << PRECISION:
                raise CodecError(f"lightweight: quantizer {i} needs {q.n} counts >= 1 summing to 2**{PRECISION}")
            groups.append(_Group(q, counts, model, clip_t))
        self._activation, self._slope, self._channels, self._groups = activation, slope, channels, groups

    # --- coding ------------------------------------------------------------------------------------------
    def _parts(self, shape: tuple[int, ...]) -> list[tuple[_Group, Any]]:
        assert self._groups is not None
        if self._channels is None:
            return [(self._groups[0], Ellipsis)]
        if len(shape) < 2 or shape[1] != self._channels:
            raise CodecError(f"lightweight: fitted per channel for {self._channels} channels on dim 1, got shape {shape}")
        return [(g, (slice(None), c)) for c, g in enumerate(self._groups)]

    def encode_array(self, x: np.ndarray) -> bytes:
        import constriction

        coder = constriction.stream.stack.AnsCoder()
        for group, where in reversed(self._parts(x.shape)):
            if group.coded:
                coder.encode_reverse(group.quantizer.quantize(x[where]).ravel(), group.ans_model())
        data = coder.get_compressed().astype("<u4").tobytes()
        # The last word's high bytes are often zero: drop up to 3 of them (restored by decode_array).
        cut = len(data)
        while cut > len(data) - 3 and cut > 0 and data[cut - 1] == 0:
            cut -= 1
        return data[:cut]

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        import constriction

        parts = self._parts(shape)
        out = np.empty(shape, dtype=np.float32)
        padded = payload + b"\0" * (-len(payload) % 4)
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))
        for group, where in parts:
            target = out[where]
            if group.coded:
                try:
                    idx = coder.decode(group.ans_model(), target.size)
                except (ValueError, RuntimeError, AssertionError) as exc:
                    raise BitstreamError(f"lightweight: entropy-coded payload cannot be decoded: {exc}") from exc
                out[where] = group.quantizer.levels[np.asarray(idx, dtype=np.intp)].reshape(target.shape)
            else:
                out[where] = group.quantizer.levels[0]
        if not coder.is_empty():
            raise BitstreamError("lightweight: payload holds more data than the tensor's symbols")
        return out

    # --- reporting ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What ``fit`` chose: activation, levels, clip, model family/parameters, model-predicted MSE and bits."""
        if self._groups is None:
            return {}
        g = self._groups
        out: dict[str, Any] = {"activation": self._activation, "slope": self._slope, "groups": len(g)}
        if len(g) == 1:
            gr = g[0]
            out.update(levels=gr.quantizer.levels.tolist(), thresholds=gr.quantizer.thresholds.tolist(), clip=list(gr.clip))
            if gr.model is not None:
                d, r = model_cost(gr.model, gr.quantizer)
                out.update(model=gr.model.to_json(), model_mse=d, model_bits=r)
        else:
            out["mean_levels"] = float(np.mean([gr.quantizer.n for gr in g]))
        return out


def _j(model: FeatureModel, q: ScalarQuantizer, lam: float) -> float:
    d, r = model_cost(model, q)
    return d + lam * r
