"""``hevc``: the n-bit feature mosaic as one intra HEVC picture, coded by x265 (lossless or at a QP).

The MPEG feature-coding anchor: a 4:0:0 (monochrome) picture of ``bits`` ≤ 8, 10 or 12 bits per
sample (x265 RExt profiles), one intra frame.  ``qp=None`` is x265's lossless mode (transquant bypass;
the decoded codes are bit-exact); ``qp`` in 0..51 is a fixed-QP lossy encode.  Encoding runs the ``x265``
binary (Debian package ``x265``) once per picture; decoding uses libavcodec, in-process through PyAV or
via the ``ffmpeg`` binary (see :mod:`._ffmpeg`).

Choices, all measurable: x265's informational SEI (its version and option string, ~2 KB per stream) is
turned off (``--no-info``); encoding is single-threaded without wavefronts (``--pools 1 --no-wpp``), so
it is deterministic and not slowed by thread start-up on small pictures; the mosaic is padded on the
bottom/right by edge replication to a multiple of 8 and at least 16 samples, and the CTU size is the
largest of 64/32/16 that fits (x265 needs at least one whole CTU).

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.relu(torch.randn(1, 16, 8, 8))
>>> codec = get_codec("hevc", bits=10)               # qp=None: lossless on the 10-bit codes
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
from splitcodec.tiling import crop, pad, padded_size

__all__ = ["HEVC", "PRESETS", "run_x265", "parse_qp"]

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
DEPTHS = (8, 10, 12)


def _ctu(h: int, w: int) -> int:
    side = min(h, w)
    return 64 if side >= 64 else 32 if side >= 32 else 16


def parse_qp(codec_id: str, qp: Any) -> int | None:
    """``None`` (or the string "lossless") for lossless, else an int QP in 0..51."""
    if qp is None or qp == "lossless":
        return None
    return check_int(codec_id, "qp", qp, 0, 51)


def run_x265(raw: bytes, size: tuple[int, int], csp: str, depth: int, qp: int | None, preset: str, *, what: str) -> bytes:
    """Encode one intra picture: ``raw`` planar samples (``csp`` "i400"/"i420", ``depth`` bits, LE 16-bit above 8)."""
    h, w = size
    args = [
        "--input", "-", "--input-res", f"{w}x{h}", "--fps", "1", "--frames", "1",
        "--input-depth", str(depth), "--output-depth", str(depth), "--input-csp", csp,
        "--preset", preset, "--ctu", str(_ctu(h, w)), "--keyint", "1",
        "--no-info", "--pools", "1", "--frame-threads", "1", "--no-wpp",
        "--log-level", "error", "--no-progress",
    ]
    args += ["--lossless"] if qp is None else ["--qp", str(qp)]
    out, _ = _ffmpeg.run(_ffmpeg.X265, [*args, "--output", "-"], raw, what=what)
    if not out:
        raise CodecError(f"{what}: x265 wrote no bitstream")
    return out


@register_codec
class HEVC(MosaicCodec):
    """x265 intra HEVC of the n-bit channel mosaic (4:0:0): lossless (qp=None) or fixed QP."""

    codec_id = "hevc"
    description = "n-bit channel mosaic as one intra HEVC picture (x265, 4:0:0): lossless (qp=None) or QP"
    max_bits = 12
    sweep = (
        {"bits": 10, "qp": None},
        {"bits": 10, "qp": 22},
        {"bits": 10, "qp": 27},
        {"bits": 10, "qp": 32},
        {"bits": 10, "qp": 37},
        {"bits": 10, "qp": 42},
        {"bits": 10, "qp": 47},
        {"bits": 10, "qp": 51},
    )

    def __init__(self, bits: int = 10, qp: int | None = None, preset: str = "medium") -> None:
        super().__init__(bits)
        self.qp = parse_qp(self.codec_id, qp)
        if preset not in PRESETS:
            raise CodecError(f"hevc: preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.preset = preset

    @property
    def depth(self) -> int:
        return _ffmpeg.container_depth(self.bits, DEPTHS)

    @classmethod
    def check_available(cls) -> None:
        _ffmpeg.X265.path()
        _ffmpeg.check_decoder()

    def encode_mosaic(self, frame: np.ndarray) -> bytes:
        frame = pad(frame, multiple=8, minimum=16)
        dtype = np.uint8 if self.depth == 8 else np.dtype("<u2")
        raw = np.ascontiguousarray(frame, dtype=dtype).tobytes()
        return run_x265(raw, frame.shape, "i400", self.depth, self.qp, self.preset, what="hevc encode")

    def decode_mosaic(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        padded = padded_size(size, multiple=8, minimum=16)
        flat = _ffmpeg.decode_picture(data, "hevc", padded, _ffmpeg.gray_pix_fmt(self.depth), what="hevc decode")
        return crop(flat.reshape(padded), size)
