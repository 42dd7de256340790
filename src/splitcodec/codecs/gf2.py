"""``gf2`` and ``fixed-point``: features as fixed-point bit-planes, reduced over GF(2) by learned binary layers.

After Gudovskiy, Hodgkinson & Rigazio, "DNN Feature Map Compression using Learned Representation over
GF(2)" (ECCV-W 2018); the transform is :mod:`splitcodec.nn.gf2`.

``fixed-point`` is the paper's baseline: each element as a ``bits``-bit fixed-point integer (fractional
length fitted on calibration features), bit-packed — exactly ``bits`` bits per element plus the container.

``gf2`` runs the trained NDR encoder (1×1 or 3×3 stride-2 convolution + BN + ReLU, binarised) on the
fixed-point bit-planes; the binary code is sent either bit-packed (``coding="packed"``: the paper's
memory figure) or ANS-coded with one integer Bernoulli table per code channel (``coding="ans"``, our
addition; tables measured on training features and stored with the weights).  The decoder is a 1×1
(or 3×3 transposed) convolution and a threshold per plane, run on one thread so it is deterministic.
Weights: ``models/weights/gf2-<model>.pt`` (``scripts/train_gf2.py``), one entry per split and reduction.

Payload of ``gf2``: one byte ``entry index`` (checked against the config), then the code.

>>> from splitcodec.codecs import get_codec
>>> codec = get_codec("gf2", model="ref-resnet", split="layer2", reduction="1x1")
>>> x = codec.example_features()
>>> y = codec.decode(codec.encode(x))
>>> y.shape == x.shape
True
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from splitcodec._lazy import lazy_module
from splitcodec.codecs.base import Codec, as_array
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import BitstreamError, CodecError, PayloadError

torch = lazy_module("torch")  # imported on first use: the edge runtime lists codecs without torch

if TYPE_CHECKING:
    from splitcodec.split import Activation

__all__ = ["FixedPointCodec", "GF2Codec", "load_trained", "trained_entries"]

WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "weights"
CODINGS = ("ans", "packed")


def _pack(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8).ravel()).tobytes()


def _unpack(payload: bytes, count: int, what: str) -> np.ndarray:
    if len(payload) != (count + 7) // 8:
        raise PayloadError(f"{what}: payload holds {len(payload)} bytes, expected {(count + 7) // 8} for {count} bits")
    return np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=count)


@register_codec
class FixedPointCodec(Codec):
    """The paper's fixed-point baseline: ``bits`` bits per element, bit-packed (fractional length fitted)."""

    codec_id = "fixed-point"
    description = "fixed-point features (bits, fitted fractional length), bit-packed: gf2's baseline"
    needs_fit = True
    sweep = tuple({"bits": b} for b in (8, 6, 4, 3, 2))

    def __init__(self, bits: int = 8) -> None:
        from splitcodec.nn.gf2 import MAX_PLANES

        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_PLANES:
            raise CodecError(f"fixed-point: bits must be an integer in 1..{MAX_PLANES}, got {bits!r}")
        self.bits = bits
        self._format: dict[str, Any] | None = None

    def fit(self, features: Any, activation: Activation | None = None) -> "FixedPointCodec":
        from splitcodec.nn.gf2 import calibrate

        arr, _ = as_array(features, what="calibration features")
        if arr.size == 0 or not np.isfinite(arr).all():
            raise CodecError("fixed-point.fit: need finite calibration features")
        self._format = calibrate(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)), self.bits).as_dict()
        return self

    def get_state(self) -> dict[str, Any] | None:
        return None if self._format is None else {"fl": self._format["fl"], "signed": self._format["signed"]}

    def set_state(self, state: dict[str, Any]) -> None:
        from splitcodec.nn.gf2 import FixedPoint

        try:
            fmt = FixedPoint(self.bits, state["fl"], state["signed"])
        except (KeyError, TypeError) as exc:
            raise CodecError(f"fixed-point: bad state {state!r}") from exc
        self._format = fmt.as_dict()

    def _fmt(self) -> Any:
        from splitcodec.nn.gf2 import FixedPoint

        return FixedPoint(**self._format)  # type: ignore[arg-type]

    def encode_array(self, x: np.ndarray) -> bytes:
        fmt = self._fmt()
        q = fmt.quantize(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
        u = (q & ((1 << self.bits) - 1)).astype(np.uint16)
        return _pack(np.unpackbits(u.astype(">u2").view(np.uint8).reshape(-1, 2), axis=1)[:, 16 - self.bits :])

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        bits = _unpack(payload, n * self.bits, "fixed-point").reshape(n, self.bits).astype(np.int64)
        u = (bits << np.arange(self.bits - 1, -1, -1)).sum(1)
        fmt = self._fmt()
        if fmt.signed:
            u = np.where(u >= 1 << (self.bits - 1), u - (1 << self.bits), u)
        return (u.astype(np.float32) * np.float32(2.0 ** (-fmt.fl))).reshape(shape)


def trained_entries(model: str) -> list[str]:
    """``split/reduction`` names with committed gf2 weights for ``model`` (empty when none)."""
    path = WEIGHTS / f"gf2-{model}.pt"
    return list(load_trained(model)[1]) if path.is_file() else []


@lru_cache(maxsize=8)
def load_trained(model: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``({"split/reduction": (bottleneck, tables int64 K×2)}, entry names in file order)`` for ``model``."""
    from splitcodec.nn.gf2 import from_document

    path = WEIGHTS / f"gf2-{model}.pt"
    if not path.is_file():
        known = sorted(p.name[len("gf2-") : -len(".pt")] for p in WEIGHTS.glob("gf2-*.pt"))
        raise CodecError(f"gf2: no trained weights for model {model!r}; trained: {known}")
    doc = torch.load(path, map_location="cpu", weights_only=True)
    entries = {name: (from_document(d), d["tables"].numpy().astype(np.int64)) for name, d in doc["entries"].items()}
    return entries, tuple(doc["entries"])


@register_codec
class GF2Codec(Codec):
    """Trained NDR binary code of the fixed-point bit-planes, bit-packed or ANS-coded."""

    codec_id = "gf2"
    description = "learned binary reduction of fixed-point bit-planes over GF(2), packed or ANS (trained weights)"
    sweep = ({"reduction": "1x1"}, {"reduction": "3x3s2"})
    #: trained for the tail's output (distillation), not to reproduce the features
    task_driven: ClassVar[bool] = True

    def __init__(self, model: str = "ref-resnet", split: str = "layer2", reduction: str = "1x1", coding: str = "ans") -> None:
        if not isinstance(model, str) or not isinstance(split, str) or not isinstance(reduction, str):
            raise CodecError("gf2: model, split and reduction must be names")
        if coding not in CODINGS:
            raise CodecError(f"gf2: coding must be one of {list(CODINGS)}, got {coding!r}")
        entries, names = load_trained(model)
        if f"{split}/{reduction}" not in entries:
            raise CodecError(f"gf2: model {model!r} has no trained entry {split}/{reduction}; trained: {list(names)}")
        self.model, self.split, self.reduction, self.coding = model, split, reduction, coding

    @property
    def _entry(self) -> tuple[Any, np.ndarray, int]:
        entries, names = load_trained(self.model)
        name = f"{self.split}/{self.reduction}"
        return (*entries[name], names.index(name))

    def example_features(self, n: int = 1, seed: int = 0) -> torch.Tensor:
        """Features of ``n`` Fashion-MNIST test images at this codec's split (for tests and examples)."""
        from splitcodec.data import load_dataset
        from splitcodec.models import load
        from splitcodec.pipeline import cut

        images = load_dataset("fashion-mnist", "test").images
        idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
        head = cut(load(self.model), self.split, images[:1]).head
        with torch.no_grad():
            return head(images[idx])

    def _check_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Check ``shape`` is N × C × H × W for this entry; return the code's (K, h, w)."""
        bn = self._entry[0]
        if len(shape) != 4 or shape[1] != bn.channels or min(shape) < 1:
            raise CodecError(f"gf2: {self.model}@{self.split} codes N×{bn.channels}×H×W features, got shape {shape}")
        return (bn.code_channels, *bn.code_size(shape[2], shape[3]))

    def code(self, x: torch.Tensor) -> np.ndarray:
        """The binary code (uint8 0/1, N × K × h × w) of features ``x``: what is sent."""
        from splitcodec.nn.runtime import one_thread

        self._check_shape(tuple(x.shape))
        with one_thread():
            return self._entry[0].encode_bits(x.float()).to(torch.uint8).numpy()

    def payload(self, code: np.ndarray) -> bytes:
        """Payload of a binary code (N × K × h × w)."""
        _, tables, index = self._entry
        head = bytes([index])
        if self.coding == "packed":
            return head + _pack(code)
        from splitcodec.nn.latent import encode_latent

        return head + encode_latent(code.transpose(1, 0, 2, 3), list(tables))

    def read_code(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """The binary code in a payload for features of ``shape``."""
        k, h, w = self._check_shape(shape)
        _, tables, index = self._entry
        if not payload or payload[0] != index:
            got = f"entry {payload[0]}" if payload else "an empty payload"
            raise BitstreamError(f"gf2: stream holds {got}; this codec is {self.split}/{self.reduction} (entry {index})")
        n = shape[0]
        if self.coding == "packed":
            return _unpack(payload[1:], n * k * h * w, "gf2").reshape(n, k, h, w)
        from splitcodec.nn.latent import decode_latent

        return decode_latent(payload[1:], list(tables), (k, n, h, w)).transpose(1, 0, 2, 3)

    def features(self, code: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """Features of spatial ``size`` rebuilt from a binary code."""
        from splitcodec.nn.runtime import one_thread

        with one_thread():
            return self._entry[0].decode_bits(torch.from_numpy(np.ascontiguousarray(code)).float(), size)

    def encode_array(self, x: np.ndarray) -> bytes:
        return self.payload(self.code(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))))

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        return self.features(self.read_code(payload, shape), tuple(shape[-2:])).numpy()

