"""Train the input-reconstruction decoder (features -> image) of one model at one split, on CPU.

    python scripts/train_reconstruction.py --model ref-resnet              # default split
    python scripts/train_reconstruction.py --model ref-darknet --split stage2.down --minutes 15

Features of ``--train-samples`` training images are computed once by the model's head; the decoder
(:class:`splitcodec.reconstruct.FeatureDecoder`) is trained with MSE on [0, 1] pixels.  Half of the
batches see the features after per-sample 8-bit min–max quantization (what ``nearlossless`` delivers),
so the decoder serves uncompressed and near-lossless features alike.  The learning rate warms up, then follows a cosine to zero over ``--epochs`` or
``--minutes``, whichever runs out first; the weights (float16) go to
``src/splitcodec/models/weights/recon-<model>-<split>.pt`` with the training provenance.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from splitcodec.data import load_dataset
from splitcodec.models import load
from splitcodec.reconstruct import FeatureDecoder, load_reconstructor, psnr, save_reconstructor, to_uint8, weights_path
from splitcodec.pipeline import cut
from splitcodec.tiling import dequantize, quantize


def quantize_features(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Per-sample min–max quantization to ``bits`` and back (the near-lossless codec's only loss)."""
    return torch.stack([torch.from_numpy(dequantize(*quantize(s.numpy(), bits), bits)) for s in x])


@torch.no_grad()
def head_features(head: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([head(images[i : i + batch]) for i in range(0, len(images), batch)])


def weights_sha256(name: str | None) -> str | None:
    """SHA-256 of the model weights the head came from (a decoder only fits the head it was trained on)."""
    import hashlib

    from splitcodec.models.registry import WEIGHTS_DIR

    if name is None:
        return None
    path = Path(name) if Path(name).is_absolute() else WEIGHTS_DIR / name
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--split", default=None, help="split point (default: the model's default split)")
    ap.add_argument("--train-samples", type=int, default=20000)
    ap.add_argument("--val-samples", type=int, default=500)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget for training")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--init", type=Path, default=None, help="continue from these decoder weights (fresh schedule)")
    return ap.parse_args(argv)


def build_decoder(args: argparse.Namespace, cfg, split: str, feats: torch.Tensor, targets: torch.Tensor) -> tuple[FeatureDecoder, dict]:
    """A fresh decoder, or the one in ``--init`` (and its training provenance) to continue."""
    if args.init is None:
        decoder = FeatureDecoder(tuple(feats.shape[1:]), tuple(targets.shape[1:]), width=args.width)
        decoder.set_feature_stats(feats[:4000].float())
        return decoder, {}
    decoder = load_reconstructor(args.model, split, path=args.init)
    previous = decoder.meta  # type: ignore[attr-defined]
    if previous.get("model_weights_sha256") not in (None, weights_sha256(cfg.weights)):
        raise SystemExit(f"{args.init} was trained on other {args.model} weights")
    return decoder, previous


def train(decoder: FeatureDecoder, feats: torch.Tensor, targets: torch.Tensor, val, val_feats: torch.Tensor,
          args: argparse.Namespace) -> tuple[float, float, float]:
    """Train with MSE, half the batches on 8-bit features; returns (epochs, last val PSNR, seconds)."""
    steps_per_epoch = math.ceil(len(feats) / args.batch)
    total = steps_per_epoch * args.epochs
    budget = args.minutes * 60
    opt = torch.optim.AdamW(decoder.parameters(), lr=args.lr, weight_decay=1e-4)
    start = time.perf_counter()
    step, progress, epochs_done, val_psnr = 0, 0.0, 0.0, float("nan")
    while progress < 1.0:
        decoder.train()
        perm = torch.randperm(len(feats))
        loss_sum, seen = 0.0, 0
        for i in range(steps_per_epoch):
            # schedule on whichever runs out first, steps or wall-clock: warm-up, then cosine to zero
            progress = max(step / total, (time.perf_counter() - start) / budget)
            if progress >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = args.lr * min(1.0, progress / 0.05) * 0.5 * (1 + math.cos(math.pi * progress))
            idx = perm[i * args.batch : (i + 1) * args.batch]
            x = feats[idx].float()
            if step % 2:
                x = quantize_features(x)
            loss = F.mse_loss(decoder(x), targets[idx].float() / 255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step, seen, loss_sum = step + 1, seen + 1, loss_sum + loss.item()
        epochs_done = step / steps_per_epoch
        decoder.eval()
        with torch.no_grad():
            val_psnr = psnr(val.raw, to_uint8(decoder(val_feats)))
            val_psnr_q = psnr(val.raw, to_uint8(decoder(quantize_features(val_feats))))
        print(
            f"epoch {epochs_done:5.2f}  train mse {loss_sum / max(seen, 1):.5f}  val PSNR {val_psnr:.2f} dB "
            f"(8-bit features {val_psnr_q:.2f} dB)  {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return epochs_done, val_psnr, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = load(args.model)
    cfg = model.splitcodec_cfg
    split = args.split or cfg.default_split
    train_set = load_dataset(cfg.dataset, "train").subset(args.train_samples)
    val = load_dataset(cfg.dataset, "calibration").subset(args.val_samples)
    head = cut(model, split, example_input=train_set.images[:1]).head.eval()
    t0 = time.perf_counter()
    feats = head_features(head, train_set.images).to(torch.float16)
    val_feats = head_features(head, val.images)
    print(f"{args.model}@{split}: features {tuple(feats.shape[1:])} of {len(feats)} images in {time.perf_counter() - t0:.0f} s")
    decoder, previous = build_decoder(args, cfg, split, feats, train_set.raw)
    print(f"decoder: {sum(p.numel() for p in decoder.parameters()):,} parameters")
    epochs_done, val_psnr, seconds = train(decoder, feats, train_set.raw, val, val_feats, args)
    out = args.out or weights_path(args.model, split)
    save_reconstructor(
        decoder,
        out,
        model=args.model,
        split=split,
        dataset=cfg.dataset,
        train_samples=len(feats),
        epochs=round(epochs_done + previous.get("epochs", 0), 2),
        minutes=round(seconds / 60 + previous.get("minutes", 0), 1),
        runs=previous.get("runs", 1 if previous else 0) + 1,
        val_psnr=round(val_psnr, 2),
        model_weights_sha256=weights_sha256(cfg.weights),
        script="scripts/train_reconstruction.py",
    )
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
