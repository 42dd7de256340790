"""The weight-sharing autoencoder (Choi, Kim & Ko, ICTC 2021): one core for every split point of a model.

::

    features C_l×H×W ─► 1×1 adapter_l ─► core encoder (stride 2) ─► sigmoid ─► quantize to b bits
         ─► (ANS, per-channel tables of split l and bit-width b) ─► core decoder (×2) ─► crop H×W ─► 1×1 adapter_l

Only the two 1×1 adapters (C_l → width, width → C_l) and the entropy-model parameters belong to a split;
the core (three 3×3 convolutions each way) is shared, so an ``S``-split model has nearly ``1/S`` of the
parameters of ``S`` independent autoencoders of the same architecture.  The bit-width ``b`` is a run-time
choice: training samples it per step, so one set of weights serves every ``b``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from splitcodec.nn.density import FactorizedDensity
from splitcodec.nn.quant import check_bits, from_indices, quantize, to_indices

__all__ = ["WSAE", "SplitView", "MultiSplit", "BITS"]

#: the bit-widths the codec is trained for and serves
BITS = (2, 3, 4, 6, 8)


class WSAE(nn.Module):
    """Shared encoder/decoder core with thin per-split 1×1 adapters and a per-split factorized density."""

    def __init__(self, channels: Sequence[int], width: int = 48, latent: int = 16, mixtures: int = 3) -> None:
        super().__init__()
        self.channels, self.width, self.latent = list(channels), width, latent
        self.enc_adapters = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.dec_adapters = nn.ModuleList(nn.Conv2d(width, c, 1) for c in channels)
        self.encoder = nn.Sequential(
            nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(width, latent, 3, 1, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 2, 2), nn.ReLU(),
        )
        self.density = FactorizedDensity(latent, groups=len(channels), mixtures=mixtures)
        for m in self.modules():  # variance-preserving init: the latent must vary more than one 8-bit step
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.register_buffer("scales", torch.ones(len(channels)))
        self.bits, self.mode = 8, "ste"
        self.last_rate: torch.Tensor | None = None
        self.last_distortion: torch.Tensor | None = None

    def core_parameters(self) -> int:
        """Parameters of the shared encoder/decoder core."""
        return sum(p.numel() for m in (self.encoder, self.decoder) for p in m.parameters())

    def split_parameters(self, split: int) -> int:
        """Parameters that belong to one split: its two adapters and its density."""
        d = self.density
        return (sum(p.numel() for m in (self.enc_adapters[split], self.dec_adapters[split]) for p in m.parameters())
                + 3 * d.channels * d.mixtures)

    def analysis(self, x: torch.Tensor, split: int) -> torch.Tensor:
        """The latent in (0, 1), shape N × latent × ⌈H/2⌉ × ⌈W/2⌉."""
        return torch.sigmoid(self.encoder(self.enc_adapters[split](x / self.scales[split])))

    def synthesis(self, y_hat: torch.Tensor, split: int, size: tuple[int, int]) -> torch.Tensor:
        """Features of spatial ``size`` from a (quantized) latent."""
        h = self.decoder(y_hat)[..., : size[0], : size[1]]
        return self.dec_adapters[split](h) * self.scales[split]

    def indices(self, x: torch.Tensor, split: int, bits: int) -> torch.Tensor:
        """Integer latent (int64) of ``x`` at ``bits`` bits: what is entropy-coded."""
        return to_indices(self.analysis(x, split), bits)

    def reconstruct(self, k: torch.Tensor, split: int, bits: int, size: tuple[int, int]) -> torch.Tensor:
        """Features from integer latent ``k``."""
        return self.synthesis(from_indices(k, bits), split, size)

    def run(self, x: torch.Tensor, split: int, bits: int | None = None) -> torch.Tensor:
        """Quantize-and-reconstruct ``x`` at ``split``, recording ``last_rate`` (bits/element) and distortion."""
        bits = check_bits(self.bits if bits is None else bits)
        y_hat = quantize(self.analysis(x, split), bits, self.mode if self.training else "hard")
        self.last_rate = self.density.rate_bits(y_hat, bits, group=split) / x[0].numel()
        x_hat = self.synthesis(y_hat, split, tuple(x.shape[-2:]))
        err = F.mse_loss(x_hat, x, reduction="none").flatten(1).mean(1)
        self.last_distortion = err / self.scales[split].square()
        return x_hat


class SplitView(nn.Module):
    """The bottleneck of one split point: a view of a shared :class:`WSAE` (parameters shared)."""

    def __init__(self, wsae: WSAE, split: int) -> None:
        super().__init__()
        self.wsae, self.split = wsae, split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wsae.run(x, self.split)

    @property
    def last_rate(self) -> torch.Tensor | None:
        return self.wsae.last_rate

    @property
    def last_distortion(self) -> torch.Tensor | None:
        return self.wsae.last_distortion


class MultiSplit(nn.Module):
    """Several inserted models (one per split) trained as one: ``current`` picks the one each step runs."""

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.current = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets[self.current](x)

    @property
    def reference(self) -> nn.Module:
        return self.nets[self.current].reference

    @property
    def bottleneck(self) -> nn.Module:
        return self.nets[self.current].bottleneck


# --- weights files: fp16 state + architecture + split names + the integer tables ------------------------


def export(wsae: WSAE, splits: Sequence[str], model: str, meta: dict | None = None) -> dict:
    """A weights document: fp16 floating state, architecture, split names and int32 tables per bit-width."""
    tables = {b: torch.from_numpy(__import__("numpy").stack([wsae.density.integer_tables(b, s) for s in range(len(splits))]))
              for b in BITS}
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in wsae.state_dict().items()}
    arch = {"channels": wsae.channels, "width": wsae.width, "latent": wsae.latent, "mixtures": wsae.density.mixtures}
    return {"format": 1, "model": model, "splits": list(splits), "arch": arch, "state": state, "tables": tables,
            "meta": meta or {}}


def from_document(doc: dict) -> WSAE:
    """The :class:`WSAE` of a weights document (float32, eval mode)."""
    wsae = WSAE(**doc["arch"])
    wsae.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in doc["state"].items()})
    return wsae.eval()
