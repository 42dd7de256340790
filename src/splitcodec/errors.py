"""Exceptions raised by splitcodec.

Every error a user can trigger with bad input is a :class:`SplitcodecError`, so callers (the CLI, the
server) can catch one type and report its message.  Subclasses say which stage failed.
"""

from __future__ import annotations

__all__ = [
    "SplitcodecError",
    "BitstreamError",
    "ElementLimitError",
    "UnknownConfigError",
    "ConfigError",
    "PayloadError",
    "CodecError",
    "NotFittedError",
    "UnknownCodecError",
    "UnknownModelError",
    "SplitError",
    "DatasetError",
    "DependencyError",
    "CurveError",
    "ShortCurveError",
    "DisjointCurvesError",
]


class SplitcodecError(Exception):
    """Base class of every error splitcodec raises on purpose."""


class BitstreamError(SplitcodecError, ValueError):
    """A bitstream is truncated, corrupted, of an unknown version or too large."""


class ElementLimitError(BitstreamError):
    """A stream's header announces a tensor with more elements than the reader's limit allows."""


class UnknownConfigError(BitstreamError):
    """A stream refers (by its 4-byte reference) to a codec config the receiver does not hold."""


class ConfigError(BitstreamError):
    """A stream's inline codec config is malformed (bad JSON, too deep, huge numbers, NaN) or names a codec
    this receiver cannot build from it."""


class PayloadError(BitstreamError):
    """A codec payload does not decode: bytes missing or left over, or sizes that disagree with the header."""


class CodecError(SplitcodecError, ValueError):
    """A codec was given parameters or a tensor it cannot handle."""


class NotFittedError(CodecError):
    """A codec that needs calibration was used before ``fit``."""


class UnknownCodecError(SplitcodecError, KeyError):
    """No codec is registered under the requested id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownModelError(SplitcodecError, KeyError):
    """No model is registered under the requested name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SplitError(SplitcodecError, ValueError):
    """A model cannot be cut where asked (untraceable graph, unknown or invalid split point)."""


class DatasetError(SplitcodecError, FileNotFoundError):
    """A dataset's files are missing or malformed."""


class DependencyError(SplitcodecError, RuntimeError):
    """An optional dependency (a binary such as x265, or a package) is missing."""


class CurveError(SplitcodecError, ValueError):
    """A BD figure cannot be computed from the rate–accuracy curves given."""


class ShortCurveError(CurveError):
    """A curve has fewer than 2 points of increasing accuracy."""


class DisjointCurvesError(CurveError):
    """Two curves' accuracy (or rate) ranges do not overlap."""
