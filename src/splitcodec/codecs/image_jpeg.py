"""``image-jpeg``: the input picture as a baseline JPEG (libjpeg via imagecodecs) at ``quality`` 1..100.

The "just send the picture" anchor: the server runs the whole model on the decoded picture.  RGB is
coded as YCbCr 4:2:0 (libjpeg's default), gray as one plane; Huffman tables are optimized per picture.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = (torch.arange(32.0) * 8).expand(1, 3, 32, 32)       # a smooth ramp picture
>>> codec = get_codec("image-jpeg", quality=90)
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

__all__ = ["ImageJPEG"]


@register_codec
class ImageJPEG(ImageCodec):
    """JPEG of the input picture (whole model runs on the decoded picture)."""

    codec_id = "image-jpeg"
    description = "input picture as JPEG (libjpeg, 4:2:0) at a quality; the whole model runs on the decoded picture"
    sweep = tuple({"quality": q} for q in (95, 75, 50, 30, 10))

    def __init__(self, quality: int = 75) -> None:
        self.quality = check_int(self.codec_id, "quality", quality, 1, 100)

    @classmethod
    def check_available(cls) -> None:
        _imagecodecs("JPEG8")

    def encode_picture(self, img: np.ndarray) -> bytes:
        return bytes(_imagecodecs("JPEG8").jpeg8_encode(img, level=self.quality, optimize=True))

    def decode_picture(self, data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
        try:
            want = size if channels == 1 else (*size, 3)  # decoding into it refuses any other size up front
            return _imagecodecs("JPEG8").jpeg8_decode(data, out=np.empty(want, dtype=np.uint8))
        except Exception as exc:  # imagecodecs raises its own Jpeg8Error
            raise BitstreamError(f"image-jpeg: {exc}") from exc
