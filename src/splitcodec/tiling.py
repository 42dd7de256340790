"""n-bit quantization of a feature tensor and its tiling into one 2-D mosaic (and back).

This is the MPEG feature-coding convention the image/video-codec anchors and ``nearlossless`` share:
per-tensor min–max quantization to ``bits`` bits (8 or 10 typically), then the C channel planes of H×W
laid out in raster order on a near-square grid of ``rows × cols`` tiles; unused tiles are 0.
A tensor of shape (N, C, H, W) (or any (..., H, W)) is tiled as N·C planes.

>>> import numpy as np
>>> x = np.random.default_rng(0).random((1, 5, 3, 4), dtype=np.float32)
>>> q, lo, hi = quantize(x, 10)
>>> frame = tile(q)
>>> frame.shape, frame.dtype
((6, 12), dtype('uint16'))
>>> bool(np.array_equal(untile(frame, q.shape), q))
True
>>> float(np.abs(dequantize(q, lo, hi, 10) - x).max()) <= (hi - lo) / 1023 / 2 + 1e-7
True
"""

from __future__ import annotations

import math

import numpy as np

from splitcodec import minmax
from splitcodec.errors import BitstreamError, CodecError

__all__ = ["grid", "mosaic_shape", "quantize", "dequantize", "tile", "untile", "padded_size", "pad", "crop"]


def grid(planes: int) -> tuple[int, int]:
    """``(rows, cols)`` of the near-square grid holding ``planes`` tiles (cols = ceil(sqrt(planes)))."""
    if planes <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(planes))
    return math.ceil(planes / cols), cols


def mosaic_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of the mosaic :func:`tile` makes of a tensor of ``shape`` (..., H, W)."""
    if len(shape) < 2:
        raise CodecError(f"tiling needs a tensor of at least 2 dimensions, got shape {tuple(shape)}")
    h, w = int(shape[-2]), int(shape[-1])
    rows, cols = grid(int(np.prod(shape[:-2], dtype=np.int64)))
    return rows * h, cols * w


def quantize(x: np.ndarray, bits: int) -> tuple[np.ndarray, float, float]:
    """Per-tensor min–max quantization to ``bits`` (1..16): returns ``(uint16 codes, lo, hi)``.

    :func:`splitcodec.minmax.quantize` with the mosaic path's ``formula="scale"``.
    """
    return minmax.quantize(x, bits, formula="scale")


#: Inverse of :func:`quantize` (up to the quantization error).
dequantize = minmax.dequantize


def tile(q: np.ndarray) -> np.ndarray:
    """Lay the H×W planes of ``q`` (shape (..., H, W)) out on a near-square grid: a 2-D array."""
    if q.ndim < 2:
        raise CodecError(f"tiling needs a tensor of at least 2 dimensions, got shape {q.shape}")
    h, w = q.shape[-2:]
    planes = q.reshape(-1, h, w)
    rows, cols = grid(len(planes))
    frame = np.zeros((rows * h, cols * w), dtype=q.dtype)
    for i, plane in enumerate(planes):
        r, c = divmod(i, cols)
        frame[r * h : (r + 1) * h, c * w : (c + 1) * w] = plane
    return frame


def untile(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`tile`: the tensor of ``shape`` whose planes are laid out in ``frame``."""
    if len(shape) < 2:
        raise BitstreamError(f"cannot untile into shape {shape}")
    h, w = shape[-2:]
    n = int(np.prod(shape[:-2], dtype=np.int64))
    rows, cols = grid(n)
    if frame.shape[0] < rows * h or frame.shape[1] < cols * w:
        raise BitstreamError(f"mosaic of {frame.shape} is too small for {n} planes of {h}×{w}")
    out = np.empty((n, h, w), dtype=frame.dtype)
    for i in range(n):
        r, c = divmod(i, cols)
        out[i] = frame[r * h : (r + 1) * h, c * w : (c + 1) * w]
    return out.reshape(shape)


def padded_size(size: tuple[int, int], multiple: int = 1, minimum: int = 1) -> tuple[int, int]:
    """The smallest (height, width) >= ``size`` whose sides are multiples of ``multiple`` and >= ``minimum``."""

    def side(n: int) -> int:
        n = max(n, minimum, 1)
        return -(-n // multiple) * multiple

    return side(int(size[0])), side(int(size[1]))


def pad(frame: np.ndarray, multiple: int = 1, minimum: int = 1) -> np.ndarray:
    """Extend a 2-D frame on the bottom/right by edge replication to :func:`padded_size` (video coders
    code whole blocks).  :func:`crop` undoes it."""
    h, w = frame.shape
    th, tw = padded_size((h, w), multiple, minimum)
    if (th, tw) == (h, w):
        return frame
    if frame.size == 0:
        return np.zeros((th, tw), dtype=frame.dtype)
    return np.pad(frame, ((0, th - h), (0, tw - w)), mode="edge")


def crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The top-left ``size`` = (height, width) of ``frame`` (inverse of :func:`pad`)."""
    h, w = size
    if frame.shape[0] < h or frame.shape[1] < w:
        raise BitstreamError(f"decoded frame of {frame.shape} is smaller than the {h}×{w} mosaic")
    return frame[:h, :w]
