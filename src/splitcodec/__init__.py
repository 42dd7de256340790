"""splitcodec: compress the intermediate features of a split deep neural network.

The pipeline, one module per stage::

    models/   reference nets and loaders         splitcodec.models.load("ref-resnet")
    split.py  cut a model into head and tail      splitcodec.split.split(model, at="layer2")
    codecs/   one file per method, one registry   splitcodec.get_codec("uniform", bits=4)
    bitstream.py  the container every codec writes
    entropy.py    integer probability tables + constriction ANS
    eval/     rate–accuracy evaluation, BD-rate, plots
"""

from __future__ import annotations

from splitcodec.errors import (
    BitstreamError,
    CodecError,
    DatasetError,
    DependencyError,
    NotFittedError,
    SplitcodecError,
    SplitError,
    UnknownCodecError,
    UnknownModelError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BitstreamError",
    "CodecError",
    "DatasetError",
    "DependencyError",
    "NotFittedError",
    "SplitcodecError",
    "SplitError",
    "UnknownCodecError",
    "UnknownModelError",
    "get_codec",
    "list_codecs",
    "decode",
]


def __getattr__(name: str):
    # Lazy re-exports keep `import splitcodec` cheap (torch is only imported when needed).
    if name in {"get_codec", "list_codecs", "create_codec"}:
        from splitcodec.codecs import registry

        return getattr(registry, name)
    if name == "decode":
        from splitcodec.codecs.store import decode

        return decode
    raise AttributeError(f"module 'splitcodec' has no attribute {name!r}")
