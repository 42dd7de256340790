"""``ffv1``: the n-bit feature mosaic as one FFV1 picture (lossless), coded by ffmpeg.

FFV1 (RFC 9043) version 1 with the range coder: a median predictor and context-adaptive binary coding of
the residuals, lossless by design.  Version 1 keeps all its parameters in the frame itself, so the
payload is the bare frame (no container); the picture size comes from the tensor shape.  ``context``
picks FFV1's small (0) or large (1) context model: the large one learns slower, which costs bits on
small pictures.  Gray samples of ``bits`` ≤ 8, 10, 12 or 16 bits.  Runs ``ffmpeg`` (Debian package
``ffmpeg``) once per encode and once per decode.

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
from splitcodec.errors import CodecError

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
        return out

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        h, w = size
        demux = ["-f", "image2pipe", "-frame_size", str(len(data)), "-video_size", f"{w}x{h}", "-c:v", "ffv1"]
        flat = _ffmpeg.ffmpeg_decode(data, demux, size, _ffmpeg.gray_pix_fmt(self.depth), what="ffv1 decode")
        return flat.reshape(size)
