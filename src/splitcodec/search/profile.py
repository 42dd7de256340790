"""Profiles for the partition search: what each part of a split inference costs.

* :class:`Timing` — a measured time: median and spread (10th–90th percentile) over repeats.
* :class:`ModelProfile` — per split point the head and tail times (measured here), the whole model's
  time, and per codec setting the bytes per sample, accuracy loss and encode/decode times
  (:class:`CodecCost`, taken from the evaluator's :class:`~splitcodec.eval.records.Record`).
* :class:`DeviceProfile` — how fast a device is relative to the profile: this machine (``"local"``), a
  slowdown factor (``"x20"``: 20 times slower), or times measured on the device itself and loaded from
  a JSON file (:func:`load_device_profile`; format in its docstring), plus an optional power profile
  for the energy objective.

:func:`measure_model` fills a :class:`ModelProfile` by running the evaluator
(:func:`splitcodec.eval.evaluator.prepare` / :func:`~splitcodec.eval.evaluator.evaluate_codec`) on every
(split, codec setting) and timing heads, tails and codecs one sample at a time.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from splitcodec.errors import SplitcodecError

__all__ = [
    "ProfileError",
    "Timing",
    "time_call",
    "CodecCost",
    "SplitTiming",
    "ModelProfile",
    "PowerProfile",
    "DeviceProfile",
    "device_profile",
    "load_device_profile",
    "measure_model",
    "DEVICE_FORMAT",
]

DEVICE_FORMAT = "splitcodec-device-profile/1"
PROFILE_FORMAT = "splitcodec-model-profile/1"
INPUT = "input"  # the split name of codecs that send the picture (cloud-only)


class ProfileError(SplitcodecError, ValueError):
    """A device or model profile is missing, malformed or does not fit the model."""


@dataclass(frozen=True)
class Timing:
    """A time in ms: the median of ``n`` repeats and the 10th–90th percentile spread."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    n: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "Timing":
        a = np.asarray(samples_ms, dtype=float)
        if a.size == 0:
            raise ProfileError("no timing samples")
        return cls(float(np.median(a)), float(np.percentile(a, 10)), float(np.percentile(a, 90)), int(a.size))

    @classmethod
    def fixed(cls, ms: float) -> "Timing":
        return cls(float(ms), float(ms), float(ms), 1)


def time_call(fn: Callable[[int], Any], n: int, *, repeats: int = 3, warmup: int = 3) -> Timing:
    """Time ``fn(i)`` for i < n, ``repeats`` passes after ``warmup`` untimed calls; median and spread."""
    for i in range(min(warmup, n)):
        fn(i)
    out = []
    for _ in range(repeats):
        for i in range(n):
            t0 = time.perf_counter()
            fn(i)
            out.append(1e3 * (time.perf_counter() - t0))
    return Timing.of(out)


@dataclass
class CodecCost:
    """One codec setting at one split: bytes per sample, top-1 loss (pp) and coding times (ms)."""

    split: str
    codec: str
    params: dict[str, Any]
    bytes_per_sample: float
    top1_loss: float
    encode_ms: float
    decode_ms: float
    samples: int = 0

    @property
    def label(self) -> str:
        return f"{self.codec}({','.join(f'{k}={v}' for k, v in self.params.items())})"

    @classmethod
    def from_record(cls, r: Any) -> "CodecCost":
        """From an evaluator :class:`~splitcodec.eval.records.Record` (loss None counts as 0)."""
        return cls(r.split, r.codec, dict(r.params), float(r.bytes_per_sample), float(r.top1_loss or 0.0),
                   float(r.encode_ms), float(r.decode_ms), int(r.samples))


@dataclass
class SplitTiming:
    """Head and tail times of one split point, measured on the profiling machine."""

    split: str
    head: Timing
    tail: Timing
    elements: int


@dataclass
class ModelProfile:
    """Everything the latency model needs about one model, measured on one machine."""

    model: str
    full: Timing  # the whole model on one sample
    splits: list[SplitTiming]
    codecs: list[CodecCost]
    meta: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> SplitTiming:
        for s in self.splits:
            if s.split == name:
                return s
        raise ProfileError(f"profile of {self.model} has no split {name!r} (has {[s.split for s in self.splits]})")

    def to_json(self) -> dict[str, Any]:
        return {"format": PROFILE_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "ModelProfile":
        if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"not a model profile: expected format {PROFILE_FORMAT!r}")
        try:
            splits = [SplitTiming(s["split"], Timing(**s["head"]), Timing(**s["tail"]), int(s["elements"]))
                      for s in doc["splits"]]
            return cls(doc["model"], Timing(**doc["full"]), splits, [CodecCost(**c) for c in doc["codecs"]],
                       dict(doc.get("meta", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"malformed model profile: {exc!r}") from exc

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "ModelProfile":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ProfileError(f"cannot read model profile {path}: {exc}") from exc


@dataclass(frozen=True)
class PowerProfile:
    """Edge power draw in watts: computing, transmitting/receiving, and idle while waiting."""

    compute_w: float
    radio_w: float
    idle_w: float = 0.0


@dataclass(frozen=True)
class DeviceProfile:
    """A device's speed: ``slowdown`` × the profiled times, except the times given in ``head_ms`` /
    ``tail_ms`` (per split; ``"full"`` = the whole model) and ``encode_ms`` / ``decode_ms`` (per codec id),
    which replace them."""

    name: str
    slowdown: float = 1.0
    head_ms: dict[str, float] = field(default_factory=dict)
    tail_ms: dict[str, float] = field(default_factory=dict)
    encode_ms: dict[str, float] = field(default_factory=dict)
    decode_ms: dict[str, float] = field(default_factory=dict)
    power: PowerProfile | None = None

    def head(self, profile: ModelProfile, split: str) -> float:
        """Time of the head up to ``split`` (``"full"``: the whole model) on this device."""
        if split in self.head_ms:
            return self.head_ms[split]
        base = profile.full.median_ms if split == "full" else (0.0 if split == INPUT else profile.split(split).head.median_ms)
        return self.slowdown * base

    def tail(self, profile: ModelProfile, split: str) -> float:
        """Time of the tail after ``split`` (``"input"``: the whole model) on this device."""
        if split in self.tail_ms:
            return self.tail_ms[split]
        base = profile.full.median_ms if split in (INPUT, "full") else profile.split(split).tail.median_ms
        return self.slowdown * base

    def encode(self, cost: CodecCost) -> float:
        return self.encode_ms.get(cost.codec, self.slowdown * cost.encode_ms)

    def decode(self, cost: CodecCost) -> float:
        return self.decode_ms.get(cost.codec, self.slowdown * cost.decode_ms)


def device_profile(spec: str | DeviceProfile) -> DeviceProfile:
    """``"local"`` (this machine), ``"x20"`` (20× slower than it), or the path of a device JSON file."""
    if isinstance(spec, DeviceProfile):
        return spec
    if spec == "local":
        return DeviceProfile("local")
    if spec.startswith("x"):
        try:
            factor = float(spec[1:])
        except ValueError:
            factor = math.nan
        if not factor > 0:
            raise ProfileError(f"bad device {spec!r}: a slowdown is written x<factor>, e.g. x20")
        return DeviceProfile(spec, slowdown=factor)
    return load_device_profile(spec)


def _ms_table(doc: dict[str, Any], key: str, path: Any) -> dict[str, float]:
    table = doc.get(key, {})
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: {key!r} must be an object of name → milliseconds")
    out = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ProfileError(f"{path}: {key}[{name!r}] must be a number of milliseconds >= 0, got {value!r}")
        out[str(name)] = float(value)
    return out


def load_device_profile(path: str | Path) -> DeviceProfile:
    """Read a device profile a user measured on the device itself.

    The file is JSON::

        {"format": "splitcodec-device-profile/1", "name": "pixel-7",
         "slowdown": 4.0,                         # optional: times not listed = 4 × this machine's
         "head_ms": {"full": 31.0, "layer2": 12.5},   # ms per sample, 1 sample at a time
         "tail_ms": {}, "encode_ms": {"uniform": 0.9}, "decode_ms": {},
         "power_w": {"compute": 2.5, "radio": 1.2, "idle": 0.3}}   # optional, for energy

    ``head_ms`` is keyed by split name (``"full"`` = the whole model); ``encode_ms``/``decode_ms`` by
    codec id.  Raises :class:`ProfileError` naming the problem.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read device profile {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ProfileError(f"device profile {path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != DEVICE_FORMAT:
        raise ProfileError(f"{path}: not a device profile (expected \"format\": {DEVICE_FORMAT!r})")
    slowdown = doc.get("slowdown", 1.0)
    if isinstance(slowdown, bool) or not isinstance(slowdown, (int, float)) or not slowdown > 0:
        raise ProfileError(f"{path}: 'slowdown' must be a number > 0, got {slowdown!r}")
    power = None
    if "power_w" in doc:
        p = doc["power_w"]
        if not isinstance(p, dict) or not all(isinstance(p.get(k), (int, float)) and p[k] >= 0 for k in ("compute", "radio")):
            raise ProfileError(f"{path}: 'power_w' needs numbers 'compute' and 'radio' (watts, >= 0)")
        power = PowerProfile(float(p["compute"]), float(p["radio"]), float(p.get("idle", 0.0)))
    return DeviceProfile(
        name=str(doc.get("name", Path(path).stem)),
        slowdown=float(slowdown),
        head_ms=_ms_table(doc, "head_ms", path),
        tail_ms=_ms_table(doc, "tail_ms", path),
        encode_ms=_ms_table(doc, "encode_ms", path),
        decode_ms=_ms_table(doc, "decode_ms", path),
        power=power,
    )


# --- measuring ------------------------------------------------------------------------------------


def _time_split(ctx: Any, n: int, repeats: int) -> SplitTiming:
    import torch

    x = ctx.dataset.images
    with torch.inference_mode():
        head = time_call(lambda i: ctx.head(x[i : i + 1]), n, repeats=repeats)
        tail = time_call(lambda i: ctx.tail(ctx.features[i : i + 1]), n, repeats=repeats)
    return SplitTiming(ctx.split, head, tail, int(ctx.features[0].numel()))


def time_codec(codec: Any, inputs: Any, n: int = 20, repeats: int = 3) -> tuple[Timing, Timing]:
    """Median encode and decode ms of a fitted codec, one sample at a time, over ``n`` samples."""
    streams = [codec.encode(inputs[i : i + 1], config="ref") for i in range(min(n, len(inputs)))]
    enc = time_call(lambda i: codec.encode(inputs[i : i + 1], config="ref"), len(streams), repeats=repeats)
    dec = time_call(lambda i: codec.decode(streams[i]), len(streams), repeats=repeats)
    return enc, dec


def _cost(ctx: Any, codec: Any, known: dict, timing_samples: int, repeats: int, say: Callable[[str], None]) -> tuple[CodecCost, Any]:
    """Bytes and loss of one setting (a known record, else the evaluator), times measured now."""
    from splitcodec.eval.evaluator import evaluate_codec

    image = codec.domain == "image"
    split = INPUT if image else ctx.split
    label = f"{ctx.model_name} {split} {codec.codec_id}"
    rec = known.get((ctx.model_name, split, codec.codec_id, json.dumps(codec.params(), sort_keys=True)))
    if rec is None or rec.samples < len(ctx.dataset):
        say(f"{label}: evaluating on {len(ctx.dataset)} samples")
        rec = evaluate_codec(ctx, codec)  # fits the codec
    elif image:
        codec.fit(ctx.calibration.raw.float())
    else:
        codec.fit(ctx.calib_features, activation=ctx.activation)
    enc, dec = time_codec(codec, ctx.dataset.raw.float() if image else ctx.features, timing_samples, repeats)
    cost = CodecCost.from_record(rec)
    cost.encode_ms, cost.decode_ms = enc.median_ms, dec.median_ms
    say(f"{label} {codec.params()}: {cost.bytes_per_sample:.0f} B, loss {cost.top1_loss:+.2f} pp, "
        f"enc {enc.median_ms:.3f} ms, dec {dec.median_ms:.3f} ms")
    return cost, rec


def measure_model(
    model: str,
    splits: Sequence[str],
    feature_specs: Sequence[str] | dict[str, Sequence[str]],
    image_specs: Sequence[str] = (),
    *,
    samples: int | None = 1000,
    timing_samples: int = 20,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
    records: Iterable[Any] = (),
    on_record: Callable[[Any], None] | None = None,
) -> tuple[ModelProfile, list[Any]]:
    """Profile ``model``: times of heads, tails, the whole model and every codec setting; bytes and
    accuracy loss from the evaluator on ``samples`` test images (None: all).

    ``feature_specs`` lists codec specs (a bare id: its default sweep) for every split, or maps a split
    to its own list; ``image_specs`` are measured once.  A setting found in ``records`` (same model,
    split, codec and params, on at least as many samples) is not evaluated again: only its times are
    measured.  ``on_record`` sees each record as it comes (to save progress).  Returns the profile and
    the records.
    """
    import torch

    from splitcodec.codecs.registry import get_codec, parse_codec_spec
    from splitcodec.eval.evaluator import prepare

    if not splits:
        raise ProfileError("measure_model needs at least one split")
    say = progress or (lambda _m: None)
    known = {(r.model, r.split, r.codec, json.dumps(r.params, sort_keys=True)): r for r in records}
    out_records, costs, timings = [], [], []
    full = None
    for i, split in enumerate(splits):
        ctx = prepare(model, split, samples=samples)
        timings.append(_time_split(ctx, timing_samples, repeats))
        if full is None:
            with torch.inference_mode():
                full = time_call(lambda k: ctx.model(ctx.dataset.images[k : k + 1]), timing_samples, repeats=repeats)
        specs = list(feature_specs.get(split, ())) if isinstance(feature_specs, dict) else list(feature_specs)
        specs += list(image_specs) if i == 0 else []
        for name, params in (setting for spec in specs for setting in parse_codec_spec(spec)):
            cost, rec = _cost(ctx, get_codec(name, **params), known, timing_samples, repeats, say)
            costs.append(cost)
            out_records.append(rec)
            if on_record is not None:
                on_record(rec)
    meta = {"threads": torch.get_num_threads(), "samples": samples, "timing_samples": timing_samples, "repeats": repeats,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    assert full is not None
    return ModelProfile(model, full, timings, costs, meta), out_records


def write_json(path: str | Path, doc: Any) -> Path:
    """Write ``doc`` as indented JSON to ``path`` (creating its folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
