"""The two context-free modes: an adaptive order-0 histogram (small tensors) and fixed-width levels."""

from __future__ import annotations

import numpy as np

from splitcodec.codecs.nearlossless.params import MODE_HIST, MODE_RAW
from splitcodec.entropy import check_empty
from splitcodec.errors import PayloadError

__all__ = ["HIST_MAX_PLANE", "HIST_MAX_VALUES", "decode_hist", "encode_hist", "histogram_applies", "pack_raw", "unpack_raw"]

#: the order-0 adaptive histogram mode is tried on tensors up to this many values (and up to 10 bits),
#: where a tensor is too small for per-channel statistics to settle
HIST_MAX_VALUES = 16384
HIST_MAX_PLANE = 25  # ... whose channels hold at most this many values
_HIST_MAX_BITS = 10
_HIST_KERNEL = np.array([1, 8, 28, 56, 70, 56, 28, 8, 1], dtype=np.int64)  # binomial, sums to 256


def histogram_applies(n: int, plane_size: int, bits: int) -> bool:
    """Whether the histogram mode is tried for ``n`` values in planes of ``plane_size`` at ``bits``."""
    return n <= HIST_MAX_VALUES and plane_size <= HIST_MAX_PLANE and bits <= _HIST_MAX_BITS


def _hist_probs(counts: np.ndarray) -> np.ndarray:
    """Order-0 model from the levels seen so far: a small floor, the counts and their binomial blur
    (integers until the final division, so both sides build the same table)."""
    blur = np.convolve(counts, _HIST_KERNEL)[4 : 4 + len(counts)]  # centred, any alphabet size
    weights = 102 + 512 * counts + blur
    return (weights / weights.sum()).astype(np.float32)


def _hist_chunks(n: int) -> list[tuple[int, int]]:
    size = max(64, n // 64)
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def encode_hist(flat: np.ndarray, top: int) -> bytes:
    """Payload of the levels in raster order under an adaptive order-0 histogram, refreshed every chunk."""
    import constriction

    counts = np.zeros(top + 1, dtype=np.int64)
    models = []
    for a, b in _hist_chunks(len(flat)):
        models.append(_hist_probs(counts))
        counts += np.bincount(flat[a:b], minlength=top + 1)
    coder = constriction.stream.stack.AnsCoder()
    for (a, b), probs in zip(reversed(_hist_chunks(len(flat))), reversed(models)):
        coder.encode_reverse(flat[a:b].astype(np.int32), constriction.stream.model.Categorical(probs, perfect=False))
    return bytes([MODE_HIST]) + coder.get_compressed().astype("<u4").tobytes()


def decode_hist(words: bytes, n: int, top: int) -> np.ndarray:
    """Inverse of :func:`encode_hist` (given the payload after its mode byte)."""
    import constriction

    if len(words) % 4:
        raise PayloadError(f"nearlossless: ANS payload of {len(words)} bytes is not a multiple of 4")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    counts = np.zeros(top + 1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    for a, b in _hist_chunks(n):
        model = constriction.stream.model.Categorical(_hist_probs(counts), perfect=False)
        out[a:b] = coder.decode(model, b - a)
        counts += np.bincount(out[a:b], minlength=top + 1)
    check_empty(coder, "nearlossless")
    return out


def pack_raw(flat: np.ndarray, bits: int) -> bytes:
    """Payload of the levels at ``bits`` bits each, most significant bit first."""
    planes = (flat[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    return bytes([MODE_RAW]) + np.packbits(planes.astype(np.uint8).ravel()).tobytes()


def unpack_raw(data: bytes, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_raw` (given the payload after its mode byte)."""
    if len(data) != (n * bits + 7) // 8:
        raise PayloadError(f"nearlossless: raw payload of {len(data)} bytes, expected {(n * bits + 7) // 8}")
    planes = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: n * bits].reshape(n, bits).astype(np.int64)
    return (planes << np.arange(bits - 1, -1, -1)).sum(axis=1)
