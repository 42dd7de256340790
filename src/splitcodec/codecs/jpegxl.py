"""``jpegxl``: the n-bit feature mosaic as one JPEG XL picture, lossless or lossy, via imagecodecs (libjxl).

``distance=0`` is mathematically lossless on the n-bit codes (modular mode); ``distance > 0`` is lossy
(VarDCT; libjxl's Butteraugli distance, 1 ≈ visually lossless for photos).  ``effort`` is libjxl's
speed/size trade-off (1 fastest … 9 smallest).  The codestream is written without the ISO-BMFF container.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("jpegxl", bits=10)            # distance 0: lossless on the 10-bit codes
>>> y = codec.decode(codec.encode(x))
>>> bool((y - x).abs().max() <= x.max() / 1023 / 2 + 1e-6)
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs._mosaic import MosaicCodec, check_int
from splitcodec.codecs.png import _imagecodecs
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import BitstreamError, CodecError

__all__ = ["JPEGXL"]

MAX_DISTANCE = 25.0


@register_codec
class JPEGXL(MosaicCodec):
    """JPEG XL of the n-bit channel mosaic: lossless at distance 0, lossy above."""

    codec_id = "jpegxl"
    description = "n-bit channel mosaic as one JPEG XL (libjxl): lossless (distance=0) or lossy (distance>0)"
    sweep = (
        {"bits": 10, "distance": 0.0},
        {"bits": 10, "distance": 1.0},
        {"bits": 10, "distance": 2.0},
        {"bits": 10, "distance": 4.0},
        {"bits": 10, "distance": 8.0},
    )

    def __init__(self, bits: int = 10, distance: float = 0.0, effort: int = 7) -> None:
        super().__init__(bits)
        if isinstance(distance, bool) or not isinstance(distance, (int, float)) or not 0 <= distance <= MAX_DISTANCE:
            raise CodecError(f"jpegxl: distance must be a number in 0..{MAX_DISTANCE:g} (0 = lossless), got {distance!r}")
        self.distance = float(distance)
        self.effort = check_int(self.codec_id, "effort", effort, 1, 9)

    @classmethod
    def check_available(cls) -> None:
        _imagecodecs("JPEGXL")

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        ic = _imagecodecs("JPEGXL")
        data = frame.astype(np.uint8) if self.bits <= 8 else frame
        lossless = self.distance == 0
        return bytes(
            ic.jpegxl_encode(
                np.ascontiguousarray(data),
                effort=self.effort,
                distance=None if lossless else self.distance,
                lossless=lossless,
                bitspersample=self.bits,
                usecontainer=False,
                numthreads=1,
            )
        )

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        ic = _imagecodecs("JPEGXL")
        try:
            frame = ic.jpegxl_decode(data, numthreads=1)
        except Exception as exc:  # imagecodecs raises its own JpegxlError
            raise BitstreamError(f"jpegxl: {exc}") from exc
        if frame.ndim != 2:
            raise BitstreamError(f"jpegxl: picture of shape {frame.shape} is not one gray plane")
        return frame
