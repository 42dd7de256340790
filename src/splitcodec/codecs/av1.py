"""``av1``: the n-bit feature mosaic as one intra AV1 picture, coded by libaom through ffmpeg.

A 4:0:0 (monochrome) still picture of ``bits`` ≤ 8, 10 or 12 bits per sample, libaom's all-intra usage,
written as a raw low-overhead OBU stream (no IVF/WebM container).  ``cq=None`` is libaom's lossless mode
(bit-exact codes); ``cq`` in 0..63 is constant-quality (``-crf``) lossy coding.  ``cpu_used`` is libaom's
speed/size trade-off (0 slowest … 8 fastest).  Both directions run ``ffmpeg`` (Debian package ``ffmpeg``,
built with libaom; decoding goes through ffmpeg's default AV1 decoder, dav1d), one process per call.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("av1", bits=10)                # cq=None: lossless on the 10-bit codes
>>> y = codec.decode(codec.encode(x))
>>> bool((y - x).abs().max() <= x.max() / 1023 / 2 + 1e-6)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from splitcodec.codecs import _ffmpeg
from splitcodec.codecs._mosaic import MosaicCodec, check_int
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import CodecError

__all__ = ["AV1"]

DEPTHS = (8, 10, 12)


@register_codec
class AV1(MosaicCodec):
    """libaom all-intra AV1 of the n-bit channel mosaic (4:0:0): lossless (cq=None) or constant quality."""

    codec_id = "av1"
    description = "n-bit channel mosaic as one intra AV1 picture (libaom via ffmpeg, 4:0:0): lossless (cq=None) or CQ"
    max_bits = 12
    sweep = (
        {"bits": 10, "cq": None},
        {"bits": 10, "cq": 10},
        {"bits": 10, "cq": 20},
        {"bits": 10, "cq": 30},
        {"bits": 10, "cq": 40},
        {"bits": 10, "cq": 50},
    )

    def __init__(self, bits: int = 10, cq: int | None = None, cpu_used: int = 4) -> None:
        super().__init__(bits)
        self.cq = None if cq is None or cq == "lossless" else check_int(self.codec_id, "cq", cq, 0, 63)
        self.cpu_used = check_int(self.codec_id, "cpu_used", cpu_used, 0, 8)

    @property
    def depth(self) -> int:
        return _ffmpeg.container_depth(self.bits, DEPTHS)

    @classmethod
    def check_available(cls) -> None:
        _ffmpeg.FFMPEG.path()
        _ffmpeg.ffmpeg_has_encoder("libaom-av1")

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape
        pix_fmt = _ffmpeg.gray_pix_fmt(self.depth)
        raw = np.ascontiguousarray(frame, dtype=np.uint8 if self.depth == 8 else np.dtype("<u2")).tobytes()
        quality = ["-crf", "0", "-aom-params", "lossless=1"] if self.cq is None else ["-crf", str(self.cq), "-b:v", "0"]
        args = [
            "-hide_banner", "-nostats", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-i", "pipe:0",
            "-c:v", "libaom-av1", "-usage", "allintra", "-still-picture", "1", "-cpu-used", str(self.cpu_used),
            "-threads", "1", *quality, "-f", "obu", "pipe:1",
        ]
        out, _ = _ffmpeg.run(_ffmpeg.FFMPEG, args, raw, what="av1 encode")
        if not out:
            raise CodecError("av1 encode: ffmpeg wrote no bitstream")
        return out

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        flat = _ffmpeg.ffmpeg_decode(data, ["-f", "obu"], size, _ffmpeg.gray_pix_fmt(self.depth), what="av1 decode")
        return flat.reshape(size)
