"""``nearlossless``: n-bit quantization, then a lossless coder built for deep features (Choi & Bajić 2018).

The only loss is the per-tensor min–max quantization to ``bits`` bits (:func:`splitcodec.tiling.quantize`,
the same integers the image/video-codec anchors tile into a mosaic).  The integers are then coded
losslessly with what distinguishes features from pictures:

* **channels are separate signals**: prediction never crosses a channel border, and every channel keeps
  running statistics (mean, spread, sparsity) that adapt as it is decoded;
* **channels share their geometry**: a quarter of the channels (the *reference* channels) is coded
  first; for the others, the fraction of reference channels that are zero / exactly predictable at the
  same position is context (the background of the input shows up at the same place in every channel),
  and a channel may add a multiple of one reference channel's prediction residual at the same position
  to its prediction (chosen by the encoder where it pays for its 3 bytes);
* **the activation**: values at the quantized zero (ReLU sparsity) get a significance flag; for a
  leaky ReLU the negative side is "un-leaked" (divided by the slope) before prediction and coded with its
  own scale, so its ten-times finer levels are not mistaken for noise;
* **flat regions**: whether a value equals its median (LOCO-I) prediction is a binary event with
  activity contexts — feature maps hold large regions of exactly repeated values;
* **a causal linear predictor** (left, above, above-left, around the channel's running mean) fitted
  per tensor by least squares, blended with the median-gradient predictor by their recent errors; the
  remaining values are coded under quantized Gaussians (or Laplace or Cauchy distributions, whichever is
  shortest for the tensor) with that mean and a spread from the channel's running spread and the
  neighbours' residuals, self-calibrated against the residuals seen so far.

All binary events use adaptive counts; values use
``constriction``'s ANS coder (``QuantizedGaussian``/``Laplace``/``Cauchy`` with per-symbol parameters).
Decoding runs over anti-diagonal wavefronts (all positions with the same ``h + w``, in every channel of
all channels at once, the non-reference ones one diagonal behind): ``H + W`` vectorised numpy steps.

``fit`` records only the split point's activation (``relu``/``relu6``/``leaky_relu`` with its slope, or
``other``), which picks the mode: significance coding for (leaky) ReLU features, dense coding otherwise.
An unfitted codec tries both where the data suggests it and keeps the shorter stream; a fixed-width copy
of the levels bounds the worst case.  The payload format is in ``docs/nearlossless.md``.

Modules, in coding order: :mod:`.codec` (the codec class: range header, zero level, fitted activation),
:mod:`.levels` (mode choice, :func:`encode_levels`/:func:`decode_levels`), :mod:`.fallback` (histogram and
fixed-width modes), :mod:`.wavefront` (the context-coded pass), :mod:`.estimate` (encoder-side parameter
fit), :mod:`.params` (the parameters in the payload), :mod:`.layout` (coding order, neighbours),
:mod:`.context` (the adaptive state and contexts), :mod:`.predictor` (mean and spread), :mod:`.events`
(binary events), :mod:`.values` (the remaining levels).

>>> import numpy as np, torch
>>> from splitcodec.codecs import get_codec
>>> from splitcodec.tiling import quantize
>>> x = torch.relu(torch.randn(1, 8, 6, 6))
>>> codec = get_codec("nearlossless", bits=8)
>>> y = codec.decode(codec.encode(x))
>>> bool(np.array_equal(quantize(y.numpy(), 8)[0], quantize(x.numpy(), 8)[0]))
True
"""

from splitcodec.codecs.nearlossless.codec import NearLossless
from splitcodec.codecs.nearlossless.estimate import HIT_MIN_FRACTION
from splitcodec.codecs.nearlossless.fallback import HIST_MAX_PLANE, HIST_MAX_VALUES
from splitcodec.codecs.nearlossless.levels import (
    DEFAULT_LEAKY_SLOPE,
    MAX_BITS,
    SPARSE_MIN_FRACTION,
    decode_levels,
    encode_levels,
)

__all__ = [
    "NearLossless",
    "encode_levels",
    "decode_levels",
    "MAX_BITS",
    "HIST_MAX_VALUES",
    "HIST_MAX_PLANE",
    "SPARSE_MIN_FRACTION",
    "HIT_MIN_FRACTION",
    "DEFAULT_LEAKY_SLOPE",
]
