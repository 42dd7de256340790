"""The ``lightweight`` codec class: parameters, ``fit``, the config state, per-sample coding, ``describe``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from splitcodec.codecs.base import Codec, as_array
from splitcodec.codecs.lightweight.design import fit_per_channel, fit_shared, infer_activation
from splitcodec.codecs.lightweight.error_model import FAMILIES
from splitcodec.codecs.lightweight.payload import decode_indices, encode_indices
from splitcodec.codecs.lightweight.quantizer import model_cost
from splitcodec.codecs.lightweight.state import MAX_LEVELS, FittedState, is_int, state_from_json, state_to_json
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import CodecError, NotFittedError, PayloadError, SplitcodecError

if TYPE_CHECKING:
    import torch

    from splitcodec.split import Activation

__all__ = ["Lightweight", "CALIBRATION_SAMPLES"]

#: At most this many calibration samples are used by ``fit`` (the first ones given).
CALIBRATION_SAMPLES = 64
_CLIPS = ("model", "percentile", "minmax")
_QUANTIZERS = ("ecsq", "uniform")
_FLAGS = ("channel_tables", "channel_levels", "context", "per_channel")


def _check_params(p: Lightweight) -> None:
    """Raise a :class:`CodecError` naming the first invalid constructor parameter."""
    lam, levels, max_levels, percentile = p.lam, p.levels, p.max_levels, p.percentile
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise CodecError(f"lightweight: lam must be a finite number >= 0, got {lam!r}")
    if not is_int(max_levels) or not 2 <= max_levels <= MAX_LEVELS:
        raise CodecError(f"lightweight: max_levels must be an integer in 2..{MAX_LEVELS}, got {max_levels!r}")
    if levels is not None and (not is_int(levels) or not 2 <= levels <= MAX_LEVELS):
        raise CodecError(
            f"lightweight: levels must be null (chosen by the model) or an integer in 2..{MAX_LEVELS}, got {levels!r}"
        )
    if p.quantizer not in _QUANTIZERS:
        raise CodecError(f"lightweight: quantizer must be one of {_QUANTIZERS}, got {p.quantizer!r}")
    if p.clip not in _CLIPS:
        raise CodecError(f"lightweight: clip must be one of {_CLIPS}, got {p.clip!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 50 < percentile <= 100:
        raise CodecError(f"lightweight: percentile must be in (50, 100], got {percentile!r}")
    if p.family != "auto" and p.family not in FAMILIES:
        raise CodecError(f"lightweight: family must be 'auto' or one of {FAMILIES}, got {p.family!r}")
    for name in _FLAGS:
        if not isinstance(getattr(p, name), bool):
            raise CodecError(f"lightweight: {name} must be true or false, got {getattr(p, name)!r}")


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
        _check_params(self)
        self._fit: FittedState | None = None

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
        kind, slope = infer_activation(arr, activation)
        lam_abs = self.lam * float(np.mean(np.square(arr, dtype=np.float64)))
        self._fit = (fit_per_channel if self.per_channel else fit_shared)(arr, kind, slope, lam_abs, self)
        return self

    def get_state(self) -> dict[str, Any] | None:
        return None if self._fit is None else state_to_json(self._fit)

    def set_state(self, state: dict[str, Any]) -> None:
        """Load a JSON state (``get_state``'s); a malformed one raises :class:`CodecError`."""
        try:
            self._fit = state_from_json(state)
        except CodecError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise CodecError(f"lightweight: malformed state ({type(exc).__name__}: {exc})") from exc

    def _fitted(self, shape: tuple[int, ...], error: type[SplitcodecError] = CodecError) -> FittedState:
        f = self._fit
        if f is None:
            raise NotFittedError("lightweight: fit the codec (or load its config) before coding")
        if f.channels is not None and (len(shape) < 2 or shape[1] != f.channels):
            raise error(f"lightweight: fitted for {f.channels} channels on dim 1, got a tensor of shape {shape}")
        return f

    def encode_array(self, x: np.ndarray) -> bytes:
        f = self._fitted(x.shape)
        return encode_indices(f, f.quantize(x))

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        f = self._fitted(shape, PayloadError)
        return f.reconstruct(decode_indices(f, payload, shape))

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

