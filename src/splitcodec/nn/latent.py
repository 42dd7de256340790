"""ANS coding of an integer latent (C × ...) with one integer probability table per channel.

All channels go into one ``constriction`` ANS stack (channel 0 decoded first), so the payload is one
run of 32-bit words.  Tables are integer counts (see :mod:`splitcodec.entropy`), so the decoder rebuilds
exactly the encoder's models: decoding is bit-exact whatever the platform's float or thread count.

>>> import numpy as np
>>> from splitcodec.entropy import quantize_pmf
>>> tables = [quantize_pmf(np.array([6.0, 1, 1, 1])), quantize_pmf(np.array([1.0, 1, 1, 6]))]
>>> k = np.array([[[0, 1], [0, 0]], [[3, 3], [2, 3]]], dtype=np.int32)
>>> bool(np.array_equal(decode_latent(encode_latent(k, tables), tables, k.shape), k))
True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from splitcodec.entropy import _model  # the cached integer-table model shared with encode_symbols
from splitcodec.errors import BitstreamError, CodecError

__all__ = ["encode_latent", "decode_latent"]


def encode_latent(k: np.ndarray, tables: Sequence[np.ndarray]) -> bytes:
    """ANS-code the level indices ``k`` (channels first) with ``tables[c]`` for channel ``c``."""
    import constriction

    k = np.ascontiguousarray(k, dtype=np.int32)
    if k.ndim < 1 or k.shape[0] != len(tables):
        raise CodecError(f"latent has {k.shape[0] if k.ndim else 0} channels, got {len(tables)} tables")
    coder = constriction.stream.stack.AnsCoder()
    for c in range(len(tables) - 1, -1, -1):
        sym = k[c].ravel()
        if sym.size and (sym.min() < 0 or sym.max() >= len(tables[c])):
            raise CodecError(f"latent channel {c} holds indices outside [0, {len(tables[c])})")
        coder.encode_reverse(sym, _model(tables[c]))
    return coder.get_compressed().astype("<u4").tobytes()


def decode_latent(data: bytes, tables: Sequence[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`encode_latent`: the int32 latent of ``shape`` (channels first)."""
    import constriction

    if len(data) % 4:
        raise BitstreamError(f"latent payload length {len(data)} is not a multiple of 4")
    if shape[0] != len(tables):
        raise BitstreamError(f"latent shape {shape} does not match {len(tables)} channel tables")
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    out = np.empty((shape[0], per_channel), dtype=np.int32)
    try:
        for c in range(shape[0]):
            out[c] = coder.decode(_model(tables[c]), per_channel)
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise BitstreamError(f"latent payload cannot be decoded: {exc}") from exc
    if not coder.is_empty():
        raise BitstreamError("latent payload has data left over after the last symbol")
    return out.reshape(shape)
