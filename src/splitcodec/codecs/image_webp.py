"""``image-webp``: the input picture as lossy WebP (libwebp via imagecodecs) at ``quality`` 0..100.

The "just send the picture" anchor with a VP8 intra coder.  Gray pictures are replicated to RGB for
libwebp (8-bit RGB only) and averaged back after decoding.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = (torch.arange(32.0) * 8).expand(1, 3, 32, 32)       # a smooth ramp picture
>>> codec = get_codec("image-webp", quality=90)
>>> y = codec.decode(codec.encode(x))
>>> y.shape == x.shape and bool((y - x).abs().mean() < 2)
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs._image import ImageCodec
from splitcodec.codecs._mosaic import check_int
from splitcodec.codecs.png import _imagecodecs
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import BitstreamError

__all__ = ["ImageWebP"]


@register_codec
class ImageWebP(ImageCodec):
    """Lossy WebP of the input picture (whole model runs on the decoded picture)."""

    codec_id = "image-webp"
    description = "input picture as lossy WebP (libwebp) at a quality; the whole model runs on the decoded picture"
    sweep = tuple({"quality": q} for q in (90, 70, 50, 25, 5))

    def __init__(self, quality: int = 75) -> None:
        self.quality = check_int(self.codec_id, "quality", quality, 0, 100)

    @classmethod
    def check_available(cls) -> None:
        _imagecodecs("WEBP")

    def encode_picture(self, img: np.ndarray) -> bytes:
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
        return bytes(_imagecodecs("WEBP").webp_encode(rgb, level=self.quality, lossless=False, method=6))

    def decode_picture(self, data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
        try:
            rgb = _imagecodecs("WEBP").webp_decode(data, out=np.empty((*size, 3), dtype=np.uint8))  # size checked first
        except Exception as exc:  # imagecodecs raises its own WebpError
            raise BitstreamError(f"image-webp: {exc}") from exc
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise BitstreamError(f"image-webp: picture of shape {rgb.shape} is not RGB")
        rgb = rgb[..., :3]
        if channels == 1:
            return np.rint(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        return rgb
