"""The request handler every deployment shares: check a bitstream, decode it, run the tail.

:class:`FeatureService` knows its split (the per-sample feature shape the tail takes), holds the codec
configs clients registered (a :class:`~splitcodec.codecs.store.ConfigStore`, so streams carry only the
4-byte config reference) and parses every stream with tight :class:`~splitcodec.bitstream.Limits`:
anything that is not exactly one sample of that shape is refused before a byte of payload is decoded.
Every refusal is a :class:`~splitcodec.serve.errors.ServeError` subclass with an HTTP status and a short
``kind``; the transport layers (:mod:`splitcodec.serve.app`, :mod:`splitcodec.serve.ray_app`) only
translate it.

>>> import torch
>>> from torch import nn
>>> from splitcodec.codecs import get_codec
>>> svc = FeatureService(nn.Flatten(1), (2, 3), model_name="toy", split="x")
>>> codec = get_codec("uniform", bits=8).fit(torch.rand(4, 2, 3))
>>> ref = svc.register(codec.get_config())
>>> [out] = svc.run_batch([svc.parse(codec.encode(torch.ones(1, 2, 3), config="ref"))])
>>> out["output"] == [1.0] * 6
True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from splitcodec.bitstream import Frame, Limits, canonical_config, config_ref, unpack
from splitcodec.codecs.base import Codec
from splitcodec.errors import ConfigError, ElementLimitError, SplitcodecError, UnknownConfigError
from splitcodec.serve.config import ServeConfig
from splitcodec.serve.configs import ConfigCache
from splitcodec.serve.errors import (
    BadConfig,
    Malformed,
    NonFiniteOutput,
    ServeError,
    TooLarge,
    Undecodable,
    UnknownConfig,
    WrongCodec,
    WrongDtype,
    WrongShape,
)

__all__ = ["FeatureService"]

INLINE_CACHE = 16  # codecs built from inline configs, kept for reuse (least recently used goes)
FLOAT_DTYPES = {"float32", "float16", "bfloat16", "float64"}


@dataclass(frozen=True)
class ServiceInfo:
    model: str
    split: str
    feature_shape: tuple[int, ...]
    has_logits: bool


class FeatureService:
    """Decode feature bitstreams for one split and run the model's tail on them, in batches.

    Args:
        tail: the server half of the model (``tail(features) -> outputs``).
        feature_shape: per-sample shape of the features at the split (no batch dimension).
        model_name, split: reported by the health endpoint.
        has_logits: outputs are class logits (answers carry the top-1 ``class``), else embeddings.
        allowed_codecs: codec ids the server accepts (None: any registered features codec).
        max_stream_bytes: the largest stream accepted.
        max_configs, max_configs_per_owner: how many codec configs the store holds in all and per owner
            (client address); past either the least recently used one goes (:class:`ConfigCache`).
        max_config_bytes: the largest codec config accepted, registered or inline.
        allow_inline: accept streams that carry their config inline (else only by reference).
    """

    def __init__(
        self,
        tail: nn.Module,
        feature_shape: tuple[int, ...],
        *,
        model_name: str = "model",
        split: str = "split",
        has_logits: bool = True,
        allowed_codecs: set[str] | None = None,
        max_stream_bytes: int = ServeConfig.max_stream_bytes,
        max_configs: int = 256,
        max_configs_per_owner: int = 16,
        max_config_bytes: int = 1 << 18,
        allow_inline: bool = True,
    ) -> None:
        self.tail = tail.eval()
        self.info = ServiceInfo(model_name, split, tuple(int(d) for d in feature_shape), has_logits)
        self.numel = int(np.prod(self.info.feature_shape))
        self.allowed_codecs = allowed_codecs
        self.max_configs = max_configs
        self.max_configs_per_owner = max_configs_per_owner
        self.allow_inline = allow_inline
        self.limits = Limits(max_bytes=max_stream_bytes, max_elements=self.numel, max_config_bytes=max_config_bytes)
        self.store = ConfigCache(max_configs, max_configs_per_owner)
        # Inline configs are cached apart from registered ones, so streams cannot crowd out registrations.
        self._inline: OrderedDict[bytes, Codec] = OrderedDict()
        self._accepted_shapes = {self.info.feature_shape, (1, *self.info.feature_shape)}

    @classmethod
    def from_model(cls, model: str | nn.Module, split: str | None = None, *, weights: str | None = None, **kwargs: Any) -> "FeatureService":
        """Load a registered model (or take a module), cut it at ``split`` and keep the tail."""
        from splitcodec.models import load
        from splitcodec.pipeline import cut

        name = model if isinstance(model, str) else type(model).__name__
        net = load(model, weights=weights) if isinstance(model, str) else model.eval()
        cfg = getattr(net, "splitcodec_cfg", None)
        if cfg is None:
            raise SplitcodecError(f"model {name!r} has no splitcodec_cfg: build FeatureService(tail, shape) directly")
        split = split or cfg.default_split
        if split is None:
            raise SplitcodecError(f"model {name!r} has no default split; pass one")
        c = cut(net, split, torch.zeros(1, *cfg.input_size))
        kwargs.setdefault("has_logits", cfg.num_classes is not None)
        return cls(c.tail, c.point.shape, model_name=cfg.name, split=split, **kwargs)

    @classmethod
    def from_config(cls, config: ServeConfig) -> "FeatureService":
        """The service a :class:`~splitcodec.serve.config.ServeConfig` describes (model, split, limits)."""
        return cls.from_model(
            config.model, config.split, weights=config.weights, max_stream_bytes=config.max_stream_bytes,
            allowed_codecs=set(config.allowed_codecs) or None,
        )

    # --- configs -----------------------------------------------------------------------------------
    def _check_codec(self, codec: Codec) -> None:
        if codec.domain != "features":
            raise WrongCodec(f"codec {codec.codec_id!r} codes {codec.domain}, not features")
        if self.allowed_codecs is not None and codec.codec_id not in self.allowed_codecs:
            allowed = ", ".join(sorted(self.allowed_codecs))
            raise WrongCodec(f"codec {codec.codec_id!r} is not served here (allowed: {allowed})")
        if codec.needs_fit and not codec.is_fitted:
            raise WrongCodec(f"codec {codec.codec_id!r} needs fitted state and the config has none")

    def _build(self, config: Any) -> Codec:
        from splitcodec.codecs.registry import get_codec

        if not isinstance(config, dict) or not isinstance(config.get("id"), str):
            raise BadConfig('a codec config is a JSON object with a string "id"')
        try:
            size = len(canonical_config(config))
        except SplitcodecError as exc:  # NaN, infinities, non-JSON values
            raise BadConfig(str(exc)) from None
        if size > self.limits.max_config_bytes:
            raise TooLarge(f"codec config exceeds {self.limits.max_config_bytes} bytes")
        try:
            codec = get_codec(config)
        except SplitcodecError as exc:
            raise WrongCodec(f"cannot build codec from config: {exc}") from exc
        except Exception as exc:  # noqa: BLE001  (a codec choking on hostile state: say which kind, not why)
            raise WrongCodec(f"cannot build codec from config ({type(exc).__name__} in its state)") from None
        self._check_codec(codec)
        return codec

    def register(self, config: Any, owner: str = "") -> str:
        """Hold ``owner``'s codec config (evicting its, or the store's, least recently used one past a
        cap); returns its reference (hex) that streams will carry."""
        codec = self._build(config)
        return self.store.add(codec, owner).hex()

    # --- requests ------------------------------------------------------------------------------------
    def parse(self, data: bytes) -> tuple[Frame, Codec]:
        """Check a stream's container against this split; returns the frame and the codec to decode it."""
        if not data:
            raise Malformed("empty request body: expected a splitcodec bitstream")
        if len(data) > self.limits.max_bytes:
            raise TooLarge(f"stream of {len(data)} bytes exceeds this server's limit of {self.limits.max_bytes}")
        try:
            frame = unpack(data, self.limits)
        except ElementLimitError as exc:  # more elements than one sample of the split
            raise WrongShape(f"{exc}: this server takes one {'×'.join(map(str, self.info.feature_shape))} sample") from exc
        except ConfigError as exc:  # a hostile inline config (too deep, huge numbers, NaN)
            raise BadConfig(str(exc)) from exc
        except SplitcodecError as exc:
            raise Malformed(str(exc)) from exc
        if frame.shape not in self._accepted_shapes:
            raise WrongShape(
                f"stream holds a tensor of shape {frame.shape}; split {self.info.split!r} of {self.info.model} "
                f"takes one sample of shape {self.info.feature_shape}"
            )
        if frame.dtype not in FLOAT_DTYPES:
            raise WrongDtype(f"stream holds {frame.dtype} features; expected a float type")
        return frame, self._codec_of(frame)

    def _codec_of(self, frame: Frame) -> Codec:
        """The codec a frame names: registered (by reference or inline config) or built from its inline config."""
        if frame.config_ref is not None:
            try:
                return self.store.get(frame.config_ref)
            except UnknownConfigError as exc:
                raise UnknownConfig(str(exc)) from exc
        if not self.allow_inline:
            raise UnknownConfig("this server takes configs by reference only: register the config first")
        assert frame.config is not None
        ref = config_ref(frame.config)
        if ref in self.store:
            return self.store.get(ref)
        if ref in self._inline:
            self._inline.move_to_end(ref)
            return self._inline[ref]
        codec = self._inline[ref] = self._build(frame.config)
        if len(self._inline) > INLINE_CACHE:
            self._inline.popitem(last=False)
        return codec

    @torch.inference_mode()
    def run_batch(self, jobs: list[tuple[Frame, Codec]]) -> list[dict[str, Any] | ServeError]:
        """Decode each parsed stream, run the tail once on all that decoded; one answer per job."""
        results: list[dict[str, Any] | ServeError] = [None] * len(jobs)  # type: ignore[list-item]
        tensors, index, decode_ms = [], [], []
        for i, (frame, codec) in enumerate(jobs):
            t0 = time.perf_counter()
            try:
                x = codec.decode_frame(frame)
            except SplitcodecError as exc:
                results[i] = Undecodable(str(exc))
                continue
            x = x.reshape(1, *self.info.feature_shape).float()
            if not torch.isfinite(x).all():
                results[i] = Undecodable("stream decodes to non-finite features")
                continue
            tensors.append(x)
            index.append(i)
            decode_ms.append(1e3 * (time.perf_counter() - t0))
        if tensors:
            t0 = time.perf_counter()
            out = self.tail(torch.cat(tensors)).float()
            tail_ms = 1e3 * (time.perf_counter() - t0)
            out = out.reshape(len(tensors), -1)
            finite = torch.isfinite(out).all(1).tolist()
            out = torch.where(torch.isfinite(out), out, torch.zeros(()))
            top1 = out.argmax(1).tolist() if self.info.has_logits else [None] * len(tensors)
            rows = out.numpy().tolist()
            for k, i in enumerate(index):
                if not finite[k]:
                    results[i] = NonFiniteOutput("the model produced non-finite outputs for these features")
                    continue
                results[i] = {
                    "class": top1[k],
                    "output": rows[k],
                    "timing": {"decode_ms": decode_ms[k], "tail_ms": tail_ms, "batch": len(tensors)},
                }
        return results

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": self.info.model,
            "split": self.info.split,
            "feature_shape": list(self.info.feature_shape),
            "configs": len(self.store),
            "max_stream_bytes": self.limits.max_bytes,
        }
