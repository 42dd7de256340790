"""Detection scores: COCO-style mAP@0.5 and mAP@[.5:.95] of a detector's outputs.

The metric is torchmetrics' ``MeanAveragePrecision`` (``pycocotools`` backend, boxes xyxy in pixels),
not a hand-written one.  Predictions and targets are lists with one dict per image, the format of
torchvision detection models: predictions ``{"boxes": float K×4, "scores": float K, "labels": int64 K}``,
targets ``{"boxes", "labels"}`` (as in ``Dataset.targets``).

>>> import torch
>>> t = [{"boxes": torch.tensor([[10.0, 10.0, 40.0, 30.0]]), "labels": torch.tensor([3])}]
>>> p = [{**t[0], "scores": torch.tensor([0.9])}]
>>> mean_average_precision(p, t)
DetectionScore(map_50=1.0, map=1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from splitcodec.errors import SplitcodecError

__all__ = ["DetectionScore", "mean_average_precision", "predict", "postprocessor"]

Detections = list[dict[str, torch.Tensor]]


@dataclass(frozen=True)
class DetectionScore:
    """COCO mAP in [0, 1]: ``map_50`` at IoU 0.5, ``map`` averaged over IoU 0.5:0.05:0.95."""

    map_50: float
    map: float


def mean_average_precision(
    predictions: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]]
) -> DetectionScore:
    """COCO-style mAP of ``predictions`` against ``targets`` (same length, one dict per image)."""
    from torchmetrics.detection import MeanAveragePrecision

    if len(predictions) != len(targets):
        raise SplitcodecError(f"mAP needs one prediction per target image: got {len(predictions)} and {len(targets)}")
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    metric.update(
        [{"boxes": p["boxes"].float(), "scores": p["scores"].float(), "labels": p["labels"]} for p in predictions],
        [{"boxes": t["boxes"].float(), "labels": t["labels"]} for t in targets],
    )
    result = metric.compute()
    return DetectionScore(map_50=round(float(result["map_50"]), 6), map=round(float(result["map"]), 6))


def postprocessor(model_name: str) -> Callable[[torch.Tensor], Detections]:
    """The function turning model ``model_name``'s raw outputs into detections."""
    if model_name == "ref-yolo":
        from splitcodec.models.ref_yolo import decode

        return decode
    raise SplitcodecError(f"model {model_name!r} is not a detector: no post-processing is known for it")


@torch.no_grad()
def predict(
    model: nn.Module, images: torch.Tensor, decode: Callable[[torch.Tensor], Detections], batch_size: int = 250
) -> Detections:
    """Detections of ``model`` (put in eval mode) on float ``images``, raw outputs turned by ``decode``."""
    model.eval()
    out: Detections = []
    for i in range(0, len(images), batch_size):
        out.extend(decode(model(images[i : i + batch_size])))
    return out
