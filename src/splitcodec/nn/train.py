"""The fine-tune loop: task loss (labels and/or distillation) + λ·rate, seeded, resumable.

Loss per step, on a batch drawn with a seeded generator::

    ce · CE(net(x), labels)                                   # when labels are given and ce > 0
  + distill_weight · D(net(x), reference(x))                  # "kl" on logits, "mse" or "cosine" on outputs
  + distortion · bottleneck.last_distortion                   # when the bottleneck reports one
  + lam · bottleneck.last_rate                                # bits per feature element

``reference`` is the uncut model (``net.reference``, see :func:`splitcodec.nn.insert`), so models
without labels (an embedding network) are trained by distillation alone.  Only parameters with
``requires_grad`` are optimised (Adam, linear warm-up then cosine decay).  A checkpoint (trainable
state, optimiser, step, random states) is written every ``checkpoint_every`` steps and at the end;
calling again with the same checkpoint path resumes from it.  ``threads`` sets
``torch.set_num_threads``; left at None, the caller's setting is respected.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from splitcodec.errors import SplitcodecError

__all__ = ["TrainConfig", "TrainResult", "fine_tune", "distill_loss"]

Distill = Literal["kl", "mse", "cosine", "none"]


class TrainingError(SplitcodecError):
    """Bad fine-tune inputs or an unusable checkpoint."""


@dataclass
class TrainConfig:
    """Settings of :func:`fine_tune` (all plain data, stored in checkpoints)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 50
    lam: float = 0.01
    ce: float = 0.0
    distill: Distill = "kl"
    distill_weight: float = 1.0
    temperature: float = 1.0
    distortion: float = 0.0
    grad_clip: float | None = 1.0
    seed: int = 0
    threads: int | None = None
    checkpoint: str | None = None
    checkpoint_every: int = 200
    log_every: int = 50
    progress: bool = True


@dataclass
class TrainResult:
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def distill_loss(out: torch.Tensor, ref: torch.Tensor, kind: Distill, temperature: float = 1.0) -> torch.Tensor:
    """Distance of ``out`` to the reference output: KL of softened logits, MSE, or 1 − cosine."""
    if kind == "kl":
        t = temperature
        return F.kl_div(F.log_softmax(out / t, 1), F.log_softmax(ref / t, 1), log_target=True, reduction="batchmean") * t * t
    if kind == "mse":
        return F.mse_loss(out, ref)
    if kind == "cosine":
        return (1 - F.cosine_similarity(out.flatten(1), ref.flatten(1), dim=1)).mean()
    raise TrainingError(f'distill must be "kl", "mse", "cosine" or "none", got {kind!r}')


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _trainable_state(net: nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in net.named_parameters() if p.requires_grad}
    return {k: v for k, v in net.state_dict().items() if k in names or "bottleneck." in k}


def _save(path: Path, net: nn.Module, opt: torch.optim.Optimizer, step: int, gen: torch.Generator, cfg: TrainConfig, history: list) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"step": step, "state": _trainable_state(net), "optimizer": opt.state_dict(), "generator": gen.get_state(),
         "torch_rng": torch.get_rng_state(), "config": asdict(cfg), "history": history},
        tmp,
    )
    tmp.replace(path)


def _step_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None, cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    out = net(x)
    parts: dict[str, torch.Tensor] = {}
    if y is not None and cfg.ce > 0:
        parts["ce"] = cfg.ce * F.cross_entropy(out, y)
    if cfg.distill != "none" and cfg.distill_weight > 0:
        with torch.no_grad():
            ref = net.reference(x)
        parts["distill"] = cfg.distill_weight * distill_loss(out, ref, cfg.distill, cfg.temperature)
    bottleneck = getattr(net, "bottleneck", None)
    dist = getattr(bottleneck, "last_distortion", None)
    if dist is not None and cfg.distortion > 0:
        parts["distortion"] = cfg.distortion * dist.mean()
    rate = getattr(bottleneck, "last_rate", None)
    if rate is not None:
        parts["rate"] = cfg.lam * rate.mean()
    if not parts:
        raise TrainingError("nothing to train on: give labels with ce > 0, a distill loss, or a bottleneck with a rate")
    loss = sum(parts.values())
    logs = {k: float(v.detach()) for k, v in parts.items()}
    logs["loss"] = float(loss.detach())
    if rate is not None:
        logs["bpe"] = float(rate.detach().mean())
    return loss, logs


def fine_tune(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    before_step: Callable[[int, torch.Generator], None] | None = None,
) -> TrainResult:
    """Train the trainable parameters of ``net`` (e.g. from :func:`insert`) on ``images`` (N × ...).

    ``before_step(step, generator)`` runs before each step (e.g. to pick a split point or a bit-width
    with the seeded generator).  Returns the step count, wall seconds and the logged history.
    """
    cfg = config or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if labels is not None and len(labels) != len(images):
        raise TrainingError(f"{len(images)} images but {len(labels)} labels")
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("net has no trainable parameters")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    start, history = 0, []
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt is not None and ckpt.exists():
        start, history = _resume(ckpt, net, opt, gen)
    t0 = time.perf_counter()
    with _progress(cfg, start) as advance:
        acc: dict[str, float] = {}
        for step in range(start, cfg.steps):
            if before_step is not None:
                before_step(step, gen)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * _lr_factor(step, cfg)
            idx = torch.randint(0, len(images), (cfg.batch_size,), generator=gen)
            net.train()
            loss, logs = _step_loss(net, images[idx], None if labels is None else labels[idx], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            for k, v in logs.items():
                acc[k] = acc.get(k, 0.0) + v
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                n = (step % cfg.log_every) + 1
                history.append({"step": step + 1, **{k: v / n for k, v in acc.items()}})
                acc = {}
            advance(step + 1, logs)
            if ckpt is not None and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps):
                _save(ckpt, net, opt, step + 1, gen, cfg, history)
    net.eval()
    return TrainResult(steps=cfg.steps, seconds=time.perf_counter() - t0, history=history)


def _resume(path: Path, net: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> tuple[int, list]:
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
        net.load_state_dict(state["state"], strict=False)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise TrainingError(f"cannot resume from checkpoint {path}: {exc}") from exc
    return int(state["step"]), list(state.get("history", []))


class _progress:
    """A rich progress bar (or nothing) as a context manager yielding ``advance(step, logs)``."""

    def __init__(self, cfg: TrainConfig, start: int) -> None:
        self.cfg, self.start, self.bar = cfg, start, None

    def __enter__(self) -> Callable[[int, dict[str, float]], None]:
        if not self.cfg.progress:
            return lambda step, logs: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("fine-tune"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"))
        self.bar.__enter__()
        task = self.bar.add_task("train", total=self.cfg.steps, completed=self.start, info="")

        def advance(step: int, logs: dict[str, float]) -> None:
            info = " ".join(f"{k}={v:.3g}" for k, v in logs.items())
            self.bar.update(task, completed=step, info=info)

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
