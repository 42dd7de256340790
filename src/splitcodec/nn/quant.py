"""Differentiable quantization of a bounded latent to ``bits`` bits.

The latent lives in ``[0, 1]``; ``bits`` bits give ``L = 2**bits`` levels ``k / (L - 1)``.  During
training the rounding is either *straight-through* (forward: round, backward: identity) or *additive
uniform noise* of one step (Ballé et al. 2017); at inference it is plain rounding, and the integer
indices ``k`` are what the entropy coder sees.

>>> import torch
>>> y = torch.tensor([0.1, 0.26, 0.74, 0.9], requires_grad=True)
>>> (quantize(y, bits=2) * 3).tolist()
[0.0, 1.0, 2.0, 3.0]
>>> quantize(y, bits=2).sum().backward(); y.grad.tolist()
[1.0, 1.0, 1.0, 1.0]
>>> to_indices(y.detach(), bits=2).tolist()
[0, 1, 2, 3]
"""

from __future__ import annotations

from typing import Literal

import torch

from splitcodec.errors import CodecError

__all__ = ["ste_round", "quantize", "to_indices", "from_indices", "check_bits", "MAX_BITS"]

MAX_BITS = 12
Mode = Literal["ste", "noise", "hard"]


def check_bits(bits: int) -> int:
    """Validate a bit-width (an int in 1..12) and return it."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise CodecError(f"bits must be an integer in 1..{MAX_BITS}, got {bits!r}")
    return bits


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, pass the gradient through unchanged (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def quantize(y: torch.Tensor, bits: int, mode: Mode = "ste") -> torch.Tensor:
    """Quantize ``y`` (clamped to [0, 1]) to ``2**bits`` levels; differentiable for ``ste``/``noise``.

    ``ste``: rounded values, identity gradient.  ``noise``: ``y`` plus uniform noise of ±half a step
    (a training proxy for rounding).  ``hard``: plain rounding (no gradient).
    """
    levels = (1 << check_bits(bits)) - 1
    scaled = y.clamp(0.0, 1.0) * levels
    if mode == "ste":
        q = ste_round(scaled)
    elif mode == "noise":
        q = (scaled + torch.empty_like(scaled).uniform_(-0.5, 0.5)).clamp(0.0, float(levels))
    elif mode == "hard":
        q = torch.round(scaled)
    else:
        raise CodecError(f'quantize: mode must be "ste", "noise" or "hard", got {mode!r}')
    return q / levels


def to_indices(y: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer level indices (int64) of ``y`` in [0, 1] at ``bits`` bits."""
    levels = (1 << check_bits(bits)) - 1
    return torch.round(y.clamp(0.0, 1.0) * levels).to(torch.int64)


def from_indices(k: torch.Tensor, bits: int) -> torch.Tensor:
    """Latent values (float32) of level indices ``k`` at ``bits`` bits."""
    levels = (1 << check_bits(bits)) - 1
    return k.to(torch.float32) / float(levels)
