"""How well a fitted ``lightweight`` codec's error model matches the features it codes.

The codec predicts, from its fitted pre-activation model, the quantizer's MSE and index entropy;
:func:`fit_check` measures both on real features (by coding them) and the model's goodness of fit
(Kolmogorov–Smirnov distance, histogram total variation) on each given feature set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["FitCheck", "fit_check"]


@dataclass
class FitCheck:
    """The fitted model against the features (see :func:`fit_check`).

    ``model`` is None when the features were constant (nothing else is then filled in).
    ``fits`` maps a feature set's name to :func:`splitcodec.codecs.lightweight.fit_report`'s dict.
    ``measured_on`` names the set (the last given) on which MSE and index entropy were measured.
    """

    activation: str
    slope: float | None
    model: Any = None  # splitcodec.codecs.lightweight.FeatureModel
    fits: dict[str, dict[str, float]] = field(default_factory=dict)
    levels: list[float] = field(default_factory=list)
    clip: tuple[float, float] = (0.0, 0.0)
    model_mse: float = 0.0
    model_bits: float = 0.0
    measured_on: str = ""
    measured_mse: float = 0.0
    measured_bits: float = 0.0


def fit_check(codec: Any, sets: Sequence[tuple[str, torch.Tensor]], *, fits: bool = True) -> FitCheck:
    """Compare a fitted single-quantizer ``lightweight`` codec's model with named feature ``sets``.

    MSE and index entropy are measured on the last set; ``fits=False`` skips the goodness-of-fit
    reports.  Uses only the codec's public ``describe()``, ``encode`` and ``decode``.
    """
    from splitcodec.codecs.lightweight import FeatureModel, fit_report

    d = codec.describe()
    check = FitCheck(activation=d["activation"], slope=d["slope"])
    if "model" not in d:
        return check
    check.model = FeatureModel.from_json(d["model"], d["activation"], d["slope"])
    for name, feats in sets if fits else ():
        check.fits[name] = fit_report(check.model, feats.detach().float().numpy())
    check.levels, check.clip = list(d["levels"]), (d["clip"][0], d["clip"][1])
    check.model_mse, check.model_bits = d["model_mse"], d["model_bits"]
    name, feats = sets[-1]
    arr = feats.detach().float().numpy()
    x_hat = codec.decode(codec.encode(feats)).float().numpy()
    idx = np.searchsorted(np.float32(d["thresholds"]), arr, side="right")
    p = np.bincount(idx.ravel(), minlength=len(d["levels"])) / idx.size
    check.measured_on = name
    check.measured_mse = float(np.mean((x_hat - arr) ** 2))
    check.measured_bits = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    return check
