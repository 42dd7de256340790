"""The codec's fitted state: quantizer design(s), probability tables, channel levels; and its JSON form.

The JSON form is the ``state`` of the codec config (sent to the receiver once), so its layout is part of
the stream format: keys, order and value types must not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from splitcodec.codecs.lightweight.checkerboard import CONTEXTS
from splitcodec.codecs.lightweight.error_model import ACTIVATIONS, FAMILIES, FeatureModel
from splitcodec.codecs.lightweight.quantizer import ScalarQuantizer
from splitcodec.codecs.lightweight.tables import ans_model, check_table
from splitcodec.errors import CodecError

__all__ = ["MAX_LEVELS", "Design", "FittedState", "state_to_json", "state_from_json", "is_int"]

#: A quantizer has at most this many levels.
MAX_LEVELS = 64


def is_int(v: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class Design:
    """One quantizer with what it was designed from (the whole tensor, or one channel)."""

    quantizer: ScalarQuantizer
    model: FeatureModel | None
    clip: tuple[float, float]


@dataclass
class FittedState:
    """Everything ``fit`` decides; ``channels`` is set when anything is per channel."""

    activation: str
    slope: float
    channels: int | None
    designs: list[Design]  # 1 (shared) or one per channel
    tables: list[np.ndarray]  # the plain (or anchor) indices' tables: 1, or one per channel group
    table_of: np.ndarray | None = None  # (channels,) table index of each channel, when there are several
    ctx_tables: list[np.ndarray] | None = None  # CONTEXTS tables for the non-anchor indices
    rest: int = 0  # the index the context counts against (the most frequent one)
    channel_levels: np.ndarray | None = None  # (channels, N) float32 reconstruction table
    _ans: dict[tuple[str, int], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

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

    def table_model(self, i: int) -> Any:
        """The ANS model of plain table ``i`` (built once)."""
        if ("t", i) not in self._ans:
            self._ans["t", i] = ans_model(self.tables[i])
        return self._ans["t", i]

    def context_model(self, k: int) -> Any:
        """The ANS model of context table ``k`` (built once)."""
        assert self.ctx_tables is not None
        if ("c", k) not in self._ans:
            self._ans["c", k] = ans_model(self.ctx_tables[k])
        return self._ans["c", k]

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Cell indices (int32) of a tensor, per channel when the quantizers are."""
        if len(self.designs) == 1:
            return self.designs[0].quantizer.quantize(x)
        idx = np.empty(x.shape, dtype=np.int32)
        for c, d in enumerate(self.designs):
            idx[:, c] = d.quantizer.quantize(x[:, c])
        return idx

    def reconstruct(self, idx: np.ndarray) -> np.ndarray:
        """The decoder proper: one table lookup per element (float32)."""
        shape = idx.shape
        if self.channel_levels is not None:
            channel = np.arange(shape[1]).reshape((1, -1) + (1,) * (len(shape) - 2))
            return self.channel_levels[channel, idx]
        if len(self.designs) == 1:
            return self.designs[0].quantizer.levels[idx]
        out = np.empty(shape, dtype=np.float32)
        for c, d in enumerate(self.designs):
            out[:, c] = d.quantizer.levels[idx[:, c]]
        return out


def state_to_json(f: FittedState) -> dict[str, Any]:
    """The JSON state of the codec config."""
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


def state_from_json(state: Any) -> FittedState:
    """Parse and check a JSON state; every defect (missing key, wrong type, bad value) is a :class:`CodecError`."""
    if not isinstance(state, dict):
        raise CodecError(f"lightweight: state must be a JSON object, got {type(state).__name__}")
    unknown = sorted(set(state) - _STATE_KEYS)
    if unknown:  # e.g. a corrupted "channel_levels" key would otherwise silently drop the table
        raise CodecError(f"lightweight: state has unknown keys {unknown}")
    try:
        activation, channels = state["activation"], state["channels"]
        slope = _real(state["slope"], "slope")
        rows = list(zip(*(_list(state[k], k) for k in ("thresholds", "levels", "clip", "model")), strict=True))
        tables = [_int_array(c, "counts") for c in _list(state["counts"], "counts")]
        raw_of = state.get("table_of_channel")
        table_of = None if raw_of is None else _int_array(raw_of, "table_of_channel")
        context = state.get("context")
        if context is not None and (not isinstance(context, dict) or set(context) != {"rest", "counts"}):
            raise CodecError('lightweight: state context must be null or {"rest": .., "counts": [..]}')
        ctx_counts = None if context is None else _list(context["counts"], "context counts")
        ctx_tables = None if ctx_counts is None else [_int_array(c, "context counts") for c in ctx_counts]
        rest = 0 if context is None else context["rest"]
        raw_levels = state.get("channel_levels")
        channel_levels = None if raw_levels is None else _real_array(raw_levels, "channel_levels", ndim=2)
    except KeyError as exc:
        raise CodecError(f"lightweight: state lacks the key {exc}") from exc
    except ValueError as exc:  # zip(strict=True): lists of different lengths
        raise CodecError(f"lightweight: malformed state ({exc})") from exc
    _check_layout(activation, channels, len(rows), len(tables), table_of)
    designs = [_design_from_json(i, row, activation, slope) for i, row in enumerate(rows)]
    if len(designs) > 1 and (table_of is None or not np.array_equal(table_of, np.arange(len(designs)))):
        raise CodecError("lightweight: per-channel quantizers need one table per channel")
    for i, counts in enumerate(tables):
        check_table(counts, designs[i if len(designs) > 1 else 0].quantizer.n, f"table {i}")
    n = designs[0].quantizer.n
    if ctx_tables is not None:
        if len(designs) != 1 or len(ctx_tables) != CONTEXTS or not is_int(rest) or not 0 <= rest < n:
            raise CodecError(f"lightweight: a context state needs one quantizer, {CONTEXTS} tables and a rest index < {n}")
        for i, counts in enumerate(ctx_tables):
            check_table(counts, n, f"context table {i}")
    if channel_levels is not None:
        channel_levels = _check_channel_levels(channel_levels, len(designs), channels, n)
    return FittedState(activation, slope, channels, designs, tables, table_of, ctx_tables, int(rest), channel_levels)


#: The keys of a JSON state (what ``state_to_json`` writes).
_STATE_KEYS = frozenset(
    ("activation", "slope", "channels", "thresholds", "levels", "clip", "model", "counts", "table_of_channel",
     "context", "channel_levels")
)
#: The largest finite float32: state values beyond it would overflow when cast.
_F32_MAX = float(np.finfo(np.float32).max)


def _list(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list):
        raise CodecError(f"lightweight: state {what} must be a list, got {type(v).__name__}")
    return v


def _real(v: Any, what: str) -> float:
    """A finite JSON number within the float32 range."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= _F32_MAX:
        raise CodecError(f"lightweight: state {what} must be finite numbers within the float32 range, got {v!r}")
    return float(v)


def _nested(v: Any, what: str, ndim: int) -> list[Any]:
    """The leaves of a ``ndim``-deep list of lists (rows of equal length are checked by numpy)."""
    rows = [_list(v, what)]
    for _ in range(ndim - 1):
        rows = [x for r in rows for x in _list(r, what)]
    return [x for r in rows for x in r]


def _real_array(v: Any, what: str, ndim: int = 1) -> np.ndarray:
    """A float64 array of finite float32-range numbers, ``ndim``-deep lists."""
    for x in _nested(v, what, ndim):
        _real(x, what)
    try:
        return np.asarray(v, dtype=np.float64)
    except ValueError as exc:  # ragged rows
        raise CodecError(f"lightweight: state {what} rows differ in length") from exc


def _int_array(v: Any, what: str) -> np.ndarray:
    """An int64 array of a list of integers in 0..2**31."""
    if not all(is_int(x) and 0 <= x <= 1 << 31 for x in _list(v, what)):
        raise CodecError(f"lightweight: state {what} must be lists of integers in 0..2**31")
    return np.asarray(v, dtype=np.int64)


def _check_layout(activation: Any, channels: Any, quantizers: int, tables: int, table_of: np.ndarray | None) -> None:
    """Activation, channel count, and how quantizers and tables map to channels."""
    if activation not in ACTIVATIONS:
        raise CodecError(f"lightweight: state has unknown activation {activation!r}")
    if channels is not None and (not is_int(channels) or channels < 1):
        raise CodecError(f"lightweight: state announces {channels!r} channels")
    if quantizers not in ({1} if channels is None else {1, channels}):
        raise CodecError(f"lightweight: state has {quantizers} quantizers for channels={channels!r}")
    if table_of is None:
        if tables != 1 or quantizers != 1:
            raise CodecError("lightweight: several quantizers or tables need a table_of_channel map")
    elif channels is None or table_of.shape != (channels,) or table_of.min(initial=0) < 0 or (
        table_of.max(initial=0) >= tables
    ):
        raise CodecError(f"lightweight: table_of_channel must map {channels} channels to the {tables} tables")


def _design_from_json(i: int, row: tuple[Any, Any, Any, Any], activation: str, slope: float) -> Design:
    """Quantizer ``i`` from its (thresholds, levels, clip, model) entries."""
    t, r, clip, m = row
    t64, r64 = _real_array(t, f"thresholds of quantizer {i}"), _real_array(r, f"levels of quantizer {i}")
    if not isinstance(clip, list) or len(clip) != 2:
        raise CodecError(f"lightweight: state clip of quantizer {i} must be [low, high]")
    clip_t = (_real(clip[0], "clip"), _real(clip[1], "clip"))
    q = ScalarQuantizer(t64, r64)
    model = None if m is None else _model_from_json(i, m, activation, slope)
    if not (np.array_equal(q.levels, r64) and np.array_equal(q.thresholds, t64)) or q.n > MAX_LEVELS:
        raise CodecError(f"lightweight: quantizer {i} must hold at most {MAX_LEVELS} float32 levels")
    return Design(q, model, clip_t)


def _model_from_json(i: int, m: Any, activation: str, slope: float) -> FeatureModel:
    """The error model ``[family, loc, scale(, shape)]`` of quantizer ``i``."""
    if not isinstance(m, list) or len(m) not in (3, 4) or m[0] not in FAMILIES:
        raise CodecError(
            f"lightweight: state model of quantizer {i} must be [family, loc, scale(, shape)], family in {FAMILIES}"
        )
    for x in m[1:]:
        _real(x, f"model of quantizer {i}")
    try:
        return FeatureModel.from_json(m, activation, slope)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise CodecError(f"lightweight: state model of quantizer {i} is invalid ({exc})") from exc


def _check_channel_levels(levels: np.ndarray, quantizers: int, channels: int | None, n: int) -> np.ndarray:
    """The (channels, n) float32 reconstruction table, checked."""
    if quantizers != 1 or channels is None or levels.shape != (channels, n):
        raise CodecError(f"lightweight: channel_levels must be {channels} × {n} values for one shared quantizer")
    if not (np.isfinite(levels).all() and np.array_equal(levels.astype(np.float32), levels)):
        raise CodecError("lightweight: channel_levels must be finite float32 values")
    return levels.astype(np.float32)
