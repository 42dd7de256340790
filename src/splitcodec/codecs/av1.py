"""``av1``: the n-bit feature mosaic as one intra AV1 picture, coded by libaom (``aomenc``).

A 4:0:0 (monochrome) still picture of ``bits`` ≤ 8, 10 or 12 bits per sample, libaom's all-intra mode,
written as a raw low-overhead OBU stream (no IVF/WebM container).  ``cq=None`` is libaom's lossless mode
(bit-exact codes); ``cq`` in 0..63 is constant-quality (``--end-usage=q --cq-level``) lossy coding.
``cpu_used`` is libaom's speed/size trade-off (0 slowest … 9 fastest in all-intra mode), single-threaded.
Encoding runs libaom's reference encoder ``aomenc`` (Debian package ``aom-tools``; the same libaom that
ffmpeg's libaom-av1 wraps, and the same bytes, without ffmpeg's ~200-library start-up) once per picture;
decoding uses dav1d through libavcodec (see :mod:`._ffmpeg`).

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("av1", bits=10)                # cq=None: lossless on the 10-bit codes
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

__all__ = ["AV1", "AOMENC"]

DEPTHS = (8, 10, 12)
AOMENC = _ffmpeg.Tool("aomenc", "SPLITCODEC_AOMENC", "aom-tools")


@register_codec
class AV1(MosaicCodec):
    """libaom all-intra AV1 of the n-bit channel mosaic (4:0:0): lossless (cq=None) or constant quality."""

    codec_id = "av1"
    description = "n-bit channel mosaic as one intra AV1 picture (libaom aomenc, 4:0:0): lossless (cq=None) or CQ"
    max_bits = 12
    sweep = (
        {"bits": 10, "cq": None},
        {"bits": 10, "cq": 20},
        {"bits": 10, "cq": 32},
        {"bits": 10, "cq": 44},
        {"bits": 10, "cq": 50},
        {"bits": 10, "cq": 56},
    )

    def __init__(self, bits: int = 10, cq: int | None = None, cpu_used: int = 4) -> None:
        super().__init__(bits)
        self.cq = None if cq is None or cq == "lossless" else check_int(self.codec_id, "cq", cq, 0, 63)
        self.cpu_used = check_int(self.codec_id, "cpu_used", cpu_used, 0, 9)

    @property
    def depth(self) -> int:
        return _ffmpeg.container_depth(self.bits, DEPTHS)

    @classmethod
    def check_available(cls) -> None:
        AOMENC.path()
        _ffmpeg.check_decoder()

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape
        dtype = np.uint8 if self.depth == 8 else np.dtype("<u2")
        # aomenc reads raw I420 only: the luma plane, then neutral chroma planes it ignores (--monochrome).
        chroma = np.full(2 * ((h + 1) // 2) * ((w + 1) // 2), 1 << (self.depth - 1), dtype=dtype)
        raw = np.ascontiguousarray(frame, dtype=dtype).tobytes() + chroma.tobytes()
        quality = ["--lossless=1"] if self.cq is None else ["--end-usage=q", f"--cq-level={self.cq}"]
        args = [
            "--allintra", "--monochrome", "--i420", f"--width={w}", f"--height={h}", "--limit=1",
            f"--bit-depth={self.depth}", f"--input-bit-depth={self.depth}", f"--cpu-used={self.cpu_used}",
            "--threads=1", "--row-mt=0", *quality, "--obu", "--quiet", "-o", "-", "-",
        ]
        out, _ = _ffmpeg.run(AOMENC, args, raw, what="av1 encode")
        if not out:
            raise CodecError("av1 encode: aomenc wrote no bitstream")
        return out

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        flat = _ffmpeg.decode_picture(data, "av1", size, _ffmpeg.gray_pix_fmt(self.depth), what="av1 decode")
        return flat.reshape(size)
