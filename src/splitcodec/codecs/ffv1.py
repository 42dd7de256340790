"""``ffv1``: the n-bit feature mosaic as one FFV1 picture (lossless), coded by ffmpeg.

FFV1 (RFC 9043) version 1 with the range coder: a median predictor and context-adaptive binary coding of
the residuals, lossless by design.  Version 1 keeps all its coding parameters in the frame itself, so
no container is needed: the payload is the picture's width and height (2 varints; FFV1 frames do not
carry them, and a frame decoded at the wrong size would silently give a wrong tensor) and the bare frame.  ``context``
picks FFV1's small (0) or large (1) context model: the large one learns slower, which costs bits on
small pictures.  Gray samples of ``bits`` ≤ 8, 10, 12 or 16 bits.  Encoding runs ``ffmpeg`` (Debian package
``ffmpeg``) once per picture; decoding uses libavcodec (see :mod:`._ffmpeg`).

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("ffv1", bits=10)
>>> y = codec.decode(codec.encode(x))
>>> bool((y - x).abs().max() <= x.max() / 1023 / 2 + 1e-6)
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs import _ffmpeg
from splitcodec.codecs._mosaic import MosaicCodec, check_int
from splitcodec.codecs.registry import register_codec
from splitcodec.entropy import read_varint, write_varint
from splitcodec.errors import BitstreamError, CodecError

__all__ = ["FFV1"]

DEPTHS = (8, 10, 12, 16)


@register_codec
class FFV1(MosaicCodec):
    """FFV1 (version 1, range coder) of the n-bit channel mosaic: lossless after quantization."""

    codec_id = "ffv1"
    description = "n-bit channel mosaic as one FFV1 picture (ffmpeg, version 1, range coder), lossless"
    sweep = ({"bits": 10}, {"bits": 8})

    def __init__(self, bits: int = 10, context: int = 0) -> None:
        super().__init__(bits)
        self.context = check_int(self.codec_id, "context", context, 0, 1)

    @property
    def depth(self) -> int:
        return _ffmpeg.container_depth(self.bits, DEPTHS)

    @classmethod
    def check_available(cls) -> None:
        _ffmpeg.FFMPEG.path()
        _ffmpeg.ffmpeg_has_encoder("ffv1")

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape
        raw = np.ascontiguousarray(frame, dtype=np.uint8 if self.depth == 8 else np.dtype("<u2")).tobytes()
        args = [
            "-hide_banner", "-nostats", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", _ffmpeg.gray_pix_fmt(self.depth), "-s", f"{w}x{h}", "-i", "pipe:0",
            "-c:v", "ffv1", "-level", "1", "-coder", "1", "-context", str(self.context), "-threads", "1",
            "-f", "rawvideo", "pipe:1",
        ]
        out, _ = _ffmpeg.run(_ffmpeg.FFMPEG, args, raw, what="ffv1 encode")
        if not out:
            raise CodecError("ffv1 encode: ffmpeg wrote no frame")
        return write_varint(w) + write_varint(h) + out

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        h, w = size
        got_w, pos = read_varint(data, 0, max_bytes=3, what="ffv1 picture width")
        got_h, pos = read_varint(data, pos, max_bytes=3, what="ffv1 picture height")
        if (got_h, got_w) != (h, w):
            raise BitstreamError(f"ffv1: payload holds a {got_w}x{got_h} picture, the shape needs {w}x{h}")
        data = data[pos:]
        flat = _ffmpeg.decode_picture(data, "ffv1", size, _ffmpeg.gray_pix_fmt(self.depth), what="ffv1 decode")
        return flat.reshape(size)
