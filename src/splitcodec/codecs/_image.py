"""Base class of the input-image anchors: code the uint8 input picture instead of features.

These codecs have ``domain = "image"``: the evaluator hands them the input images as float values
0..255 in an N×C×H×W tensor (C = 1 gray or 3 RGB), runs the *whole* model on the decoded pictures, and
reports the split as ``"input"`` — the "just send the picture" baseline of split computing.  Values
are rounded to integers; anything outside 0..255 is refused.  Each of the N pictures is coded on its own;
payload: for each picture, a varint byte count followed by the picture codec's bytes.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from splitcodec.codecs.base import Codec
from splitcodec.entropy import read_varint, write_varint
from splitcodec.errors import CodecError, PayloadError

__all__ = ["ImageCodec"]


class ImageCodec(Codec):
    """Codes each N×C×H×W picture (C = 1 or 3, values 0..255) with a picture codec."""

    domain: ClassVar[str] = "image"

    @abstractmethod
    def encode_picture(self, img: np.ndarray) -> bytes:
        """Code one uint8 picture, H×W (gray) or H×W×3 (RGB)."""

    @abstractmethod
    def decode_picture(self, data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
        """Decode one picture of ``size`` = (H, W) with ``channels`` (1 or 3): uint8 H×W or H×W×3."""

    def _check_shape(self, shape: tuple[int, ...], error: type[Exception]) -> None:
        if len(shape) != 4 or shape[1] not in (1, 3) or shape[2] < 1 or shape[3] < 1:
            raise error(f"{self.codec_id}: expects N×C×H×W pictures with C = 1 or 3, got shape {tuple(shape)}")

    def encode_array(self, x: np.ndarray) -> bytes:
        self._check_shape(x.shape, CodecError)
        if x.size and (x.min() < 0 or x.max() > 255):
            raise CodecError(f"{self.codec_id}: pixel values must lie in 0..255, got {x.min():g}..{x.max():g}")
        pixels = np.rint(x).astype(np.uint8)
        out = bytearray()
        for img in pixels:
            data = self.encode_picture(img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0)))
            out += write_varint(len(data)) + data
        return bytes(out)

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        self._check_shape(shape, PayloadError)
        n, c, h, w = shape
        out = np.empty(shape, dtype=np.float32)
        pos = 0
        for i in range(n):
            size, pos = read_varint(payload, pos, max_bytes=5, what=f"{self.codec_id} picture {i} length")
            if pos + size > len(payload):
                raise PayloadError(f"{self.codec_id}: picture {i} announces {size} bytes, {len(payload) - pos} left")
            img = np.asarray(self.decode_picture(payload[pos : pos + size], (h, w), c))
            pos += size
            want = (h, w) if c == 1 else (h, w, 3)
            if img.shape != want or img.dtype != np.uint8:
                raise PayloadError(f"{self.codec_id}: picture {i} decodes to {img.dtype} {img.shape}, expected uint8 {want}")
            out[i] = img[None] if c == 1 else img.transpose(2, 0, 1)
        if pos != len(payload):
            raise PayloadError(f"{self.codec_id}: {len(payload) - pos} stray bytes after the last picture")
        return out
