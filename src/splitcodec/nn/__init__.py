"""Training kit for learned feature codecs: insert a bottleneck at a split, fine-tune it, code its latent.

* :func:`insert` — ``tail(bottleneck(head(x)))`` from any traceable model, head/tail frozen or not;
* :func:`quantize` — straight-through or noisy rounding of a [0, 1] latent to ``bits`` bits;
* :class:`FactorizedDensity` — a learned per-channel entropy model, binned to any bit-width, exported as
  integer tables;
* :func:`fine_tune` with :class:`TrainConfig` — CE and/or distillation + λ·rate, seeded, resumable;
* :func:`encode_latent` / :func:`decode_latent` — ANS coding of integer latents with per-channel tables.
"""

from splitcodec.nn.density import FactorizedDensity, table_precision
from splitcodec.nn.insert import Inserted, insert
from splitcodec.nn.latent import decode_latent, encode_latent
from splitcodec.nn.quant import from_indices, quantize, ste_round, to_indices
from splitcodec.nn.train import TrainConfig, TrainResult, distill_loss, fine_tune

__all__ = [
    "FactorizedDensity",
    "Inserted",
    "TrainConfig",
    "TrainResult",
    "decode_latent",
    "distill_loss",
    "encode_latent",
    "fine_tune",
    "from_indices",
    "insert",
    "quantize",
    "ste_round",
    "table_precision",
    "to_indices",
]
