"""Train a ``gf2`` NDR bottleneck (fixed-point bit-planes → learned binary code) at one split of a model.

    python scripts/train_gf2.py --model ref-resnet --split layer2 --reduction 1x1 [--bits 4] [--steps 1500]
    python scripts/train_gf2.py --model mobilenetv2-imagenet --split features.14.conv.1 --reduction 1x1

The fixed-point format (``--bits`` planes, fractional length from the 99.99th percentile of |x|) is fitted
on training features; the code has ``--code-ratio`` × bits·C channels (1×1: default ½, the paper's 2×
less memory; 3×3 stride 2: default 1, i.e. 4× less).  Loss (``splitcodec.nn.fine_tune``): KL to the uncut
model's logits (+ ``--ce`` · cross-entropy on labels) + λ · the code's estimated entropy per element; for
an embedding model (no labels), 1 − cosine to the uncut embedding.  Head and tail stay frozen.
Fashion-MNIST models train on the ``train`` split; ``mobilenetv2-imagenet`` on the ``calibration``
photos (the benchmark's test photos are never seen).  After training, per-code-channel Bernoulli
tables for ANS are counted on 2,000 training samples and the entry ``<split>/<reduction>`` is written
into ``src/splitcodec/models/weights/gf2-<model>.pt`` (other entries kept).  Seeded, resumable
(``--checkpoint-dir``), one thread by default.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from splitcodec.data import load_dataset
from splitcodec.entropy import quantize_pmf
from splitcodec.models import get_model_cfg, load
from splitcodec.nn import TrainConfig, fine_tune, insert
from splitcodec.nn.gf2 import FixedPoint, GF2Bottleneck, calibrate, export

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "splitcodec" / "models" / "weights"


def training_data(model: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images (and labels when the model has classes) the bottleneck trains on."""
    cfg = get_model_cfg(model)
    if cfg.num_classes is None:
        return load_dataset(cfg.dataset, "calibration").images, None
    data = load_dataset(cfg.dataset, "train")
    return data.images, data.labels


@torch.no_grad()
def bernoulli_tables(bn: GF2Bottleneck, head: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """Integer tables (K × 2) of each code channel's 0/1 frequencies on ``images`` (add-one smoothed)."""
    ones = zeros = None
    for chunk in images.split(250):
        code = bn.encode_bits(head(chunk))
        c1 = code.sum(dim=(0, 2, 3)).double()
        c0 = code.numel() / code.shape[1] - c1
        ones, zeros = (c1, c0) if ones is None else (ones + c1, zeros + c0)
    return np.stack([quantize_pmf(np.array([z + 1, o + 1]), 16) for z, o in zip(zeros.tolist(), ones.tolist())])


@torch.no_grad()
def fewest_bits(probe: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None, calib: torch.Tensor) -> FixedPoint:
    """The fewest fixed-point bits (2..8) keeping top-1 within 0.3 pp (cosine ≥ 0.999 without labels)."""
    feats = probe.head(images)
    ref = probe.tail(feats)
    for bits in range(2, 9):
        fmt = calibrate(calib, bits)
        out = probe.tail(fmt.value(fmt.quantize(feats)))
        if labels is None:
            ok = float(torch.nn.functional.cosine_similarity(out, ref, dim=1).mean()) >= 0.999
        else:
            ok = float((out.argmax(1) == labels[: len(images)]).float().mean() - (ref.argmax(1) == labels[: len(images)]).float().mean()) >= -0.003
        if ok:
            return fmt
    return calibrate(calib, 8)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--reduction", choices=["1x1", "3x3s2"], default="1x1")
    ap.add_argument("--bits", type=int, help="fixed-point bits (default: the fewest whose top-1 on 2,000 "
                    "training images is within 0.3 pp of the uncut model's)")
    ap.add_argument("--code-ratio", type=float, help="code channels / (bits·C); default 0.5 (1x1) or 1 (3x3s2)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--ce", type=float, default=0.5)
    ap.add_argument("--distortion", type=float, default=0.0, help="weight of the relative feature MSE term")
    ap.add_argument("--out", help="weights file (default: src/splitcodec/models/weights/gf2-<model>.pt)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint-dir", default=str(REPO / ".cache" / "gf2"))
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images, labels = training_data(args.model)
    model = load(args.model)
    probe = insert(model, args.split, torch.nn.Identity(), images[:1])
    with torch.no_grad():
        calib = probe.head(images[torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[:1000]])
    fmt = calibrate(calib, args.bits) if args.bits else fewest_bits(probe, images[:2000], labels, calib)
    ratio = args.code_ratio or (0.5 if args.reduction == "1x1" else 1.0)
    channels = calib.shape[1]
    bottleneck = GF2Bottleneck(channels, fmt, max(1, round(ratio * fmt.bits * channels)), args.reduction)
    net = insert(model, args.split, bottleneck, images[:1])
    embedding = labels is None
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, lam=args.lam, distortion=args.distortion,
                      ce=0.0 if embedding else args.ce, distill="cosine" if embedding else "kl",
                      seed=args.seed, log_every=100, progress=args.progress,
                      checkpoint=str(Path(args.checkpoint_dir) / f"{args.model}-{args.split}-{args.reduction}.ckpt"))
    Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = fine_tune(net, images, labels, config=cfg)
    seconds = time.perf_counter() - t0
    bottleneck.eval()
    tables = bernoulli_tables(bottleneck, net.head, images[:2000])
    meta = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "lam": args.lam, "ce": cfg.ce, "distortion": args.distortion,
            "distill": cfg.distill, "seed": args.seed, "threads": args.threads, "code_ratio": ratio,
            "train_seconds": round(seconds, 1), "history": result.history[-2:]}
    entry = export(bottleneck, args.model, args.split, tables.tolist(), meta)
    out = Path(args.out) if args.out else WEIGHTS / f"gf2-{args.model}.pt"
    doc = torch.load(out, weights_only=True) if out.exists() else {"format": 1, "model": args.model, "entries": {}}
    doc["entries"][f"{args.split}/{args.reduction}"] = entry
    torch.save(doc, out)
    print(f"{args.model}@{args.split}/{args.reduction}: fixed point {fmt.as_dict()}, K={bottleneck.code_channels}, "
          f"{args.steps} steps in {seconds:.0f} s -> {out}; last {result.history[-1] if result.history else {}}", flush=True)


if __name__ == "__main__":
    main()
