"""``lightweight``: model-derived clipping + entropy-constrained scalar quantizer + ANS, no retraining.

After Choi, Bajić & Cohen, "Lightweight compression of intermediate neural network features for
collaborative intelligence" (2021)::

    fit (once, ≤ 64 calibration samples)                 encode (per sample)         decode
    ────────────────────────────────────                 ───────────────────         ──────
    features ─► pre-activation model (Gaussian /         y ─► cell index             ANS ─► index
      Laplace / generalised Gaussian, seen through         (N-1 thresholds)           ─► levels[c, index]
      ReLU / ReLU6 / leaky-ReLU)                         ─► ANS (constriction)        (table lookup)
      ─► clip range + levels (min D + λR)
      ─► ECSQ design ─► integer probability tables
      ═════════════ codec config, sent once ═════════════►

``fit`` puts everything the decoder needs in the codec config: thresholds, reconstruction levels and
integer probability tables.  ``encode(x, config="ref")`` writes only the config's 4-byte reference, so a
per-sample stream is the 16-byte container + the ANS words; ``encode(x)`` carries the config inline
(self-describing, but kilobytes per stream).  A receiver holds configs in a
:class:`~splitcodec.codecs.ConfigStore`.

Rate knob: ``lam`` (λ, in units of the calibration features' mean square per bit:
``J = MSE / E[y²] + λ · bits``).  The clip range and (unless ``levels`` is given) the number of levels
minimise ``J`` under the fitted model; the ECSQ design then runs on the clipped calibration features with
the same λ, the level nearest 0 pinned at 0 for ReLU.  Ablations are parameters: ``clip="minmax" |
"percentile" | "model"``, ``quantizer="uniform" | "ecsq"``, ``per_channel`` (a quantizer per channel).
Three refinements of the coding are on by default (measured in ``benchmarks/lightweight.py``), none adds
per-sample bytes: ``channel_tables`` (probability tables per group of similar channels),
``channel_levels`` (a reconstruction value per channel and cell) and ``context`` (a checkerboard
context model of 4-D maps).

Modules, in the order the data flows:

* :mod:`.densities`: standardised Gaussian / Laplace / generalised-Gaussian functions
* :mod:`.error_model`: :class:`FeatureModel`, a density seen through the activation; exact cell statistics
* :mod:`.model_fitting`: :func:`fit_feature_model` (censored ML), :func:`fit_report`
* :mod:`.quantizer`: :class:`ScalarQuantizer`; :func:`model_cost`, its exact distortion and entropy
* :mod:`.clip_search`: :func:`optimal_range` and :func:`choose_uniform`, the clip / levels / λ search
* :mod:`.ecsq`: :func:`design_ecsq` (Chou–Lookabaugh–Gray)
* :mod:`.tables`, :mod:`.checkerboard`: probability tables, channel groups and levels; context model
* :mod:`.design`: features to fitted state; :mod:`.state`: the state and its JSON form
* :mod:`.payload`: the ANS payload of the indices; :mod:`.codec`: the :class:`Lightweight` codec

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> calib = torch.relu(torch.randn(16, 8, 6, 6))
>>> codec = get_codec("lightweight", lam=0.05).fit(calib)
>>> data = codec.encode(calib[:1], config="ref")
>>> y = codec.decode(data)
>>> y.shape == calib[:1].shape and bool((y >= 0).all())
True
"""

from splitcodec.codecs.lightweight.checkerboard import CONTEXTS
from splitcodec.codecs.lightweight.clip_search import LEVEL_COUNTS, choose_uniform, optimal_range
from splitcodec.codecs.lightweight.codec import CALIBRATION_SAMPLES, Lightweight
from splitcodec.codecs.lightweight.ecsq import design_ecsq
from splitcodec.codecs.lightweight.error_model import ACTIVATIONS, FAMILIES, RELU6_CAP, FeatureModel
from splitcodec.codecs.lightweight.model_fitting import fit_feature_model, fit_report
from splitcodec.codecs.lightweight.quantizer import ScalarQuantizer, entropy_bits, model_cost, uniform_quantizer
from splitcodec.codecs.lightweight.tables import PRECISION

__all__ = [
    "Lightweight",
    "CALIBRATION_SAMPLES",
    "PRECISION",
    "CONTEXTS",
    "ACTIVATIONS",
    "FAMILIES",
    "RELU6_CAP",
    "FeatureModel",
    "ScalarQuantizer",
    "fit_feature_model",
    "fit_report",
    "uniform_quantizer",
    "model_cost",
    "entropy_bits",
    "LEVEL_COUNTS",
    "optimal_range",
    "choose_uniform",
    "design_ecsq",
]
