"""Rate–accuracy evaluation: head → encode → decode → tail over a dataset, one :class:`Record` per setting.

Rate is measured from the real bytes of every per-sample stream (container included, config sent by
reference: its one-time size is reported as ``config_bytes``).  Accuracy is compared with the uncut model
on the same samples.  Codecs whose ``domain`` is ``"image"`` code the uint8 input picture instead and run
the whole model on the decoded picture (the "just send the picture" anchor); their split is ``"input"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from splitcodec.bitstream import canonical_config, unpack
from splitcodec.codecs.base import Codec
from splitcodec.codecs.registry import get_codec, parse_codec_spec
from splitcodec.errors import SplitcodecError
from splitcodec.eval.records import Record
from splitcodec.eval.tasks import Classification, task_for

__all__ = ["Coded", "EvalContext", "prepare", "code_samples", "score", "evaluate_codec", "evaluate", "settings_from_specs"]

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
    data_note: str = ""  # where the calibration samples came from
    task: Any = None  # splitcodec.eval.tasks.Task scoring the outputs (None: classification)

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
    calibration: Any = None,
) -> EvalContext:
    """Load model and data, cut the model, and compute head features and reference outputs once.

    ``dataset`` and ``calibration`` take any source :func:`splitcodec.data.sources.resolve_dataset`
    accepts (a registered name, an image folder, a .pt/.npz file, a DataLoader, a Dataset); calibration
    never comes from the evaluated images (``EvalContext.data_note`` says where it came from).
    """
    from splitcodec.models.user import resolve_model
    from splitcodec.pipeline import cut

    if isinstance(model, str):
        model_name = model_name or model
        model = resolve_model(model)
    model = model.eval()
    cfg = getattr(model, "splitcodec_cfg", None)
    model_name = model_name or (cfg.name if cfg else type(model).__name__)
    test, calib, note = _load_data(cfg, model_name, dataset, calibration, samples, calibration_samples)
    if split is None:
        if cfg is None or cfg.default_split is None:
            raise SplitcodecError(f"model {model_name!r} has no default split; pass split= (CLI: --split NAME, see `splitcodec splits`)")
        split = cfg.default_split
    c = cut(model, split, example_input=test.images[:1])
    features = _batched(c.head, test.images, batch_size)
    calib_features = _batched(c.head, calib.images, batch_size)
    ref_out = _batched(model, test.images, batch_size)
    has_logits = (cfg.num_classes is not None and cfg.task == "classification") if cfg is not None else ref_out.ndim == 2
    return EvalContext(
        model_name=model_name,
        split=split,
        model=model,
        head=c.head,
        tail=c.tail,
        dataset=test,
        calibration=calib,
        features=features,
        calib_features=calib_features,
        ref_out=ref_out,
        has_logits=has_logits,
        batch_size=batch_size,
        split_point=c.point,
        data_note=note,
        task=task_for(cfg),
    )


def _load_data(cfg: Any, model_name: str, dataset: Any, calibration: Any, samples: int | None,
               calibration_samples: int) -> tuple[Any, Any, str]:
    """(test samples, calibration samples, where calibration came from) for ``prepare``."""
    from splitcodec.data.sources import resolve_dataset

    if dataset is None:
        if cfg is None or cfg.dataset is None:
            raise SplitcodecError(f"model {model_name!r} names no dataset; pass dataset= (CLI: --dataset NAME|DIR|FILE)")
        dataset = cfg.dataset
    sources = resolve_dataset(
        dataset,
        calibration,
        calibration_samples=calibration_samples,
        input_size=cfg.input_size if cfg else None,
        mean=cfg.mean if cfg else None,
        std=cfg.std if cfg else None,
    )
    return sources.test.subset(samples), sources.calibration.subset(calibration_samples), sources.note


@dataclass
class Coded:
    """What :func:`code_samples` measured: the decoded samples and, per sample, stream and header bytes and
    encode/decode milliseconds."""

    decoded: torch.Tensor
    sizes: list[int] = field(default_factory=list)
    header_bytes: list[int] = field(default_factory=list)
    encode_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)

    @property
    def mean_bytes(self) -> float:
        return float(np.mean(self.sizes)) if self.sizes else 0.0


def code_samples(
    codec: Codec, inputs: torch.Tensor, *, progress: ProgressFn | None = None, desc: str = ""
) -> Coded:
    """Encode and decode each sample of ``inputs`` alone (config by reference), timing both."""
    decoded, out = [], Coded(decoded=inputs[:0])
    n = len(inputs)
    for i in range(n):
        t0 = time.perf_counter()
        data = codec.encode(inputs[i : i + 1], config="ref")
        t1 = time.perf_counter()
        decoded.append(codec.decode(data))
        t2 = time.perf_counter()
        out.sizes.append(len(data))
        out.header_bytes.append(unpack(data).header_bytes)
        out.encode_ms.append(1e3 * (t1 - t0))
        out.decode_ms.append(1e3 * (t2 - t1))
        if progress is not None:
            progress(desc, i + 1, n)
    if decoded:
        out.decoded = torch.cat(decoded)
    return out


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12).mean())


def score(ctx: EvalContext, out: torch.Tensor) -> dict[str, Any]:
    """Score model outputs ``out`` on the test samples with the context's task, against the uncut model.

    Returns the :class:`Record` fields the task fills (:mod:`splitcodec.eval.tasks`: ``task``, ``metric``,
    ``score``, ``score_ref``, ``score_loss``; for classification also ``top1``, ``top1_ref``, ``top1_loss``,
    ``agreement``, None where the model has no logits or the data no labels) and ``cosine``.
    """
    task = ctx.task if ctx.task is not None else Classification()
    return {**task.score(ctx, out), "cosine": _cosine(out, ctx.ref_out)}


@torch.no_grad()
def _outputs(ctx: EvalContext, decoded: torch.Tensor, image_domain: bool) -> torch.Tensor:
    if image_domain:
        pixels = decoded.round().clamp(0, 255).to(torch.uint8)
        return _batched(ctx.model, ctx.dataset.normalize(pixels), ctx.batch_size)
    return _batched(ctx.tail, decoded.to(ctx.features.dtype), ctx.batch_size)


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
    coded = code_samples(codec, inputs, progress=progress, desc=f"{codec.codec_id} {_fmt_params(codec)}")
    n = len(inputs)
    elements = int(inputs[0].numel()) if n else 0
    mean_bytes = coded.mean_bytes
    return Record(
        model=ctx.model_name,
        split="input" if image_domain else ctx.split,
        codec=codec.codec_id,
        params=codec.params(),
        samples=n,
        bpe=mean_bytes * 8 / elements if elements else 0.0,
        bytes_per_sample=mean_bytes,
        encode_ms=float(np.mean(coded.encode_ms)) if n else 0.0,
        decode_ms=float(np.mean(coded.decode_ms)) if n else 0.0,
        bpp=mean_bytes * 8 / ctx.input_pixels,
        elements=elements,
        header_bytes=float(np.mean(coded.header_bytes)) if n else 0.0,
        config_bytes=len(canonical_config(codec.get_config())),
        **score(ctx, out := _outputs(ctx, coded.decoded, image_domain)),
        **paired_stats(ctx, out),
    )


def paired_stats(ctx: EvalContext, out: torch.Tensor) -> dict[str, Any]:
    """The Record's paired fields (loss interval, changed predictions) for classifier logits ``out``."""
    from splitcodec.eval.stats import paired_fields

    if not ctx.has_logits or out.ndim != 2:
        return {}
    return paired_fields(ctx.ref_out, out, ctx.labels)


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
    calibration: Any = None,
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
        calibration=calibration,
    )
    records = []
    for setting in settings_from_specs(codecs):
        codec = setting if isinstance(setting, Codec) else get_codec(setting[0], **setting[1])
        records.append(evaluate_codec(ctx, codec, progress=progress))
    return records
