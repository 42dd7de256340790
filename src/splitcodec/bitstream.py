"""The splitcodec container: one self-describing, versioned format for every codec.

Layout (all integers little-endian; ``varint`` = unsigned LEB128).  See ``docs/bitstream.md``::

    magic       2 bytes   b"SC"
    version     1 byte    high nibble: format version (1); low nibble: flags (bit 0 = config by reference)
    config      4 bytes   config reference (first 4 bytes of SHA-256 of the canonical config JSON)   if flag
                varint n + n bytes of canonical config JSON (with "id")                                 else
    dtype|ndim  1 byte    high nibble: dtype code; low nibble: number of dimensions (0..8)
    shape       ndim varints
    payload     the codec's bytes (everything up to the checksum)
    crc32       4 bytes   CRC-32 of every byte before it

With the config by reference a 4-D tensor with dims < 128 costs 2+1+4+1+4+4 = 16 bytes of container.
The parser checks, in order: length, magic, version, checksum, then each field against limits, so a
truncated, corrupted, wrong-version or oversized stream raises :class:`BitstreamError` saying which.

Validation happens here, before any codec sees the stream or anything is allocated for it:

* shape: every dimension and the product of the dimensions, each counted as at least 1, are at most
  ``Limits.max_elements`` (:class:`~splitcodec.errors.ElementLimitError`), so a zero dimension cannot
  hide a huge one.  A tensor with a zero dimension is legal (it has no elements) under that bound.
* dtype: a code of the frozen table.
* config: JSON of at most ``max_config_bytes``, nested at most ``max_config_depth`` deep, integers of at
  most :data:`MAX_INT_DIGITS` digits, finite floats only (no NaN/Infinity), an object with a string
  ``"id"`` (:class:`~splitcodec.errors.ConfigError`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitcodec.entropy import read_varint, write_varint  # noqa: F401  (re-exported)
from splitcodec.errors import BitstreamError, ConfigError, ElementLimitError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "DTYPES",
    "Limits",
    "Frame",
    "canonical_config",
    "config_ref",
    "pack",
    "unpack",
    "parse_config_json",
]

MAGIC = b"SC"
FORMAT_VERSION = 1
FLAG_CONFIG_REF = 0x1
REF_BYTES = 4
CRC_BYTES = 4
MAX_NDIM = 8
#: the most digits an integer of a codec config may have (Python refuses > 4300 with a ValueError)
MAX_INT_DIGITS = 40

# Frozen code table: never reorder, only append (a code is part of the format).
DTYPES: tuple[str, ...] = (
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint16",
)


@dataclass(frozen=True)
class Limits:
    """Bounds a parser enforces before it allocates anything; raise them deliberately for huge tensors."""

    max_bytes: int = 1 << 30
    max_elements: int = 1 << 28
    max_config_bytes: int = 1 << 20
    max_config_depth: int = 16


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Frame:
    """A parsed stream: exactly one of ``config`` / ``config_ref`` is set."""

    config: dict[str, Any] | None
    config_ref: bytes | None
    dtype: str
    shape: tuple[int, ...]
    payload: bytes
    header_bytes: int  # container bytes (everything but the payload), checksum included

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


def canonical_config(config: dict[str, Any]) -> bytes:
    """Deterministic JSON bytes of a config (sorted keys, no spaces, no NaN)."""
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise BitstreamError(f"codec config is not JSON-serialisable: {exc}") from exc


def config_ref(config: dict[str, Any]) -> bytes:
    """The 4-byte reference a stream uses in place of ``config``."""
    return hashlib.sha256(canonical_config(config)).digest()[:REF_BYTES]


def pack(
    payload: bytes,
    shape: tuple[int, ...],
    dtype: str,
    *,
    config: dict[str, Any] | None = None,
    ref: bytes | None = None,
) -> bytes:
    """Wrap a codec payload in the container; give either the full ``config`` or its ``ref``."""
    if (config is None) == (ref is None):
        raise BitstreamError("pack() needs exactly one of config= or ref=")
    if dtype not in DTYPES:
        raise BitstreamError(f"dtype {dtype!r} cannot be stored; supported: {', '.join(DTYPES)}")
    if len(shape) > MAX_NDIM:
        raise BitstreamError(f"tensor has {len(shape)} dimensions; the format stores at most {MAX_NDIM}")
    out = bytearray(MAGIC)
    if ref is not None:
        if len(ref) != REF_BYTES:
            raise BitstreamError(f"config reference must be {REF_BYTES} bytes, got {len(ref)}")
        out.append(FORMAT_VERSION << 4 | FLAG_CONFIG_REF)
        out += ref
    else:
        blob = canonical_config(config)  # type: ignore[arg-type]
        out.append(FORMAT_VERSION << 4)
        out += write_varint(len(blob)) + blob
    out.append(DTYPES.index(dtype) << 4 | len(shape))
    for dim in shape:
        out += write_varint(int(dim))
    out += payload
    out += zlib.crc32(out).to_bytes(CRC_BYTES, "little")
    return bytes(out)


def unpack(data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS) -> Frame:
    """Parse and validate a stream.  Raises :class:`BitstreamError` naming what is wrong."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"a bitstream must be bytes, got {type(data).__name__}")
    data = bytes(data)
    n = len(data)
    if n > limits.max_bytes:
        raise BitstreamError(f"stream of {n} bytes exceeds the limit of {limits.max_bytes} bytes")
    min_len = len(MAGIC) + 1 + 1 + CRC_BYTES
    if n < len(MAGIC) or data[: len(MAGIC)] != MAGIC[:n]:
        raise BitstreamError(f"not a splitcodec stream (magic {data[:2]!r}, expected {MAGIC!r})")
    if n < min_len:
        raise BitstreamError(f"stream truncated: {n} bytes, a stream has at least {min_len}")
    version, flags = data[2] >> 4, data[2] & 0x0F
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported format version {version}; this splitcodec reads version {FORMAT_VERSION}")
    body_end = n - CRC_BYTES
    stored = int.from_bytes(data[body_end:], "little")
    if zlib.crc32(data[:body_end]) != stored:
        raise BitstreamError(f"checksum mismatch: the {n}-byte stream is corrupted or truncated")
    if flags & ~FLAG_CONFIG_REF:
        raise BitstreamError(f"unknown flags 0x{flags:x} in stream header")

    pos = 3
    config: dict[str, Any] | None = None
    ref: bytes | None = None
    if flags & FLAG_CONFIG_REF:
        if pos + REF_BYTES > body_end:
            raise BitstreamError("stream truncated inside the config reference")
        ref = data[pos : pos + REF_BYTES]
        pos += REF_BYTES
    else:
        config, pos = _read_inline_config(data, pos, body_end, limits)
    if pos >= body_end:
        raise BitstreamError("stream truncated before the tensor description")
    dtype_code, ndim = data[pos] >> 4, data[pos] & 0x0F
    pos += 1
    if dtype_code >= len(DTYPES):
        raise BitstreamError(f"unknown dtype code {dtype_code}")
    if ndim > MAX_NDIM:
        raise BitstreamError(f"tensor of {ndim} dimensions (at most {MAX_NDIM})")
    shape, pos = _read_shape(data[:body_end], pos, ndim, limits)
    return Frame(
        config=config,
        config_ref=ref,
        dtype=DTYPES[dtype_code],
        shape=shape,
        payload=data[pos:body_end],
        header_bytes=pos + CRC_BYTES,
    )


def _read_inline_config(data: bytes, pos: int, body_end: int, limits: Limits) -> tuple[dict[str, Any], int]:
    """The inline codec config at ``pos`` (varint length + JSON object with a string "id")."""
    size, pos = read_varint(data, pos, max_bytes=4, what="config length")
    if size > limits.max_config_bytes:
        raise ConfigError(f"inline config of {size} bytes exceeds the limit of {limits.max_config_bytes}")
    if pos + size > body_end:
        raise BitstreamError(f"stream truncated inside the inline config ({size} bytes announced)")
    config = parse_config_json(data[pos : pos + size], limits)
    if not isinstance(config, dict) or not isinstance(config.get("id"), str):
        raise ConfigError('inline codec config must be a JSON object with a string "id"')
    return config, pos + size


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _nesting_depth(text: bytes) -> int:
    """How deep JSON ``text`` nests arrays/objects (strings skipped), without recursion."""
    skeleton = np.frombuffer(_STRINGS.sub(b"", text), dtype=np.uint8)
    step = (skeleton == ord("[")).astype(np.int32) + (skeleton == ord("{"))
    step -= (skeleton == ord("]")).astype(np.int32) + (skeleton == ord("}"))
    return int(np.cumsum(step).max(initial=0))


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ConfigError(f"codec config holds an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ConfigError(f"codec config holds the non-finite number {text[:20]}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ConfigError(f"codec config holds {name}; only finite numbers are allowed")


def parse_config_json(text: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """JSON ``text`` parsed under ``limits`` (size, nesting depth) with bounded integers and finite floats only.

    Raises :class:`~splitcodec.errors.ConfigError` for anything else (never RecursionError/ValueError).
    """
    if len(text) > limits.max_config_bytes:
        raise ConfigError(f"codec config of {len(text)} bytes exceeds the limit of {limits.max_config_bytes}")
    depth = _nesting_depth(bytes(text))
    if depth > limits.max_config_depth:
        raise ConfigError(f"codec config nests {depth} levels deep (at most {limits.max_config_depth})")
    try:
        return json.loads(
            bytes(text).decode("utf-8"),
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"codec config is not valid JSON: {exc}") from exc


def _read_shape(body: bytes, pos: int, ndim: int, limits: Limits) -> tuple[tuple[int, ...], int]:
    """``ndim`` varint dimensions at ``pos``; each dimension, and their product with zeros counted as 1,
    at most ``limits.max_elements`` (so ``(0, 10**9)`` is refused like ``(1, 10**9)``)."""
    shape = []
    bound = 1
    for axis in range(ndim):
        dim, pos = read_varint(body, pos, max_bytes=5, what=f"dimension {axis}")
        bound *= max(dim, 1)
        if bound > limits.max_elements:
            raise ElementLimitError(
                f"tensor shape too large: dimensions multiply to more than {limits.max_elements} elements"
            )
        shape.append(dim)
    return tuple(shape), pos
