"""``png``: the n-bit feature mosaic as one PNG picture (16-bit PNG where ``bits`` > 8), via imagecodecs.

PNG (zlib deflate after a per-row predictor) is the simplest lossless image anchor.  The only loss is the
``bits``-bit quantization.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("png", bits=10)
>>> y = codec.decode(codec.encode(x))
>>> bool((y - x).abs().max() <= x.max() / 1023 / 2 + 1e-6)
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs._mosaic import MosaicCodec, check_int
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import BitstreamError, DependencyError

__all__ = ["PNG"]


def _imagecodecs(attr: str):
    try:
        import imagecodecs
    except ImportError as exc:
        raise DependencyError("the image anchors need the Python package imagecodecs (pip install imagecodecs)") from exc
    if not getattr(imagecodecs, attr).available:
        raise DependencyError(f"this imagecodecs build lacks {attr} (pip install --upgrade imagecodecs)")
    return imagecodecs


@register_codec
class PNG(MosaicCodec):
    """Lossless PNG (8- or 16-bit grayscale) of the n-bit channel mosaic."""

    codec_id = "png"
    description = "n-bit channel mosaic as one PNG (16-bit above 8 bits), lossless after quantization"
    sweep = ({"bits": 10}, {"bits": 8})

    def __init__(self, bits: int = 10, level: int = 9) -> None:
        super().__init__(bits)
        self.level = check_int(self.codec_id, "level", level, 1, 9)

    @classmethod
    def check_available(cls) -> None:
        _imagecodecs("PNG")

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        ic = _imagecodecs("PNG")
        data = frame.astype(np.uint8) if self.bits <= 8 else frame
        return bytes(ic.png_encode(np.ascontiguousarray(data), level=self.level))

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        ic = _imagecodecs("PNG")
        want = np.uint8 if self.bits <= 8 else np.uint16
        try:  # decoding into a buffer of the mosaic's size refuses any other picture size up front
            frame = ic.png_decode(data, out=np.empty(size, dtype=want))
        except Exception as exc:  # imagecodecs raises its own PngError (and ValueError for a wrong size)
            raise BitstreamError(f"png: {exc}") from exc
        if frame.dtype != want:
            raise BitstreamError(f"png: picture holds {frame.dtype} samples, expected {np.dtype(want)}")
        return frame
