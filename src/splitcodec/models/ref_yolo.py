"""``ref-yolo``: a small YOLO-style one-stage detector (Redmon & Farhadi 2018, arXiv:1804.02767) for the
96×96 ``fashion-detect`` canvases, with an anchor-free grid head (as in YOLOX, Ge et al. 2021,
arXiv:2107.08430).

::

    x 1×96×96 -> stem   conv3×3/2-BN-LeakyReLU                                 16×48×48
              -> stage1 down: conv3×3/2-BN-LeakyReLU, 1 residual block       32×24×24
              -> stage2 down: conv3×3/2-BN-LeakyReLU  <- default split       64×12×12
                        2 residual blocks
              -> neck   CBL3×3 (128), CBL1×1 (64), CBL3×3 (128)              128×12×12
              -> head   conv1×1 -> the raw grid                              15×12×12

The units are :mod:`ref_darknet`'s (conv, BN, LeakyReLU(0.1); residual ``x + CBL3×3(CBL1×1(x))``).
``forward`` returns the raw grid, so a split model's tail gives exactly the uncut output; per cell
(stride 8) channel 0 is the objectness logit, 1–2 the box centre's offset from the cell centre in
strides, 3–4 the log of the box width and height in strides, 5–14 the class logits.  :func:`decode`
turns grids into boxes, scores and labels.  Weights: ``weights/ref-yolo.pt`` from
``scripts/train_detector.py``.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import batched_nms

from splitcodec.data.fashion_detect import CANVAS, MEAN, STD
from splitcodec.models.ref_darknet import NEGATIVE_SLOPE, ConvBNLeaky, DarkStage
from splitcodec.models.registry import ModelCfg, register_model

__all__ = ["RefYolo", "CFG", "STRIDE", "NUM_CLASSES", "MAX_LOG_SIZE", "cell_centres", "grid_boxes", "decode"]

STRIDE = 8
NUM_CLASSES = 10
MAX_LOG_SIZE = 4.0  # box sides are at most e^4 strides (437 px), so exp cannot overflow


class RefYolo(nn.Module):
    """Stride-2 stem, two :class:`DarkStage` s, a three-CBL neck and a 1×1 grid head."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16, blocks: tuple[int, int] = (1, 2)) -> None:
        super().__init__()
        self.stem = ConvBNLeaky(1, width, 3, stride=2)
        self.stage1 = DarkStage(width, 2 * width, blocks[0])
        self.stage2 = DarkStage(2 * width, 4 * width, blocks[1])
        self.neck = nn.Sequential(
            ConvBNLeaky(4 * width, 8 * width, 3),
            ConvBNLeaky(8 * width, 4 * width, 1),
            ConvBNLeaky(4 * width, 8 * width, 3),
        )
        self.head = nn.Conv2d(8 * width, 5 + num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=NEGATIVE_SLOPE, mode="fan_out", nonlinearity="leaky_relu")
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[0] = -4.6  # objectness prior ~1 %: few cells hold an object centre
            self.head.bias[3:5] = 1.1  # boxes start ~3 strides (24 px) wide

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.stage2(self.stage1(self.stem(x)))))


def cell_centres(h: int, w: int, stride: int = STRIDE) -> torch.Tensor:
    """(h·w)×2 pixel coordinates (x, y) of the grid cells' centres, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1).to(torch.float32).add(0.5).mul(stride)


def grid_boxes(grid: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """The N×(H·W)×4 xyxy pixel boxes the grid's box channels (1–4) describe, one per cell."""
    _, _, h, w = grid.shape
    t = grid[:, 1:5].flatten(2).transpose(1, 2)  # N×HW×(dx, dy, log w, log h)
    centre = cell_centres(h, w, stride).to(grid.device) + t[..., :2] * stride
    half = torch.exp(t[..., 2:].clamp(max=MAX_LOG_SIZE)) * (stride / 2)
    return torch.cat([centre - half, centre + half], dim=2)


@torch.no_grad()
def decode(
    grid: torch.Tensor,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
    image_size: int = CANVAS,
) -> list[dict[str, torch.Tensor]]:
    """Detections from raw grids N×(5+C)×H×W: one ``{"boxes", "scores", "labels"}`` dict per image.

    A cell proposes every class whose score ``sigmoid(objectness) · softmax(classes)`` exceeds
    ``score_threshold``; boxes are clipped to the image, suppressed per class by
    ``torchvision.ops.batched_nms`` at ``iou_threshold``, and the ``max_detections`` best kept.
    """
    grid = grid.float()
    boxes = grid_boxes(grid).clamp(0, image_size)
    scores = torch.sigmoid(grid[:, 0].flatten(1))[..., None] * torch.softmax(grid[:, 5:].flatten(2), 1).transpose(1, 2)
    out = []
    for b, s in zip(boxes, scores):
        cell, label = torch.nonzero(s > score_threshold, as_tuple=True)
        cand_boxes, cand_scores = b[cell], s[cell, label]
        keep = batched_nms(cand_boxes, cand_scores, label, iou_threshold)[:max_detections]
        out.append({"boxes": cand_boxes[keep], "scores": cand_scores[keep], "labels": label[keep]})
    return out


CFG = ModelCfg(
    name="ref-yolo",
    description="YOLO-style one-stage detector (Darknet CBL units, LeakyReLU 0.1, anchor-free 12×12 grid head) "
    "trained on fashion-detect; outputs the raw grid, boxes via ref_yolo.decode",
    dataset="fashion-detect",
    input_size=(1, CANVAS, CANVAS),
    num_classes=NUM_CLASSES,
    mean=MEAN,
    std=STD,
    default_split="stage2.down",
    weights="ref-yolo.pt",
    task="detection",
)


@register_model(CFG.name, CFG)
def ref_yolo(**kwargs: object) -> RefYolo:
    return RefYolo(**kwargs)  # type: ignore[arg-type]
