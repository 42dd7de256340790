"""The ANS payload of one tensor's cell indices (the per-sample stream after the container header).

In decoding order: (1) the "plain" indices (every index, or with the context model only the checkerboard
anchors) per channel group (channel tables) or all at once, then (2) with the context model, the other
indices grouped by context, each group in raster order.  A one-level quantizer's indices are not coded.
The last 32-bit word's zero high bytes (up to 3) are dropped and restored on decoding.

Decoding refuses a payload with words left over or a trailing zero byte the encoder would have dropped.
Undetectable: symbols 0 decoded from an exhausted coder cost no bits, so a payload cut to empty (or cut
where only such symbols remain) decodes to index 0 for them, a valid encoding of another tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from splitcodec.codecs.lightweight.checkerboard import CONTEXTS, anchors, by_context, neighbour_counts
from splitcodec.codecs.lightweight.state import FittedState
from splitcodec.errors import PayloadError

__all__ = ["encode_indices", "decode_indices"]


def _anchor(f: FittedState, shape: tuple[int, ...]) -> np.ndarray | None:
    return anchors(shape) if f.ctx_tables is not None and len(shape) == 4 else None


def encode_indices(f: FittedState, idx: np.ndarray) -> bytes:
    """The payload of the int32 cell indices ``idx`` under the fitted tables."""
    import constriction

    anchor = _anchor(f, idx.shape)
    plain = idx if anchor is None else idx[..., anchor]  # anchors of (N, C, H, W): (N, C, n_anchor)
    seq: list[tuple[np.ndarray, Any]] = []
    if f.table_of is None:
        if f.designs[0].quantizer.n > 1:
            seq.append((plain.ravel(), f.table_model(0)))
    else:
        by_channel = np.ascontiguousarray(np.moveaxis(plain, 1, 0)).reshape(plain.shape[1], -1)
        seq += [(by_channel[members].ravel(), f.table_model(t)) for t, members, n in f.groups if n > 1 and members.size]
    if anchor is not None:
        order, sizes = by_context(neighbour_counts(idx, anchor, f.rest)[..., ~anchor])
        grouped = np.split(idx[..., ~anchor].ravel()[order], np.cumsum(sizes)[:-1])
        seq += [(grouped[k], f.context_model(k)) for k in range(CONTEXTS)]
    coder = constriction.stream.stack.AnsCoder()
    for symbols, model in reversed(seq):
        if symbols.size:
            coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), model)
    data = coder.get_compressed().astype("<u4").tobytes()
    cut = len(data)
    while cut > len(data) - 3 and cut > 0 and data[cut - 1] == 0:
        cut -= 1
    return data[:cut]


def decode_indices(f: FittedState, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The int32 cell indices of a tensor of ``shape`` from its payload."""
    import constriction

    if payload and payload[-1] == 0 and len(payload) % 4 != 1:  # the encoder drops these zero bytes
        raise PayloadError("lightweight: payload ends in a zero byte that its encoder never writes")
    padded = payload + b"\0" * (-len(payload) % 4)
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))

    def take(model: Any, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int32)
        try:
            return np.asarray(coder.decode(model, count), dtype=np.int32)
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise PayloadError(f"lightweight: entropy-coded payload cannot be decoded: {exc}") from exc

    idx = np.zeros(shape, dtype=np.int32)
    anchor = _anchor(f, shape)
    plain_shape = shape if anchor is None else shape[:-2] + (int(anchor.sum()),)
    plain = _decode_plain(f, take, plain_shape)
    if anchor is None:
        idx[...] = plain
    else:
        idx[..., anchor] = plain
        counts = neighbour_counts(idx, anchor, f.rest)[..., ~anchor]
        order, sizes = by_context(counts)
        others = np.empty(counts.size, dtype=np.int32)
        others[order] = np.concatenate([take(f.context_model(k), int(sizes[k])) for k in range(CONTEXTS)])
        idx[..., ~anchor] = others.reshape(counts.shape)
    if not coder.is_empty():
        raise PayloadError("lightweight: payload holds more data than the tensor's symbols")
    return idx


def _decode_plain(f: FittedState, take: Any, plain_shape: tuple[int, ...]) -> np.ndarray:
    """The plain (or anchor) indices, shaped ``plain_shape``; ``take(model, count)`` decodes symbols."""
    if f.table_of is None:
        count = int(np.prod(plain_shape)) if f.designs[0].quantizer.n > 1 else 0
        return take(f.table_model(0), count).reshape(plain_shape) if count else np.zeros(plain_shape, np.int32)
    moved = (plain_shape[1], plain_shape[0]) + plain_shape[2:]
    by_channel = np.zeros((moved[0], int(np.prod(moved[1:]))), dtype=np.int32)
    for t, members, n in f.groups:
        if n > 1 and members.size:
            by_channel[members] = take(f.table_model(t), members.size * by_channel.shape[1]).reshape(-1, by_channel.shape[1])
    return np.moveaxis(by_channel.reshape(moved), 0, 1)
