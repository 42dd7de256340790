"""Rate–accuracy evaluation: head → encode → decode → tail over a dataset, one :class:`Record` per setting.

Rate is measured from the real bytes of every per-sample stream (container included, config sent by
reference: its one-time size is reported as ``config_bytes``).  Accuracy is compared with the uncut model
on the same samples.  Codecs whose ``domain`` is ``"image"`` code the uint8 input picture instead and run
the whole model on the decoded picture (the "just send the picture" anchor); their split is ``"input"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from splitcodec.bitstream import canonical_config, unpack
from splitcodec.codecs.base import Codec
from splitcodec.codecs.registry import get_codec, parse_codec_spec
from splitcodec.errors import SplitcodecError
from splitcodec.eval.records import Record

__all__ = ["EvalContext", "prepare", "evaluate_codec", "evaluate", "settings_from_specs"]

Setting = tuple[str, dict[str, Any]]
ProgressFn = Callable[[str, int, int], None]  # (description, done, total)


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else x


@dataclass
class EvalContext:
    """Everything shared by the codec settings of one (model, split) evaluation."""

    model_name: str
    split: str
    model: nn.Module
    head: nn.Module
    tail: nn.Module
    dataset: Any  # splitcodec.data.Dataset (test samples)
    calibration: Any  # splitcodec.data.Dataset (calibration samples)
    features: torch.Tensor  # head outputs on the test samples
    calib_features: torch.Tensor
    ref_out: torch.Tensor  # uncut model outputs
    has_logits: bool
    batch_size: int
    split_point: Any = None  # splitcodec.split.SplitPoint of the cut (activation, slope, shape)

    @property
    def activation(self) -> Any:
        """The typed activation of the cut (``splitcodec.split.Activation``), or None when unknown."""
        return None if self.split_point is None else self.split_point.act

    @property
    def labels(self) -> torch.Tensor | None:
        return self.dataset.labels

    @property
    def input_pixels(self) -> int:
        h, w = self.dataset.raw.shape[-2:]
        return int(h * w)

    @property
    def top1_ref(self) -> float | None:
        if self.labels is None or not self.has_logits:
            return None
        return float((self.ref_out.argmax(1) == self.labels).float().mean() * 100)


def prepare(
    model: nn.Module | str,
    split: str | None = None,
    *,
    dataset: Any = None,
    samples: int | None = 1000,
    calibration_samples: int = 64,
    batch_size: int = 128,
    model_name: str | None = None,
) -> EvalContext:
    """Load model and data, cut the model, and compute head features and reference outputs once."""
    from splitcodec.data import load_dataset
    from splitcodec.models import load
    from splitcodec.split import list_split_points
    from splitcodec.split import split as split_model

    if isinstance(model, str):
        model_name = model_name or model
        model = load(model)
    model = model.eval()
    cfg = getattr(model, "splitcodec_cfg", None)
    model_name = model_name or (cfg.name if cfg else type(model).__name__)
    if dataset is None:
        if cfg is None or cfg.dataset is None:
            raise SplitcodecError(f"model {model_name!r} names no dataset; pass dataset=")
        dataset = cfg.dataset
    if isinstance(dataset, str):
        test = load_dataset(dataset, "test")
        calib = load_dataset(dataset, "calibration")
    else:  # a Dataset instance: calibrate on its tail end, test on the head end, never overlapping
        n = len(dataset)
        c = min(calibration_samples, max(1, n // 5))
        test, calib = dataset.subset(n - c), _tail_subset(dataset, c)
    test = test.subset(samples)
    calib = calib.subset(calibration_samples)
    if split is None:
        if cfg is None or cfg.default_split is None:
            raise SplitcodecError(f"model {model_name!r} has no default split; pass split=")
        split = cfg.default_split
    head, tail = split_model(model, at=split, example_input=test.images[:1])
    point = next(
        (p for p in list_split_points(model, test.images[:1]) if split == p.name or split in p.aliases), None
    )
    features = _batched(head, test.images, batch_size)
    calib_features = _batched(head, calib.images, batch_size)
    ref_out = _batched(model, test.images, batch_size)
    has_logits = (cfg.num_classes is not None) if cfg is not None else ref_out.ndim == 2
    return EvalContext(
        model_name=model_name,
        split=split,
        model=model,
        head=head,
        tail=tail,
        dataset=test,
        calibration=calib,
        features=features,
        calib_features=calib_features,
        ref_out=ref_out,
        has_logits=has_logits,
        batch_size=batch_size,
        split_point=point,
    )


def _tail_subset(dataset: Any, n: int) -> Any:
    from dataclasses import replace

    sl = slice(len(dataset) - n, len(dataset))
    return replace(
        dataset,
        images=dataset.images[sl],
        raw=dataset.raw[sl],
        labels=None if dataset.labels is None else dataset.labels[sl],
    )


def _code_all(codec: Codec, inputs: torch.Tensor, progress: ProgressFn | None, desc: str) -> tuple[torch.Tensor, list[int], list[int], float, float]:
    """Encode and decode each sample alone; returns decoded tensor, stream sizes, header sizes, ms/sample."""
    decoded, sizes, headers = [], [], []
    t_enc = t_dec = 0.0
    n = len(inputs)
    for i in range(n):
        x = inputs[i : i + 1]
        t0 = time.perf_counter()
        data = codec.encode(x, config="ref")
        t1 = time.perf_counter()
        y = codec.decode(data)
        t2 = time.perf_counter()
        t_enc += t1 - t0
        t_dec += t2 - t1
        sizes.append(len(data))
        headers.append(unpack(data).header_bytes)
        decoded.append(y)
        if progress is not None:
            progress(desc, i + 1, n)
    return torch.cat(decoded), sizes, headers, 1e3 * t_enc / max(n, 1), 1e3 * t_dec / max(n, 1)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12).mean())


def evaluate_codec(
    ctx: EvalContext,
    codec: Codec,
    *,
    progress: ProgressFn | None = None,
) -> Record:
    """Fit ``codec`` on the calibration features (or images), code every test sample, score the output."""
    image_domain = codec.domain == "image"
    if image_domain:
        inputs = ctx.dataset.raw.float()
        codec.fit(ctx.calibration.raw.float())
    else:
        inputs = ctx.features
        codec.fit(ctx.calib_features, activation=ctx.activation)
    desc = f"{codec.codec_id} {_fmt_params(codec)}"
    decoded, sizes, headers, enc_ms, dec_ms = _code_all(codec, inputs, progress, desc)
    with torch.no_grad():
        if image_domain:
            pixels = decoded.round().clamp(0, 255).to(torch.uint8)
            out = _batched(ctx.model, ctx.dataset.normalize(pixels), ctx.batch_size)
        else:
            out = _batched(ctx.tail, decoded.to(ctx.features.dtype), ctx.batch_size)
    n = len(inputs)
    elements = int(inputs[0].numel()) if n else 0
    mean_bytes = float(np.mean(sizes)) if sizes else 0.0
    top1 = top1_ref = loss = agreement = None
    if ctx.has_logits:
        agreement = float((out.argmax(1) == ctx.ref_out.argmax(1)).float().mean() * 100)
        if ctx.labels is not None:
            top1 = float((out.argmax(1) == ctx.labels).float().mean() * 100)
            top1_ref = ctx.top1_ref
            loss = top1_ref - top1  # type: ignore[operator]
    return Record(
        model=ctx.model_name,
        split="input" if image_domain else ctx.split,
        codec=codec.codec_id,
        params=codec.params(),
        samples=n,
        bpe=mean_bytes * 8 / elements if elements else 0.0,
        bytes_per_sample=mean_bytes,
        top1=top1,
        top1_ref=top1_ref,
        top1_loss=loss,
        agreement=agreement,
        encode_ms=enc_ms,
        decode_ms=dec_ms,
        bpp=mean_bytes * 8 / ctx.input_pixels,
        cosine=_cosine(out, ctx.ref_out),
        elements=elements,
        header_bytes=float(np.mean(headers)) if headers else 0.0,
        config_bytes=len(canonical_config(codec.get_config())),
    )


def _fmt_params(codec: Codec) -> str:
    return ",".join(f"{k}={v}" for k, v in codec.params().items())


def settings_from_specs(specs: Sequence[str | Setting | Codec]) -> list[Setting | Codec]:
    """Expand CLI-style specs (``"uniform:bits=8,4"``, ``"raw"``) into concrete settings."""
    out: list[Setting | Codec] = []
    for spec in specs:
        if isinstance(spec, str):
            out.extend(parse_codec_spec(spec))
        else:
            out.append(spec)
    return out


def evaluate(
    model: nn.Module | str,
    split: str | None = None,
    codecs: Sequence[str | Setting | Codec] = ("uniform",),
    *,
    dataset: Any = None,
    samples: int | None = 1000,
    calibration_samples: int = 64,
    batch_size: int = 128,
    model_name: str | None = None,
    progress: ProgressFn | None = None,
    context: EvalContext | None = None,
) -> list[Record]:
    """Evaluate every codec setting at one split; returns one record per setting.

    ``codecs`` holds specs (``"uniform:bits=8,4"``; a bare id means its default sweep), ``(id, params)``
    pairs, or ready Codec instances.  Pass ``context`` to reuse features computed by :func:`prepare`.
    """
    ctx = context or prepare(
        model,
        split,
        dataset=dataset,
        samples=samples,
        calibration_samples=calibration_samples,
        batch_size=batch_size,
        model_name=model_name,
    )
    records = []
    for setting in settings_from_specs(codecs):
        codec = setting if isinstance(setting, Codec) else get_codec(setting[0], **setting[1])
        records.append(evaluate_codec(ctx, codec, progress=progress))
    return records
