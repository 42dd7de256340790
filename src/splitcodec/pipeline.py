"""The library pipeline, one public home per step: cut a model, build a codec from a spec.

The CLI, the evaluator, the service, the edge client and the benchmarks call these instead of writing
the steps out themselves.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
>>> c = cut(net, at="1", example_input=torch.zeros(1, 1, 8, 8))
>>> c.point.shape, c.point.activation
((4, 6, 6), 'relu')
>>> codec_from_spec("uniform:bits=4").codec_id
'uniform'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from splitcodec.errors import CodecError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from splitcodec.codecs.base import Codec
    from splitcodec.split import SplitPoint

__all__ = ["Cut", "cut", "codec_from_spec"]


@dataclass(frozen=True)
class Cut:
    """A model cut in two: ``tail(head(x)) == model(x)``, and the measured split point."""

    head: "nn.Module"
    tail: "nn.Module"
    point: "SplitPoint"


def cut(model: "nn.Module", at: str, example_input: "torch.Tensor") -> Cut:
    """Cut ``model`` at split point ``at``; the point (shape, activation) is measured on ``example_input``.

    The model is traced once: :func:`splitcodec.split.split` measures the point and attaches it.
    Raises :class:`~splitcodec.errors.SplitError` naming the valid points if ``at`` is not one.
    """
    from splitcodec.split import split

    head, tail = split(model, at=at, example_input=example_input[:1])
    return Cut(head=head, tail=tail, point=head.splitcodec_split_point)


def codec_from_spec(spec: str) -> "Codec":
    """Build the one codec a spec such as ``"uniform:bits=4"`` names; a sweep is an error.

    A bare codec id gives its default setting only when its default sweep has exactly one setting.
    """
    from splitcodec.codecs.registry import get_codec, parse_codec_spec

    settings = parse_codec_spec(spec)
    if len(settings) != 1:
        raise CodecError(f"codec spec {spec!r} expands to {len(settings)} settings; give exactly one, e.g. {spec.split(':')[0]}:key=value")
    name, params = settings[0]
    return get_codec(name, **params)
