"""The one interface every splitcodec codec implements.

Contract
--------
A codec turns a floating-point tensor into bytes and back::

    codec = get_codec("uniform", bits=4)
    codec.fit(calibration)            # optional: calibrate on a batch of features (N samples on dim 0);
                                      # fit(calibration, activation=a) also tells the activation
    data = codec.encode(x)            # bytes: a complete container stream (see splitcodec.bitstream)
    x_hat = codec.decode(data)        # torch.Tensor with x's shape and dtype (numpy without torch)

A subclass sets ``codec_id`` and implements two methods on numpy arrays:

* ``encode_array(x: float32 ndarray) -> bytes``           the payload only;
* ``decode_array(payload: bytes, shape) -> float32 ndarray``.

The container (magic, version, codec config or its 4-byte reference, shape, dtype, CRC) is written and
checked here, once, for all codecs.

Config
------
``get_config()`` is a JSON-only dict: ``{"id": codec_id, <every __init__ parameter>, "state": ...}``.
Parameters are read back from attributes of the same name, so a codec keeps each constructor argument
as a public attribute.  Fitted state (codebooks, probability tables) is ``get_state()``/``set_state()``
and travels in the config, so ``from_config(get_config())`` rebuilds a codec that decodes the same bytes.
Streams carry the config inline (self-describing) or only its reference, for a receiver that already
holds the config (see :class:`~splitcodec.codecs.store.ConfigStore`); the per-sample container is then 16 bytes for 4-D tensors.
Two codecs are equal iff their configs are equal.

The base class builds the config and its 4-byte reference once and keeps them until a parameter
changes or ``fit``/``set_state`` runs (each subclass's ``fit`` and ``set_state`` are wrapped to drop
them), so a codec need not cache either itself; ``is_fitted`` is read from the same config.
``get_config()`` returns a fresh copy, the caller's to modify.

Attributes
----------
``codec_id``, ``description``, ``needs_fit``, ``allow_nonfinite``, ``domain`` and ``sweep`` are class
attributes.  ``lossless`` is one too, except where it depends on the parameters: then ``__init__``
sets it on the instance (``raw``: ``self.lossless = dtype == "float32"``).  Either way it is a plain
attribute, read as ``codec.lossless``.
"""

from __future__ import annotations

import functools
import inspect
import sys
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, TypeVar

import numpy as np

from splitcodec import bitstream
from splitcodec.errors import (
    BitstreamError,
    CodecError,
    ConfigError,
    DependencyError,
    NotFittedError,
    PayloadError,
)

if TYPE_CHECKING:
    import torch

    from splitcodec.split import Activation

#: constructor parameter names per codec class (``inspect.signature`` is slow on the per-sample path)
_PARAM_NAMES: dict[type, tuple[str, ...]] = {}

__all__ = ["Codec", "as_array"]

ConfigMode = Literal["inline", "ref"]

#: the dtypes a stream can record (torch and numpy spell them alike; numpy has no bfloat16)
_DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64", "uint8", "int8", "int16", "int32", "int64", "uint16")


def _torch() -> Any:
    """The torch module, imported on first use: encoding numpy arrays never needs it."""
    import torch

    return torch


@functools.lru_cache(maxsize=1)
def _torch_dtypes() -> dict[Any, str]:
    """torch dtype -> stream dtype name."""
    torch = _torch()
    return {getattr(torch, name): name for name in _DTYPE_NAMES}


_F = TypeVar("_F", bound=Callable[..., Any])


def _drops_config_cache(method: _F) -> _F:
    """Wrap ``fit``/``set_state`` so that the codec's cached config and reference are rebuilt after it."""
    if getattr(method, "_drops_config_cache", False):
        return method

    @functools.wraps(method)
    def wrapper(self: "Codec", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._cached_config = None

    wrapper._drops_config_cache = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts and lists copied, scalars shared)."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def as_array(x: torch.Tensor | np.ndarray, *, what: str = "tensor") -> tuple[np.ndarray, str]:
    """Return ``(float32 C-contiguous array, original dtype name)`` for a tensor or array.

    A numpy array is converted without torch, so the encoders run where torch is not installed.
    """
    if isinstance(x, np.ndarray):
        dtype = x.dtype.name
        if dtype not in _DTYPE_NAMES:
            raise CodecError(f"{what} has dtype {x.dtype}, which splitcodec cannot store")
        return np.ascontiguousarray(x, dtype=np.float32), dtype
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is None or not isinstance(x, torch.Tensor):
        raise CodecError(f"{what} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    dtypes = _torch_dtypes()
    if x.dtype not in dtypes:
        raise CodecError(f"{what} has dtype {x.dtype}, which splitcodec cannot store")
    arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
    return arr, dtypes[x.dtype]


class Codec(ABC):
    """Base class of all codecs (see the module docstring for the contract)."""

    codec_id: ClassVar[str]
    #: One line for ``splitcodec codecs``.
    description: ClassVar[str] = ""
    #: True when ``decode(encode(x))`` reproduces float32 ``x`` exactly (an instance attribute where it
    #: depends on the parameters).
    lossless: bool = False
    #: True when ``encode`` refuses to run before ``fit``.
    needs_fit: ClassVar[bool] = False
    #: Accept NaN/inf (only meaningful for raw storage).
    allow_nonfinite: ClassVar[bool] = False
    #: What the codec is applied to: "features" (a split point) or "image" (the uint8 input picture).
    domain: ClassVar[str] = "features"
    #: Settings swept by default by the evaluator and the demo, from high to low rate.
    sweep: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    #: (parameters, config, reference or None) as last built; dropped by fit/set_state
    _cached_config: tuple[dict[str, Any], dict[str, Any], bytes | None] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("fit", "set_state"):
            if name in cls.__dict__:
                setattr(cls, name, _drops_config_cache(cls.__dict__[name]))

    # --- what a subclass implements --------------------------------------------------------------
    @abstractmethod
    def encode_array(self, x: np.ndarray) -> bytes:
        """Code a float32 array of any shape into payload bytes."""

    @abstractmethod
    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Rebuild a float32 array of ``shape`` from payload bytes."""

    def fit(self, features: torch.Tensor | np.ndarray, activation: Activation | None = None) -> "Codec":
        """Calibrate on ``features`` (N samples stacked on dim 0, each coded alone later).  Default: no-op.

        ``activation`` (a :class:`splitcodec.split.Activation`, e.g. ``split_point.act``, when the caller
        knows it) tells what produced the features: ``relu``, ``leaky_relu`` with its slope, ….
        """
        return self

    def get_state(self) -> dict[str, Any] | None:
        """Fitted state as JSON-able data, or None when there is none."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        raise CodecError(f"codec {self.codec_id!r} has no fitted state, got one in its config")

    @property
    def is_fitted(self) -> bool:
        """True when the codec has fitted state (``get_state()`` is not None)."""
        return "state" in self._config()

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`~splitcodec.errors.DependencyError` if a backend (binary, package) is missing."""

    # --- config ----------------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor's parameters (read from its signature once per class)."""
        names = _PARAM_NAMES.get(cls)
        if names is None:
            sig = inspect.signature(cls.__init__)
            names = _PARAM_NAMES[cls] = tuple(
                p.name
                for p in sig.parameters.values()
                if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
        return list(names)

    def params(self) -> dict[str, Any]:
        """Constructor parameters (read back from attributes of the same name)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def _config(self) -> dict[str, Any]:
        """The config as cached (rebuilt after a parameter change, ``fit`` or ``set_state``); do not modify it."""
        params = self.params()
        cached = self._cached_config
        if cached is None or cached[0] != params:
            config: dict[str, Any] = {"id": self.codec_id, **params}
            state = self.get_state()
            if state is not None:
                config["state"] = state
            cached = self._cached_config = (params, config, None)
        return cached[1]

    def get_config(self) -> dict[str, Any]:
        """``{"id": codec_id, <parameters>, "state": <fitted state, if any>}``: a fresh copy of JSON data."""
        return _copy_json(self._config())

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Codec":
        config = dict(config)
        codec_id = config.pop("id", cls.codec_id)
        if codec_id != cls.codec_id:
            raise CodecError(f"config is for codec {codec_id!r}, not {cls.codec_id!r}")
        state = config.pop("state", None)
        unknown = set(config) - set(cls.param_names())
        if unknown:
            raise CodecError(
                f"unknown parameter(s) {sorted(unknown)} for codec {cls.codec_id!r}; "
                f"it takes {cls.param_names()}"
            )
        try:
            codec = cls(**config)
        except TypeError as exc:
            raise CodecError(f"bad parameters for codec {cls.codec_id!r}: {exc}") from exc
        if state is not None:
            codec.set_state(state)
        return codec

    @property
    def config_ref(self) -> bytes:
        """4-byte reference of the current config (changes when the codec is re-fitted)."""
        config = self._config()
        params, _, ref = self._cached_config  # type: ignore[misc]
        if ref is None:
            ref = bitstream.config_ref(config)
            self._cached_config = (params, config, ref)
        return ref

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Codec) and self._config() == other._config()

    def __hash__(self) -> int:
        return hash(bitstream.canonical_config(self._config()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # --- coding ----------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor | np.ndarray, *, config: ConfigMode = "inline") -> bytes:
        """Code ``x`` into a complete stream; ``config="ref"`` writes only the 4-byte config reference."""
        if self.needs_fit and not self.is_fitted:
            raise NotFittedError(
                f"codec {self.codec_id!r} must be fitted on calibration features before encode() "
                "(Python: codec.fit(features); CLI: splitcodec encode --fit CALIBRATION.pt)"
            )
        arr, dtype = as_array(x)
        if not self.allow_nonfinite and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise CodecError(f"codec {self.codec_id!r}: tensor holds {bad} non-finite value(s)")
        payload = self.encode_array(arr)
        if config == "ref":
            return bitstream.pack(payload, arr.shape, dtype, ref=self.config_ref)
        if config == "inline":
            return bitstream.pack(payload, arr.shape, dtype, config=self._config())
        raise CodecError(f'config must be "inline" or "ref", got {config!r}')

    def decode(self, data: bytes, *, limits: bitstream.Limits = bitstream.DEFAULT_LIMITS) -> torch.Tensor:
        """Decode a stream written by this codec (same config).  Use :func:`splitcodec.decode` otherwise."""
        frame = bitstream.unpack(data, limits)
        if frame.config_ref is not None and frame.config_ref != self.config_ref:
            raise BitstreamError(
                f"stream refers to config {frame.config_ref.hex()}, this {self.codec_id!r} codec "
                f"has {self.config_ref.hex()}"
            )
        if frame.config is not None and frame.config != self._config():
            raise BitstreamError(
                f"stream was written by codec {frame.config.get('id')!r} with another config; "
                "decode it with splitcodec.decode()"
            )
        return self.decode_frame(frame)

    def decode_frame(self, frame: bitstream.Frame) -> torch.Tensor:
        """Decode a parsed frame; any failure of the payload becomes a :class:`PayloadError`.

        This is the one guard around every codec's decoder: an exception that is not a
        :class:`BitstreamError` (a codec's own check, a library's ValueError, or a decoder bug such as an
        AssertionError, a MemoryError or a RecursionError) is re-raised as a ``PayloadError`` whose
        ``__cause__`` keeps the original.
        """
        if self.needs_fit and not self.is_fitted:
            raise ConfigError(f"codec {self.codec_id!r} needs fitted state to decode and its config has none")
        try:
            arr = self.decode_array(frame.payload, frame.shape)
        except (BitstreamError, DependencyError):  # a missing decoder is not a bad stream
            raise
        except Exception as exc:  # noqa: BLE001  (see the docstring: nothing but a SplitcodecError leaves)
            raise PayloadError(f"{self.codec_id}: payload cannot be decoded ({type(exc).__name__}: {exc})") from exc
        arr = np.asarray(arr)
        if arr.shape != frame.shape:
            raise PayloadError(f"{self.codec_id}: payload decodes to shape {arr.shape}, header says {frame.shape}")
        return _as_output(arr, frame.dtype)


def _as_output(arr: np.ndarray, dtype: str) -> torch.Tensor | np.ndarray:
    """The decoded float32 array as a torch tensor of ``dtype``; where torch is not installed, a numpy
    array of ``dtype`` (bfloat16, which numpy lacks, stays float32)."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    try:
        torch = _torch()
    except ImportError:
        return arr if dtype == "bfloat16" else arr.astype(dtype, copy=False)
    return torch.from_numpy(arr).to(getattr(torch, dtype))
