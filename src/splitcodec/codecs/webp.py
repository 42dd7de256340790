"""``webp``: the n-bit feature mosaic (n ≤ 8) as one lossless WebP picture, via imagecodecs.

WebP stores 8-bit RGB(A) only: the gray mosaic is replicated into R, G and B (lossless WebP's
subtract-green transform makes the copies nearly free) and ``bits`` is limited to 8.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("webp", bits=8)
>>> y = codec.decode(codec.encode(x))
>>> bool((y - x).abs().max() <= x.max() / 255 / 2 + 1e-6)
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs._mosaic import MosaicCodec, check_int
from splitcodec.codecs.png import _imagecodecs
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import BitstreamError

__all__ = ["WebP"]


@register_codec
class WebP(MosaicCodec):
    """Lossless WebP of the 8-bit (or fewer) channel mosaic, gray replicated to RGB."""

    codec_id = "webp"
    description = "n-bit (n ≤ 8) channel mosaic as one lossless WebP (gray replicated to RGB)"
    max_bits = 8
    sweep = ({"bits": 8}, {"bits": 6})

    def __init__(self, bits: int = 8, method: int = 6) -> None:
        super().__init__(bits)
        self.method = check_int(self.codec_id, "method", method, 0, 6)

    @classmethod
    def check_available(cls) -> None:
        _imagecodecs("WEBP")

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        ic = _imagecodecs("WEBP")
        rgb = np.repeat(frame.astype(np.uint8)[..., None], 3, axis=2)
        return bytes(ic.webp_encode(rgb, level=100, lossless=True, method=self.method))

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        ic = _imagecodecs("WEBP")
        try:
            rgb = ic.webp_decode(data)
        except Exception as exc:  # imagecodecs raises its own WebpError
            raise BitstreamError(f"webp: {exc}") from exc
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise BitstreamError(f"webp: picture of shape {rgb.shape} is not RGB")
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise BitstreamError("webp: picture is not gray (R, G, B differ)")
        return rgb[..., 0]
