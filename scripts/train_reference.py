"""Train a reference model on Fashion-MNIST and store its weights and measured accuracy.

    python scripts/train_reference.py --model ref-resnet [--epochs 15] [--seed 0] [--device auto]

Trains on the ``train`` split (59k images; augmentation: random 28×28 crop of the 2-px zero-padded image
and horizontal flip), reports the held-out ``calibration`` split each epoch, then writes

* ``src/splitcodec/models/weights/<model>.pt``: the state dict with floating tensors stored as fp16;
* ``benchmarks/results/reference_models.json``: test top-1 measured by reloading the stored file
  through ``splitcodec.models.load``, params, epochs, wall and CPU seconds, ... (merged under the
  model's name).

Seeded: the same seed on the same machine and library versions gives the same weights.  SGD with
Nesterov momentum and a one-cycle learning rate; 2 CPU threads unless ``--threads`` says otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from splitcodec.data import Dataset, load_dataset
from splitcodec.models import create_model, list_models, load

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "splitcodec" / "models" / "weights"
RESULTS = REPO / "benchmarks" / "results" / "reference_models.json"
PAD = 2


def augment(raw: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of PAD px) and horizontal flip of uint8 N×C×H×W images."""
    n, _, h, w = raw.shape
    padded = F.pad(raw, (PAD, PAD, PAD, PAD))
    dy = torch.randint(0, 2 * PAD + 1, (n, 1, 1), generator=gen)
    dx = torch.randint(0, 2 * PAD + 1, (n, 1, 1), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    cols = torch.arange(w).view(1, 1, w).expand(n, h, w)
    cols = torch.where(flip.view(n, 1, 1), w - 1 - cols, cols) + dx
    rows = torch.arange(h).view(1, h, 1).expand(n, h, w) + dy
    batch = torch.arange(n).view(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def top1(model: nn.Module, data: Dataset, device: torch.device, batch_size: int = 1000) -> float:
    """Top-1 accuracy in % of ``model`` (put in eval mode) on ``data``."""
    assert data.labels is not None
    model.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        x = data.images[i : i + batch_size].to(device)
        correct += int((model(x).argmax(1).cpu() == data.labels[i : i + batch_size]).sum())
    return 100.0 * correct / len(data)


def fp16_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).cpu().clone() for k, v in model.state_dict().items()}


def train(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format

    train_set = load_dataset("fashion-mnist", "train")
    calib_set = load_dataset("fashion-mnist", "calibration")
    assert train_set.labels is not None
    model = create_model(args.model).to(device, memory_format=memory_format)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
    )
    steps_per_epoch = len(train_set) // args.batch_size  # the last partial batch is dropped
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15
    )
    gen = torch.Generator().manual_seed(args.seed)
    print(f"{args.model}: {params} params, {args.epochs} epochs of {steps_per_epoch} steps on {device}", flush=True)

    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            x = train_set.normalize(augment(train_set.raw[idx], gen))
            x = x.to(device, memory_format=memory_format)
            y = train_set.labels[idx].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        cal = top1(model, calib_set, device)
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / seen:.4f}  train {100 * correct / seen:.2f}%  "
            f"calibration {cal:.2f}%  {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # all threads; ~threads × seconds on an idle machine
    load_1min = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{args.model}.pt"
    torch.save(fp16_state_dict(model), path)
    stored = load(args.model, weights=path)  # measure what was stored, as users will load it
    test_acc = top1(stored, load_dataset("fashion-mnist", "test"), torch.device("cpu"))
    cal_acc = top1(stored, calib_set, torch.device("cpu"))
    entry: dict[str, object] = {
        "test_top1": round(test_acc, 2),
        "calibration_top1": round(cal_acc, 2),
        "params": params,
        "epochs": args.epochs,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "loadavg_1min_at_end": load_1min,  # > threads means other processes slowed the run down
        "seed": args.seed,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "weights_file": path.name,
        "weights_bytes": path.stat().st_size,
        "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "weights_dtype": "float16",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    print(f"{args.model}: test top-1 {test_acc:.2f}% with the stored weights ({path}), {seconds:.0f}s", flush=True)
    return entry


def write_result(results: Path, name: str, entry: dict[str, object]) -> None:
    """Merge ``entry`` under ``name`` into the JSON dict at ``results`` (other models are kept)."""
    data = json.loads(results.read_text()) if results.is_file() else {}
    data[name] = entry
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=list_models("ref-*"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    entry = train(args)
    write_result(args.results, args.model, entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
