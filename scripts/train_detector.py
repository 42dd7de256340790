"""Train the ``ref-yolo`` detector on fashion-detect and store its weights and measured mAP.

    python scripts/train_detector.py [--epochs 12] [--seed 0] [--threads 1]

Trains on the 16k ``train`` canvases (augmentation: horizontal flip), reports mAP on 500
``calibration`` canvases after some epochs, then writes

* ``src/splitcodec/models/weights/ref-yolo.pt``: the state dict with floating tensors stored as fp16;
* ``benchmarks/results/reference_models.json``: test mAP@0.5 and mAP@[.5:.95] on all 5,000 test
  canvases measured by reloading the stored file through ``splitcodec.models.load``, params,
  epochs, wall and CPU seconds (merged under ``ref-yolo``).

Targets: each object is assigned to the grid cells whose centre lies within one stride of its box
centre in x and y (2×2 cells usually; a cell claimed by several objects takes the nearest centre).
Loss per image, divided by the number of assigned cells: objectness BCE over all cells, 5 × GIoU
loss and class cross-entropy over the assigned cells.  AdamW, linear warm-up then cosine LR.
Seeded: the same seed on the same machine and library versions gives the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss

from splitcodec.data import load_dataset
from splitcodec.eval.detection import mean_average_precision, predict
from splitcodec.models import create_model, load
from splitcodec.models.ref_yolo import STRIDE, cell_centres, decode, grid_boxes

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "splitcodec" / "models" / "weights" / "ref-yolo.pt"
RESULTS = REPO / "benchmarks" / "results" / "reference_models.json"
MAX_OBJECTS = 6


def pad_targets(targets: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets as padded tensors: boxes N×M×4 and labels N×M (-1 where there is no object)."""
    boxes = torch.zeros(len(targets), MAX_OBJECTS, 4)
    labels = torch.full((len(targets), MAX_OBJECTS), -1, dtype=torch.int64)
    for i, t in enumerate(targets):
        boxes[i, : len(t["labels"])] = t["boxes"]
        labels[i, : len(t["labels"])] = t["labels"]
    return boxes, labels


def flip(raw: torch.Tensor, boxes: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontally flip a random half of the canvases and their boxes."""
    w = raw.shape[-1]
    mask = torch.rand(len(raw), generator=gen) < 0.5
    raw = torch.where(mask.view(-1, 1, 1, 1), raw.flip(-1), raw)
    flipped = torch.stack([w - boxes[..., 2], boxes[..., 1], w - boxes[..., 0], boxes[..., 3]], -1)
    return raw, torch.where(mask.view(-1, 1, 1), flipped, boxes)


def detection_loss(grid: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss of raw grids N×15×H×W against padded targets (see the module docstring)."""
    n, _, h, w = grid.shape
    centres = cell_centres(h, w).to(grid.device)  # G×2
    gt_centre = (boxes[..., :2] + boxes[..., 2:]) / 2  # N×M×2
    delta = (centres[None, :, None, :] - gt_centre[:, None, :, :]).abs()  # N×G×M×2
    near = (delta < STRIDE).all(-1) & (labels >= 0)[:, None, :]
    dist = delta.sum(-1).masked_fill(~near, float("inf"))
    nearest = dist.argmin(-1)  # N×G
    pos = near.any(-1)
    num_pos = max(int(pos.sum()), 1)
    obj_loss = F.binary_cross_entropy_with_logits(grid[:, 0].flatten(1), pos.float(), reduction="sum")
    gt_boxes = boxes.gather(1, nearest[..., None].expand(-1, -1, 4))[pos]
    gt_labels = labels.gather(1, nearest)[pos]
    box_loss = generalized_box_iou_loss(grid_boxes(grid)[pos], gt_boxes, reduction="sum")
    cls_loss = F.cross_entropy(grid[:, 5:].flatten(2).transpose(1, 2)[pos], gt_labels, reduction="sum")
    return (obj_loss + 5 * box_loss + cls_loss) / num_pos


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * (0.01 + 0.99 * 0.5 * (1 + torch.cos(torch.tensor(progress * torch.pi)).item()))


def train(args: argparse.Namespace) -> tuple[torch.nn.Module, float, float]:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    data = load_dataset("fashion-detect", "train")
    calib = load_dataset("fashion-detect", "calibration").subset(500)
    assert data.targets is not None and calib.targets is not None
    boxes, labels = pad_targets(data.targets)
    model = create_model("ref-yolo")
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.lr)
    steps_per_epoch = len(data) // args.batch_size
    total = args.epochs * steps_per_epoch
    t0, c0, step = time.time(), time.process_time(), 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(data), generator=gen)
        running = 0.0
        for k in range(steps_per_epoch):
            idx = order[k * args.batch_size : (k + 1) * args.batch_size]
            raw, b = flip(data.raw[idx], boxes[idx], gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, args.lr, args.warmup)
            loss = detection_loss(model(data.normalize(raw)), b, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            step += 1
            if k % 50 == 0:
                elapsed = time.time() - t0
                print(f"epoch {epoch} step {k}/{steps_per_epoch} loss {loss.item():.3f} {elapsed:.0f}s", flush=True)
        score = mean_average_precision(predict(model, calib.images, decode), calib.targets)
        mean_loss = running / steps_per_epoch
        print(f"epoch {epoch}: mean loss {mean_loss:.3f}, calibration {score}, {time.time() - t0:.0f}s", flush=True)
    return model, time.time() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, seconds, cpu_seconds = train(args)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, WEIGHTS)
    test = load_dataset("fashion-detect", "test")
    assert test.targets is not None
    score = mean_average_precision(predict(load("ref-yolo"), test.images, decode), test.targets)
    record = {
        "test_map_50": round(100 * score.map_50, 2),
        "test_map": round(100 * score.map, 2),
        "test_canvases": len(test),
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": args.epochs,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "seed": args.seed,
        "device": "cpu",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "optimizer": "AdamW, linear warm-up then cosine",
        "weights_file": WEIGHTS.name,
        "weights_bytes": WEIGHTS.stat().st_size,
        "weights_sha256": hashlib.sha256(WEIGHTS.read_bytes()).hexdigest(),
        "weights_dtype": "float16",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["ref-yolo"] = record
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
