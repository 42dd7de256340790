"""``wsae``: one learned autoencoder shared by every split point of a model, bit-width chosen per stream.

After Choi, Kim & Ko, "A Weight-Sharing Autoencoder with Dynamic Quantization for Efficient Feature
Compression" (ICTC 2021).  The features of split ``split`` go through that split's 1×1 adapter into a
shared encoder core; the latent (in [0, 1], half the spatial size) is quantized to ``bits`` bits and
ANS-coded channel by channel with integer tables (the learned density of that split and bit-width,
stored with the weights); the decoder core and the split's output adapter rebuild the features.
Weights are trained by ``scripts/train_wsae.py`` (see ``docs/wsae.md``) and committed as
``models/weights/wsae-<model>.pt``; the codec loads them by ``model`` name and needs no fitting.

Payload: one byte ``split index << 4 | bits`` (checked against the config), then the ANS words.

>>> from splitcodec.codecs import get_codec
>>> codec = get_codec("wsae", model="ref-resnet", split="layer2", bits=4)
>>> x = codec.example_features(seed=0)
>>> tuple(x.shape)
(1, 32, 14, 14)
>>> y = codec.decode(codec.encode(x))
>>> y.shape == x.shape
True
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from splitcodec._lazy import lazy_module

torch = lazy_module("torch")  # imported on first use: the edge runtime lists codecs without torch

from splitcodec import bitstream
from splitcodec.codecs.base import Codec
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import BitstreamError, CodecError


def encode_latent(*args: Any) -> bytes:
    """:func:`splitcodec.nn.latent.encode_latent`, imported on use (splitcodec.nn needs torch)."""
    from splitcodec.nn.latent import encode_latent as encode

    return encode(*args)


def decode_latent(*args: Any) -> np.ndarray:
    """:func:`splitcodec.nn.latent.decode_latent`, imported on use."""
    from splitcodec.nn.latent import decode_latent as decode

    return decode(*args)


def one_thread() -> Any:
    """:func:`splitcodec.nn.runtime.one_thread`, imported on use."""
    from splitcodec.nn.runtime import one_thread as single

    return single()

__all__ = ["WSAECodec", "trained_models", "load_trained", "register_weights"]

WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "weights"
DEFAULT_SPLIT = {"ref-resnet": "layer2", "ref-darknet": "stage2.down"}


_REGISTERED: dict[str, Path] = {}


def register_weights(name: str, path: str | Path) -> None:
    """Make a weights file from ``scripts/train_wsae.py`` loadable as ``get_codec("wsae", model=name)``."""
    path = Path(path)
    if not path.is_file():
        raise CodecError(f"wsae: weights file {path} does not exist")
    _REGISTERED[name] = path
    load_trained.cache_clear()


def trained_models() -> list[str]:
    """Names with ``wsae`` weights: the committed ones, then any :func:`register_weights` added."""
    committed = sorted(p.name[len("wsae-") : -len(".pt")] for p in WEIGHTS.glob("wsae-*.pt"))
    return committed + sorted(set(_REGISTERED) - set(committed))


@lru_cache(maxsize=8)
def load_trained(model: str) -> tuple[Any, tuple[str, ...], dict[int, list[list[np.ndarray]]]]:
    """``(WSAE in eval mode, split names, {bits: [split][channel] int tables})`` for ``model``."""
    from splitcodec.nn.wsae import from_document

    path = _REGISTERED.get(model, WEIGHTS / f"wsae-{model}.pt")
    if not path.is_file():
        raise CodecError(f"wsae: no trained weights for model {model!r}; trained: {trained_models()}")
    doc = torch.load(path, map_location="cpu", weights_only=True)
    tables = {int(b): [[np.asarray(row, dtype=np.int64) for row in split] for split in t.numpy()]
              for b, t in doc["tables"].items()}
    return from_document(doc), tuple(doc["splits"]), tables


@register_codec
class WSAECodec(Codec):
    """Weight-sharing autoencoder (shared core, per-split 1×1 adapters), ``bits``-bit latent + ANS."""

    codec_id = "wsae"
    description = "learned weight-sharing autoencoder for every split, 2–8 bit latent + ANS (trained weights)"
    sweep = tuple({"bits": b} for b in (8, 6, 4, 3, 2))
    #: trained for the tail's output (distillation), not for the features: the rebuilt tensor keeps what
    #: the tail needs and need not resemble the input (cosine ≈ 0.6 at 8 bits on ref-resnet layer2)
    task_driven: ClassVar[bool] = True

    def __init__(self, model: str = "ref-resnet", split: str | None = None, bits: int = 8) -> None:
        from splitcodec.nn.wsae import BITS

        if not isinstance(model, str):
            raise CodecError(f"wsae: model must be a name, got {model!r}")
        _, splits, _ = load_trained(model)
        split = DEFAULT_SPLIT.get(model, splits[0]) if split is None else split
        if split not in splits:
            raise CodecError(f"wsae: model {model!r} has no trained split {split!r}; trained: {list(splits)}")
        if bits not in BITS or isinstance(bits, bool):
            raise CodecError(f"wsae: bits must be one of {list(BITS)}, got {bits!r}")
        self.model, self.split, self.bits = model, split, bits

    @property
    def _index(self) -> int:
        return load_trained(self.model)[1].index(self.split)

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

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        wsae = load_trained(self.model)[0]
        channels = wsae.channels[self._index]
        if len(shape) != 4 or shape[1] != channels:
            raise CodecError(f"wsae: {self.model}@{self.split} codes N×{channels}×H×W features, got shape {shape}")

    def _indices(self, x: torch.Tensor) -> np.ndarray:
        """Integer latents, N × latent × h × w (int32)."""
        wsae = load_trained(self.model)[0]
        with one_thread():
            return wsae.indices(x, self._index, self.bits).to(torch.int32).numpy()

    def _payload(self, k: np.ndarray) -> bytes:
        """Payload of integer latents ``k`` (N × latent × h × w)."""
        tables = load_trained(self.model)[2][self.bits][self._index]
        return bytes([self._index << 4 | self.bits]) + encode_latent(k.transpose(1, 0, 2, 3), tables)

    def _latent(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Integer latents (N × latent × h × w) of a payload for features of ``shape``."""
        self._check_shape(shape)
        if not payload or payload[0] != (self._index << 4 | self.bits):
            got = f"split index {payload[0] >> 4}, {payload[0] & 15} bits" if payload else "an empty payload"
            raise BitstreamError(f"wsae: stream holds {got}; this codec is {self.split} at {self.bits} bits")
        wsae, _, tables = load_trained(self.model)
        n, _, h, w = shape
        latent_shape = (wsae.latent, n, (h + 1) // 2, (w + 1) // 2)
        return decode_latent(payload[1:], tables[self.bits][self._index], latent_shape).transpose(1, 0, 2, 3)

    def _reconstruct(self, k: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        wsae = load_trained(self.model)[0]
        with one_thread():
            return wsae.reconstruct(torch.from_numpy(np.ascontiguousarray(k)), self._index, self.bits, size)

    def encode_array(self, x: np.ndarray) -> bytes:
        self._check_shape(x.shape)
        return self._payload(self._indices(torch.from_numpy(x)))

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        return self._reconstruct(self._latent(payload, shape), shape[-2:]).numpy()

    # --- batch paths for benchmarks: one network call for many per-sample streams ------------------
    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """The float latent in [0, 1] of a batch (independent of ``bits``: reusable across bit-widths)."""
        self._check_shape(tuple(x.shape))
        with one_thread():
            return load_trained(self.model)[0].analysis(x.float(), self._index)

    def encode_batch(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> list[bytes]:
        """One stream per sample (config by reference), as ``encode(x[i:i+1], config="ref")`` writes it.

        The encoder network runs once on the whole batch (or not at all, given ``latent`` from
        :meth:`analyse`); its float rounding may differ from a one-sample run in the last bit, so an
        index can (rarely) differ by one level.
        """
        from splitcodec.nn.quant import to_indices

        self._check_shape(tuple(x.shape))
        if latent is None:
            latent = self.analyse(x)
        k = to_indices(latent, self.bits).to(torch.int32).numpy()
        shape = (1, *x.shape[1:])
        return [bitstream.pack(self._payload(k[i : i + 1]), shape, "float32", ref=self.config_ref) for i in range(len(k))]

    def decode_batch(self, streams: list[bytes]) -> torch.Tensor:
        """Decode many one-sample streams of this codec; the decoder network runs once on the batch."""
        frames = [bitstream.unpack(s) for s in streams]
        if any(f.config_ref != self.config_ref for f in frames):
            raise BitstreamError("wsae.decode_batch: every stream must refer to this codec's config")
        k = np.concatenate([self._latent(f.payload, f.shape) for f in frames])
        return self._reconstruct(k, frames[0].shape[-2:])
