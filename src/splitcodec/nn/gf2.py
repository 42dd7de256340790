"""gf2 (Gudovskiy et al., ECCV-W 2018): fixed-point features as bit-planes over GF(2), reduced by learned binary layers.

::

    features C×H×W ─► fixed point (bits B, fractional length fl) ─► B·C binary planes (LSB first, channel b·C + c)
        ─► NDR encoder: 1×1 conv (or 3×3 stride-2 conv) + BN + ReLU, binarised ─► K×h×w bits (sent)
        ─► NDR decoder: 1×1 conv (or 3×3 stride-2 transposed conv), binarised ─► B·C planes ─► Σ_b plane_b · 2^(b − fl)

Fixed point: ``q = clamp(rint(x · 2^fl), lo, hi)`` with ``[lo, hi] = [0, 2^B − 1]`` for non-negative (ReLU)
features and the two's-complement range ``[−2^(B−1), 2^(B−1) − 1]`` otherwise (the paper's signed quantizer;
for ReLU features its sign plane is always zero, so an unsigned ``B`` equals the paper's ``bw = B + 1``).
A two's-complement integer's planes are those of ``q mod 2^B``; its top plane weighs ``−2^(B−1)``.

Training uses the straight-through estimator for every binarisation, and the gradient flowing back
into an input plane is masked by that plane's bit (as in the paper's code); with a frozen head that
gradient is not used, but the transform is exact in both directions.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from splitcodec.errors import CodecError

__all__ = ["FixedPoint", "calibrate", "to_planes", "from_planes", "binarize", "GF2Bottleneck", "Reduction",
           "export", "from_document"]

Reduction = Literal["1x1", "3x3s2"]
MAX_PLANES = 16


class FixedPoint:
    """The fixed-point format ``(bits, fl, signed)`` and its integer ↔ value maps (torch tensors)."""

    def __init__(self, bits: int, fl: int, signed: bool) -> None:
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_PLANES:
            raise CodecError(f"gf2: bits must be an integer in 1..{MAX_PLANES}, got {bits!r}")
        if not isinstance(fl, int) or isinstance(fl, bool) or not -32 <= fl <= 32:
            raise CodecError(f"gf2: fractional length fl must be an integer in -32..32, got {fl!r}")
        self.bits, self.fl, self.signed = bits, fl, bool(signed)
        self.lo = -(1 << (bits - 1)) if signed else 0
        self.hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels (int64) of ``x``."""
        return torch.round(x * 2.0**self.fl).clamp(self.lo, self.hi).to(torch.int64)

    def value(self, q: torch.Tensor) -> torch.Tensor:
        """Float32 values of integer levels ``q``."""
        return q.to(torch.float32) * 2.0 ** (-self.fl)

    def plane_weights(self) -> torch.Tensor:
        """Weight of each plane in value units, LSB first (the top one negative when signed)."""
        w = torch.tensor([2.0 ** (b - self.fl) for b in range(self.bits)])
        if self.signed:
            w[-1] = -w[-1]
        return w

    def as_dict(self) -> dict:
        return {"bits": self.bits, "fl": self.fl, "signed": self.signed}


def calibrate(features: torch.Tensor, bits: int, signed: bool | None = None) -> FixedPoint:
    """The fixed-point format of ``bits`` bits with the least squared error on ``features``.

    Candidates: from the fractional length whose range holds the largest ``|x|`` up to 8 steps finer
    (clipping a few outliers buys resolution for the rest).  ``signed`` defaults to "any x < 0".
    """
    flat = features.detach().flatten().float()
    sample = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(0))[:1_000_000]]
    signed = bool(sample.min() < 0) if signed is None else signed
    top = max(float(sample.abs().max()) if len(sample) else 1.0, 1e-6)
    limit = max((1 << (bits - 1)) - 1 if signed else (1 << bits) - 1, 1)
    first = max(-32, min(32, math.floor(math.log2(limit / top))))
    best = None
    for fl in range(first, min(32, first + 8) + 1):
        fmt = FixedPoint(bits, fl, signed)
        err = float((fmt.value(fmt.quantize(sample)) - sample).square().mean())
        if best is None or err < best[0]:
            best = (err, fmt)
    return best[1]


def to_planes(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Binary planes (float 0/1) of integers ``q`` (N × C × ...): N × bits·C × ..., channel ``b·C + c``."""
    u = q.to(torch.int64) & ((1 << bits) - 1)  # two's complement of negatives
    planes = [(u >> b) & 1 for b in range(bits)]
    return torch.cat(planes, dim=1).to(torch.float32)


def from_planes(planes: torch.Tensor, fmt: FixedPoint) -> torch.Tensor:
    """Values Σ_b plane_b · weight_b of planes (N × bits·C × ...) in the format ``fmt`` (differentiable)."""
    n, bc = planes.shape[:2]
    if bc % fmt.bits:
        raise CodecError(f"gf2: {bc} planes is not a multiple of {fmt.bits} bits")
    p = planes.reshape(n, fmt.bits, bc // fmt.bits, *planes.shape[2:])
    w = fmt.plane_weights().to(planes.dtype).reshape(1, fmt.bits, *([1] * (p.dim() - 2)))
    return (p * w).sum(1)


class _PlaneSplit(torch.autograd.Function):
    """Planes of fixed-point ``x``; backward: each plane's gradient, times its weight, masked by its bit."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bits: int, fl: int, signed: bool) -> torch.Tensor:
        fmt = FixedPoint(bits, fl, signed)
        planes = to_planes(fmt.quantize(x), bits)
        ctx.save_for_backward(planes)
        ctx.fmt = fmt
        return planes

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (planes,) = ctx.saved_tensors
        return from_planes(grad * planes, ctx.fmt), None, None, None


def split_planes(x: torch.Tensor, fmt: FixedPoint) -> torch.Tensor:
    """:func:`to_planes` of ``fmt.quantize(x)`` with the bit-masked plane gradient."""
    return _PlaneSplit.apply(x, fmt.bits, fmt.fl, fmt.signed)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """``round(clamp(x, 0, 1))`` forward; gradient of the clamp backward (straight-through)."""
    c = x.clamp(0.0, 1.0)
    return c + (torch.round(c) - c).detach()


class GF2Bottleneck(nn.Module):
    """Fixed point → planes → binary NDR code of ``code_channels`` → planes → values (a trainable bottleneck)."""

    def __init__(self, channels: int, fmt: FixedPoint, code_channels: int, reduction: Reduction = "1x1") -> None:
        super().__init__()
        if reduction not in ("1x1", "3x3s2"):
            raise CodecError(f'gf2: reduction must be "1x1" or "3x3s2", got {reduction!r}')
        planes = fmt.bits * channels
        self.channels, self.fmt, self.code_channels, self.reduction = channels, fmt, code_channels, reduction
        if reduction == "1x1":
            self.enc = nn.Conv2d(planes, code_channels, 1, bias=False)
            self.dec = nn.Conv2d(code_channels, planes, 1)
        else:
            self.enc = nn.Conv2d(planes, code_channels, 3, 2, 1, bias=False)
            self.dec = nn.ConvTranspose2d(code_channels, planes, 3, 2, 1, output_padding=1)
        self.bn = nn.BatchNorm2d(code_channels)
        self.last_rate: torch.Tensor | None = None
        self.last_distortion: torch.Tensor | None = None

    def code_size(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size of the binary code for features of size h × w."""
        return (h, w) if self.reduction == "1x1" else ((h + 1) // 2, (w + 1) // 2)

    def encode_bits(self, x: torch.Tensor) -> torch.Tensor:
        """The binary code (float 0/1, N × K × h × w) of features ``x``; STE-differentiable."""
        return binarize(F.relu(self.bn(self.enc(split_planes(x, self.fmt)))))

    def decode_bits(self, code: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Features of spatial ``size`` from a binary code."""
        planes = binarize(self.dec(code)[..., : size[0], : size[1]])
        return from_planes(planes, self.fmt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.encode_bits(x)
        # rate proxy for entropy coding: per-channel binary entropy of the batch mean (bits per element)
        p = code.mean(dim=(0, 2, 3)).clamp(1e-4, 1 - 1e-4)
        ent = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
        per_sample = ent.sum() * code[0, 0].numel() / x[0].numel()
        self.last_rate = per_sample.expand(len(x))
        y = self.decode_bits(code, tuple(x.shape[-2:]))
        # feature error relative to the features' energy, per sample (an optional training term)
        self.last_distortion = (y - x).square().flatten(1).mean(1) / x.detach().square().mean().clamp_min(1e-12)
        return y


# --- weights documents ---------------------------------------------------------------------------------


def export(bn: GF2Bottleneck, model: str, split: str, tables: list, meta: dict | None = None) -> dict:
    """A weights document: fp16 state, fixed-point format, architecture and per-code-channel integer tables."""
    return {"format": 1, "model": model, "split": split, "fixed_point": bn.fmt.as_dict(),
            "arch": {"channels": bn.channels, "code_channels": bn.code_channels, "reduction": bn.reduction},
            "state": {k: v.half() if v.is_floating_point() else v for k, v in bn.state_dict().items()}, "tables": torch.as_tensor(tables),
            "meta": meta or {}}


def from_document(doc: dict) -> GF2Bottleneck:
    """The :class:`GF2Bottleneck` of a weights document, in eval mode."""
    fmt = FixedPoint(**doc["fixed_point"])
    bn = GF2Bottleneck(fmt=fmt, **doc["arch"])
    bn.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in doc["state"].items()})
    return bn.eval()
