"""The ``nearlossless`` codec: min–max quantization to ``bits`` bits, then :func:`.encode_levels`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from splitcodec.codecs.base import Codec, as_array
from splitcodec.codecs.nearlossless.levels import MAX_BITS, decode_levels, encode_levels
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import CodecError, PayloadError
from splitcodec.minmax import dequantize, pack_range, quantize, read_range

if TYPE_CHECKING:
    from splitcodec.split import Activation

__all__ = ["NearLossless", "zero_level"]

_SLOPES = {"relu": 0.0, "relu6": 0.0}  # activations without a negative side: slope 0


def zero_level(lo: float, hi: float, top: int) -> int:
    """The level the real value 0 quantizes to (0 when 0 lies outside the range)."""
    if hi <= lo or lo > 0 or hi < 0:
        return 0
    return int(np.clip(np.rint((0.0 - np.float32(lo)) / (np.float32(hi) - np.float32(lo)) * np.float32(top)), 0, top))


def _valid_slope(slope: Any) -> bool:
    return not isinstance(slope, bool) and isinstance(slope, (int, float)) and 0 <= slope < 1


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
        self._activation: str | None = None  # relu, relu6, leaky_relu, other; None: not fitted
        self._slope: float | None = None  # negative slope (0 for relu/relu6; None for other)

    @property
    def top(self) -> int:
        return (1 << self.bits) - 1

    # --- fitted state: only the activation that produced the features, read from the split point --------
    def fit(self, features: Any, activation: Activation | None = None) -> "NearLossless":
        """Record the activation of the split point (``relu``/``relu6``/``leaky_relu`` + slope, ``other``);
        it picks the coding mode.  Nothing else is learned: every statistic adapts inside each tensor."""
        as_array(features, what="calibration features")  # validates the input
        slope = None if activation is None else activation.negative_slope
        kind = None if activation is None else activation.kind
        if kind in _SLOPES:
            self._activation, self._slope = kind, _SLOPES[kind]
        elif kind == "leaky_relu" and isinstance(slope, (int, float)) and 0 <= slope < 1:
            self._activation, self._slope = kind, float(slope)
        elif kind is not None:
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
        known = activation in ("relu", "relu6", "leaky_relu", "other")
        if not known or not (slope is None or _valid_slope(slope)) or (slope is None) != (activation == "other"):
            raise CodecError(
                f"nearlossless: state needs an 'activation' (relu, relu6, leaky_relu, other) and its 'slope' "
                f"in [0, 1) (null for other), got {state!r}"
            )
        self._activation, self._slope = activation, None if slope is None else float(slope)

    # --- coding ------------------------------------------------------------------------------------------
    def encode_array(self, x: np.ndarray) -> bytes:
        q, lo, hi = quantize(x, self.bits, formula="scale")
        head = pack_range(lo, hi)
        if q.size == 0 or hi <= lo:
            return head  # constant tensor: the range says it all
        zero = zero_level(lo, hi, self.top)
        return head + encode_levels(q, self.bits, zero, slope=self._slope, activation=self._activation)

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        lo, hi, offset = read_range(payload, self.codec_id)
        if lo == hi:
            if len(payload) != offset:
                raise PayloadError("nearlossless: constant tensor followed by unexpected bytes")
            return np.full(shape, lo, dtype=np.float32)
        q = decode_levels(payload[offset:], shape, self.bits, zero_level(lo, hi, self.top))
        return dequantize(q, lo, hi, self.bits)
