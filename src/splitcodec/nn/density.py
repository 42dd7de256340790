"""A small learned entropy model: a factorized density per channel, binned to the quantizer's levels.

Each (group, channel) has a mixture of ``M`` logistics on the latent's range [0, 1].  The probability of
level ``k`` of a ``bits``-bit quantizer is the mixture's mass on that level's bin (the first and last bins
reach to ∓∞), so one set of parameters serves every bit-width.  The rate of a quantized latent is
``-log2`` of those probabilities, differentiable in the latent and in the parameters (as in CompressAI's
``EntropyBottleneck``, Ballé et al. 2018, with a simpler univariate family).  ``groups`` lets one model
hold separate densities for, e.g., the split points of a weight-sharing autoencoder.

For coding, :meth:`FactorizedDensity.integer_tables` turns the binned pmfs into integer tables with
:func:`splitcodec.entropy.quantize_pmf`; they are computed once at export and stored, so the decoder
never evaluates a float density.

>>> import torch
>>> d = FactorizedDensity(channels=2)
>>> p = d.pmf(bits=3)
>>> tuple(p.shape), bool(torch.allclose(p.sum(-1), torch.ones(2)))
((2, 8), True)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from splitcodec.entropy import quantize_pmf
from splitcodec.nn.quant import check_bits

__all__ = ["FactorizedDensity", "table_precision"]

_TINY = 1e-9


def table_precision(bits: int) -> int:
    """Precision (log2 of the total count) of the integer table for a ``bits``-bit alphabet."""
    return min(24, max(16, bits + 8))


class FactorizedDensity(nn.Module):
    """Per-(group, channel) mixture of logistics on [0, 1]; probabilities of quantizer bins."""

    def __init__(self, channels: int, groups: int = 1, mixtures: int = 3) -> None:
        super().__init__()
        self.channels, self.groups, self.mixtures = channels, groups, mixtures
        means = torch.linspace(0.1, 0.9, mixtures).expand(groups, channels, mixtures).clone()
        self.means = nn.Parameter(means)
        self.log_scales = nn.Parameter(torch.full((groups, channels, mixtures), -2.0))
        self.logits = nn.Parameter(torch.zeros(groups, channels, mixtures))

    def _cdf(self, x: torch.Tensor, group: int) -> torch.Tensor:
        """Mixture CDF at ``x`` of shape (N, C, ...)."""
        shape = (1, self.channels, *([1] * (x.dim() - 2)), self.mixtures)
        mu = self.means[group].reshape(shape)
        inv_s = torch.exp(-self.log_scales[group]).reshape(shape)
        w = F.softmax(self.logits[group], dim=-1).reshape(shape)
        return (w * torch.sigmoid((x.unsqueeze(-1) - mu) * inv_s)).sum(-1)

    def likelihood(self, y_hat: torch.Tensor, bits: int, group: int = 0) -> torch.Tensor:
        """Probability of each quantized value of ``y_hat`` (N, C, ...) under the ``bits``-bit binning."""
        half = 0.5 / ((1 << check_bits(bits)) - 1)
        lower = torch.where(y_hat - half <= 0, torch.zeros_like(y_hat), self._cdf(y_hat - half, group))
        upper = torch.where(y_hat + half >= 1, torch.ones_like(y_hat), self._cdf(y_hat + half, group))
        return (upper - lower).clamp_min(_TINY)

    def rate_bits(self, y_hat: torch.Tensor, bits: int, group: int = 0) -> torch.Tensor:
        """Total information content of ``y_hat`` in bits, summed per sample: shape (N,)."""
        return -torch.log2(self.likelihood(y_hat, bits, group)).flatten(1).sum(1)

    def pmf(self, bits: int, group: int = 0) -> torch.Tensor:
        """The binned pmf, shape (channels, 2**bits), each row summing to 1."""
        levels = 1 << check_bits(bits)
        edges = (torch.arange(1, levels, dtype=torch.float32) - 0.5) / (levels - 1)
        cdf = self._cdf(edges.expand(1, self.channels, levels - 1).contiguous(), group)[0]
        ones = torch.ones(self.channels, 1)
        full = torch.cat([torch.zeros(self.channels, 1), cdf, ones], dim=1)
        return (full[:, 1:] - full[:, :-1]).clamp_min(0.0)

    @torch.no_grad()
    def integer_tables(self, bits: int, group: int = 0) -> np.ndarray:
        """Integer pmf tables (channels × 2**bits, int32) summing to ``2**table_precision(bits)`` per row."""
        p = self.pmf(bits, group).double().numpy()
        prec = table_precision(bits)
        return np.stack([quantize_pmf(row, prec) for row in p]).astype(np.int32)
