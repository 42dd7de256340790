"""Entropy coding of integer symbols with ``constriction`` (ANS), driven by integer probability tables.

Probabilities are kept as *integer counts* that sum to ``2**precision``.  The float probabilities handed
to constriction are ``count / 2**precision``, which is exact in float32 for counts below 2**24, so the
encoder and the decoder build the same model bit for bit on every platform.  Every count is at least 1,
so any symbol of the alphabet can be coded (no "impossible symbol" failures on unseen data).

>>> import numpy as np
>>> counts = quantize_pmf(np.array([8.0, 1.0, 1.0]))
>>> int(counts.sum()) == 1 << DEFAULT_PRECISION
True
>>> msg = np.array([0, 0, 1, 0, 2, 0], dtype=np.int32)
>>> data = encode_symbols(msg, counts)
>>> bool(np.array_equal(decode_symbols(data, counts, len(msg)), msg))
True
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from splitcodec.errors import BitstreamError, CodecError, PayloadError

__all__ = [
    "DEFAULT_PRECISION",
    "quantize_pmf",
    "encode_symbols",
    "decode_symbols",
    "max_symbols",
    "check_empty",
    "ideal_bits",
    "write_varint",
    "read_varint",
    "write_counts",
    "read_counts",
]

DEFAULT_PRECISION = 16
MAX_PRECISION = 24


def quantize_pmf(weights: np.ndarray, precision: int = DEFAULT_PRECISION) -> np.ndarray:
    """Turn non-negative weights (counts or probabilities) into integer counts >= 1 summing to 2**precision.

    Largest-remainder rounding keeps the table close to the input distribution; the floor of 1 per symbol
    keeps every symbol codable.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0:
        raise CodecError("quantize_pmf: empty alphabet")
    if not (1 <= precision <= MAX_PRECISION):
        raise CodecError(f"quantize_pmf: precision must be in 1..{MAX_PRECISION}, got {precision}")
    total = 1 << precision
    if w.size > total:
        raise CodecError(f"quantize_pmf: alphabet of {w.size} symbols does not fit precision {precision}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise CodecError("quantize_pmf: weights must be finite and non-negative")
    if w.sum() <= 0:
        w = np.ones_like(w)
    spare = total - w.size  # mass left after the floor of one count per symbol
    ideal = w / w.sum() * spare
    counts = np.floor(ideal).astype(np.int64)
    remainder = spare - int(counts.sum())
    if remainder > 0:
        order = np.argsort(-(ideal - counts), kind="stable")
        counts[order[:remainder]] += 1
    return counts + 1


@lru_cache(maxsize=256)
def _model_from_key(key: bytes, precision: int):
    import constriction

    counts = np.frombuffer(key, dtype=np.int64)
    probs = (counts.astype(np.float64) / float(1 << precision)).astype(np.float32)
    return constriction.stream.model.Categorical(probs, perfect=False)


def _model(counts: np.ndarray):
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    total = int(counts.sum())
    precision = total.bit_length() - 1
    if total != 1 << precision or counts.min(initial=1) < 1:
        raise CodecError("probability table must hold counts >= 1 summing to a power of two")
    return _model_from_key(counts.tobytes(), precision)


def encode_symbols(symbols: np.ndarray, counts: np.ndarray) -> bytes:
    """ANS-code ``symbols`` (integers in ``[0, len(counts))``) with the fixed table ``counts``."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int32).ravel()
    if symbols.size == 0:
        return b""
    if symbols.min() < 0 or symbols.max() >= len(counts):
        raise CodecError(f"symbols must lie in [0, {len(counts)}); got [{symbols.min()}, {symbols.max()}]")
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols, _model(counts))
    return coder.get_compressed().astype("<u4").tobytes()


def max_symbols(counts: np.ndarray, nbytes: int) -> int:
    """The most symbols ``nbytes`` of ANS words can hold under ``counts`` (each symbol costs at least the
    information of the likeliest one; the coder's 64-bit initial state is free)."""
    counts = np.asarray(counts, dtype=np.float64)
    p_max = float(counts.max()) / float(counts.sum())
    if p_max >= 1.0:
        return 1 << 62
    return int((8 * nbytes + 64) / -np.log2(p_max)) + 1


def check_empty(coder, what: str = "entropy-coded payload") -> None:
    """Raise PayloadError unless the ANS ``coder`` has consumed every word and is back at its initial state."""
    if not coder.is_empty():
        raise PayloadError(f"{what}: {coder.num_words()} word(s) left over after the last symbol")


def decode_symbols(data: bytes, counts: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: decode ``n`` symbols (int32).

    A payload that cannot hold ``n`` symbols (checked before decoding) or has words left after the last
    one raises :class:`PayloadError`.  One ambiguity is inherent to the stack coder: symbol 0 coded
    onto an empty coder costs nothing, so trailing symbol-0s are free and a longer ``n`` than encoded
    decodes to the same symbols followed by 0s (undetectable without a length field).
    """
    if n == 0:
        if data:
            raise PayloadError(f"{len(data)} unexpected entropy-coded bytes for zero symbols")
        return np.zeros(0, dtype=np.int32)
    if len(data) % 4:
        raise PayloadError(f"entropy-coded payload length {len(data)} is not a multiple of 4")
    if n > max_symbols(counts, len(data)):
        raise PayloadError(f"entropy-coded payload of {len(data)} bytes cannot hold {n} symbols")
    import constriction

    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        model = _model(counts)
        out = np.asarray(coder.decode(model, n), dtype=np.int32)
    except (ValueError, RuntimeError, AssertionError) as exc:  # constriction reports bad data this way
        raise PayloadError(f"entropy-coded payload cannot be decoded: {exc}") from exc
    check_empty(coder)
    return out


def ideal_bits(symbols: np.ndarray, counts: np.ndarray) -> float:
    """Information content of ``symbols`` under the table, in bits (what an ideal coder would spend)."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts / counts.sum()
    return float(-np.log2(p[np.asarray(symbols).ravel()]).sum())


# --- compact integer serialisation (LEB128 varints), shared by codecs that ship tables inline ---------


def write_varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise CodecError(f"varint must be non-negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes | memoryview, pos: int, *, max_bytes: int = 10, what: str = "varint") -> tuple[int, int]:
    """Read an unsigned LEB128 at ``pos``; returns ``(value, new_pos)``.  Raises BitstreamError when truncated."""
    value = 0
    shift = 0
    for i in range(max_bytes):
        if pos + i >= len(data):
            raise BitstreamError(f"truncated {what} at byte {pos}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise BitstreamError(f"{what} at byte {pos} is longer than {max_bytes} bytes")


def write_counts(counts: np.ndarray) -> bytes:
    """Serialise a probability table as ``varint(len)`` + varints of the counts."""
    return write_varint(len(counts)) + b"".join(write_varint(int(c)) for c in counts)


def read_counts(data: bytes | memoryview, pos: int, *, max_symbols: int) -> tuple[np.ndarray, int]:
    """Inverse of :func:`write_counts`, validating that the table is a usable power-of-two table."""
    n, pos = read_varint(data, pos, what="table length")
    if not 1 <= n <= max_symbols:
        raise BitstreamError(f"probability table of {n} symbols (allowed 1..{max_symbols})")
    counts = np.empty(n, dtype=np.int64)
    for i in range(n):
        counts[i], pos = read_varint(data, pos, max_bytes=4, what="table count")
    total = int(counts.sum())
    if counts.min() < 1 or total & (total - 1) or total > 1 << MAX_PRECISION:
        raise BitstreamError("probability table is not a valid power-of-two table")
    return counts, pos
