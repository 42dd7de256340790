"""Tasks: what a model's outputs are scored by.  A task is a metric over the tail's outputs.

Every task fills the :class:`~splitcodec.eval.Record` fields ``task``, ``metric``, ``score`` (the
task's headline figure, in percent), ``score_ref`` (the uncut model on the same samples) and
``score_loss`` (``score_ref - score``, points).  Classification also keeps its historical fields
``top1``, ``top1_ref``, ``top1_loss`` and ``agreement`` (its score is top-1); detection's score is
COCO mAP@0.5 and its ``extra`` holds mAP@[.5:.95] (``map``, ``map_ref``), both in percent.
:func:`task_for` picks the task from the model's ``ModelCfg.task``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from splitcodec.errors import SplitcodecError

__all__ = ["Task", "Classification", "Detection", "task_for"]

Scores = dict[str, Any]


class Task(Protocol):
    """Scores model outputs of the test samples of an evaluation context (``splitcodec.eval.EvalContext``)."""

    name: str
    metric: str

    def score(self, ctx: Any, out: torch.Tensor) -> Scores:
        """Record fields for outputs ``out`` (one row per test sample of ``ctx``)."""
        ...


class Classification:
    """Top-1 accuracy against the labels (%), and agreement with the uncut model's top-1 (%)."""

    name = "classification"
    metric = "top1"

    def score(self, ctx: Any, out: torch.Tensor) -> Scores:
        top1 = top1_ref = loss = agreement = None
        if ctx.has_logits:
            agreement = float((out.argmax(1) == ctx.ref_out.argmax(1)).float().mean() * 100)
            if ctx.labels is not None:
                top1 = float((out.argmax(1) == ctx.labels).float().mean() * 100)
                top1_ref = float((ctx.ref_out.argmax(1) == ctx.labels).float().mean() * 100)
                loss = top1_ref - top1
        return {"top1": top1, "top1_ref": top1_ref, "top1_loss": loss, "agreement": agreement,
                "task": self.name, "metric": self.metric, "score": top1, "score_ref": top1_ref, "score_loss": loss}


class Detection:
    """COCO mAP@0.5 (the score) and mAP@[.5:.95] of the decoded detections against the boxes (%)."""

    name = "detection"
    metric = "map_50"

    def __init__(self, decode: Callable[[torch.Tensor], list[dict[str, torch.Tensor]]], batch_size: int = 250) -> None:
        self.decode = decode
        self.batch_size = batch_size
        self._ref: dict[int, tuple[float, float]] = {}  # id(ref_out) -> uncut (mAP@0.5, mAP) in %

    def maps(self, ctx: Any, out: torch.Tensor) -> tuple[float, float]:
        """(mAP@0.5, mAP@[.5:.95]) in percent of raw outputs ``out`` against ``ctx``'s targets."""
        from splitcodec.eval.detection import mean_average_precision

        targets = ctx.dataset.targets
        if targets is None:
            raise SplitcodecError(f"dataset {ctx.dataset.name!r} has no boxes: detection needs Dataset.targets")
        dets = [d for i in range(0, len(out), self.batch_size) for d in self.decode(out[i : i + self.batch_size])]
        s = mean_average_precision(dets, targets)
        return 100 * s.map_50, 100 * s.map

    def reference(self, ctx: Any) -> tuple[float, float]:
        """The uncut model's (mAP@0.5, mAP@[.5:.95]) in percent, computed once per context."""
        key = id(ctx.ref_out)
        if key not in self._ref:
            self._ref[key] = self.maps(ctx, ctx.ref_out)
        return self._ref[key]

    def score(self, ctx: Any, out: torch.Tensor) -> Scores:
        map50, map_all = self.maps(ctx, out)
        ref50, ref_all = self.reference(ctx)
        return {"top1": None, "top1_ref": None, "top1_loss": None, "agreement": None,
                "task": self.name, "metric": self.metric, "score": map50, "score_ref": ref50,
                "score_loss": ref50 - map50, "extra": {"map": map_all, "map_ref": ref_all}}


def task_for(cfg: Any) -> Task:
    """The task of a model with ``splitcodec.models.ModelCfg`` ``cfg`` (classification when None)."""
    kind = getattr(cfg, "task", "classification") if cfg is not None else "classification"
    if kind == "classification":
        return Classification()
    if kind == "detection":
        from splitcodec.eval.detection import postprocessor

        return Detection(postprocessor(cfg.name))
    raise SplitcodecError(f"model {getattr(cfg, 'name', '?')!r} has task {kind!r}: known tasks are classification, detection")
