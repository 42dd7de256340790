"""Train the ``wsae`` codec (one shared autoencoder for every split) or its independent baselines.

    python scripts/train_wsae.py --model ref-resnet [--steps 1600] [--threads 1]
    python scripts/train_wsae.py --model ref-resnet --independent      # one AE per split, steps/S each

Shared: each step takes the next split round-robin and a bit-width drawn from {2, 3, 4, 6, 8}; the loss is
KL to the uncut model's logits + ``--distortion`` · normalized feature MSE + λ · bits per element
(``splitcodec.nn.fine_tune``).  Independent baselines: the same architecture with one split each, the same
loss and batch, ``steps / S`` steps each, so both variants spend the same number of steps on each split and
the same compute in total.  Writes ``src/splitcodec/models/weights/wsae-<model>.pt`` (shared) or
``benchmarks/results/wsae_baselines/<model>-<split>.pt``; checkpoints in ``--checkpoint-dir`` let a killed
run resume.  Seeded; run with ``nohup … > log &`` and poll.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from splitcodec.data import load_dataset
from splitcodec.models import load
from splitcodec.nn import TrainConfig, fine_tune, insert
from splitcodec.nn.wsae import BITS, WSAE, MultiSplit, SplitView, export, from_document

REPO = Path(__file__).resolve().parents[1]
SPLITS = {
    "ref-resnet": ["layer1", "layer2.0", "layer2", "layer3.0", "layer3"],
    "ref-darknet": ["stage1.down", "stage1", "stage2.down", "stage2", "stage3.down", "stage3"],
}


@torch.no_grad()
def _scales(nets, images: torch.Tensor) -> torch.Tensor:
    """RMS of each split's features on a few images (the adapters then see unit-scale input)."""
    return torch.stack([net.head(images).square().mean().sqrt().clamp_min(1e-3) for net in nets])


def train(model_name: str, splits: list[str], cfg: TrainConfig, images: torch.Tensor, args, init: dict | None = None) -> tuple[WSAE, float, list]:
    model = load(model_name)
    probe = images[:1]
    channels = [insert(model, s, torch.nn.Identity(), probe).point.shape[0] for s in splits]
    wsae = WSAE(channels, width=args.width, latent=args.latent)
    nets = [insert(model, s, SplitView(wsae, i), probe) for i, s in enumerate(splits)]
    wsae.scales.copy_(_scales(nets, images[:256]))
    if init is not None:  # continue from an earlier run's weights (a second phase)
        wsae.load_state_dict(from_document(init).state_dict())
    multi = MultiSplit(nets)

    def before_step(step: int, gen: torch.Generator) -> None:
        multi.current = step % len(splits)
        wsae.bits = BITS[int(torch.randint(0, len(BITS), (1,), generator=gen))]

    t0 = time.perf_counter()
    result = fine_tune(multi, images, config=cfg, before_step=before_step)
    return wsae, time.perf_counter() - t0, result.history


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=sorted(SPLITS))
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lam", type=float, default=0.02)
    ap.add_argument("--distortion", type=float, default=0.5)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--independent", action="store_true", help="train the per-split baselines instead")
    ap.add_argument("--checkpoint-dir", default=str(REPO / ".cache" / "wsae"))
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--resume-from-output", action="store_true",
                    help="start from the weights already at the output path and train --steps more (a phase)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = load_dataset("fashion-mnist", "train").images
    splits = SPLITS[args.model]
    ckdir = Path(args.checkpoint_dir)
    ckdir.mkdir(parents=True, exist_ok=True)
    groups = [[s] for s in splits] if args.independent else [splits]
    for group in groups:
        steps = args.steps // len(splits) if args.independent else args.steps
        tag = f"{args.model}-{group[0]}" if args.independent else args.model
        out = (REPO / "benchmarks" / "results" / "wsae_baselines" / f"{tag}.pt" if args.independent
               else REPO / "src" / "splitcodec" / "models" / "weights" / f"wsae-{args.model}.pt")
        init = torch.load(out, weights_only=True) if args.resume_from_output else None
        phases = (init["meta"].get("phases", [init["meta"]]) if init else [])
        cfg = TrainConfig(steps=steps, batch_size=args.batch, lr=args.lr, lam=args.lam, distortion=args.distortion,
                          seed=args.seed + len(phases), log_every=50, progress=args.progress,
                          checkpoint=str(ckdir / f"{tag}{'-ind' if args.independent else ''}-{len(phases)}.ckpt"))
        wsae, seconds, history = train(args.model, group, cfg, images, args, init)
        phase = {"steps": steps, "batch": args.batch, "lr": args.lr, "lam": args.lam, "distortion": args.distortion,
                 "seed": cfg.seed, "threads": args.threads, "train_seconds": round(seconds, 1), "history": history[-2:]}
        phases = [{k: v for k, v in p.items() if k != "phases"} for p in phases] + [phase]
        meta = {"steps": sum(p["steps"] for p in phases), "train_seconds": round(sum(p["train_seconds"] for p in phases), 1),
                "independent": args.independent, "phases": phases}
        doc = export(wsae, group, args.model, meta)
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(doc, out)
        print(f"{tag}: {steps} steps in {seconds:.0f} s -> {out} ; last {history[-1] if history else {}}", flush=True)


if __name__ == "__main__":
    main()
