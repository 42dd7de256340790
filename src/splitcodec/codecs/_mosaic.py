"""Base class of the anchors that code a feature tensor as one 2-D picture (the MPEG feature-coding path).

``encode``: per-tensor min–max quantization to ``bits`` bits (:func:`splitcodec.tiling.quantize`), the
channel planes tiled in raster order on a near-square mosaic (:func:`splitcodec.tiling.tile`), then the
mosaic coded by an image or video codec.  Payload::

    lo, hi     2 × float32 (little-endian): the quantizer's range
    picture    the image/video codec's bytes for the rows × cols mosaic (its size follows from the shape)

Lossless codecs reproduce the quantized codes exactly, so their only loss is the ``bits``-bit quantization
(``decode(encode(x)) == dequantize(quantize(x))``); lossy ones (QP, CQ, distance) add the codec's loss.
A subclass sets ``max_bits`` and implements :meth:`encode_mosaic` / :meth:`decode_mosaic` on uint16
codes in ``0 .. 2**bits - 1``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from splitcodec.codecs.base import Codec
from splitcodec.errors import CodecError, PayloadError
from splitcodec.minmax import RANGE_BYTES, pack_range, read_range
from splitcodec.tiling import dequantize, mosaic_shape, quantize, tile, untile

__all__ = ["MosaicCodec", "check_int"]


def check_int(codec_id: str, name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int in lo..hi, else a CodecError naming the parameter and the allowed range."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise CodecError(f"{codec_id}: {name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


class MosaicCodec(Codec):
    """n-bit quantization + channel mosaic + a picture codec (see the module docstring)."""

    #: Largest number of bits per code the picture codec can hold.
    max_bits: ClassVar[int] = 16

    def __init__(self, bits: int = 10) -> None:
        self.bits = check_int(self.codec_id, "bits", bits, 1, self.max_bits)

    @property
    def top(self) -> int:
        """Largest code value."""
        return (1 << self.bits) - 1

    @abstractmethod
    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        """Code a non-empty 2-D uint16 frame of codes in 0..top."""

    @abstractmethod
    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        """Decode the frame of ``size`` = (height, width) from ``data`` (any integer dtype)."""

    def encode_array(self, x: np.ndarray) -> bytes:
        if x.ndim < 2:
            raise CodecError(f"{self.codec_id}: tiling needs a tensor of at least 2 dimensions, got shape {x.shape}")
        q, lo, hi = quantize(x, self.bits)
        out = pack_range(lo, hi)
        if q.size == 0:
            return out
        return out + self.encode_mosaic(tile(q))

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < 2:
            raise PayloadError(f"{self.codec_id}: cannot untile into shape {shape}")
        lo, hi, pos = read_range(payload, self.codec_id)
        size = mosaic_shape(shape)
        if size[0] * size[1] == 0:
            if len(payload) != RANGE_BYTES:
                raise PayloadError(f"{self.codec_id}: {len(payload) - RANGE_BYTES} stray bytes after an empty tensor")
            return np.zeros(shape, dtype=np.float32)
        frame = np.asarray(self.decode_mosaic(payload[pos:], size))
        if frame.shape != size:
            raise PayloadError(f"{self.codec_id}: picture decodes to {frame.shape}, expected mosaic {size}")
        q = np.clip(frame, 0, self.top).astype(np.uint16)
        return dequantize(untile(q, shape), lo, hi, self.bits).reshape(shape)
