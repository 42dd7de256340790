"""``image-hevc``: the input picture as one intra HEVC picture (x265, 8-bit) at a fixed ``qp``.

The "just send the picture" anchor with a video intra coder.  RGB is converted to full-range BT.601
YCbCr with 4:2:0 chroma (2×2 means; bilinear upsampling on decode), gray is coded as 4:0:0.  Pictures
are padded by edge replication to a multiple of 8 (at least 16) and cropped back.  Encoding runs the
``x265`` binary, decoding libavcodec (see :mod:`.hevc`).

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = (torch.arange(32.0) * 8).expand(1, 3, 32, 32)       # a smooth ramp picture
>>> codec = get_codec("image-hevc", qp=22)
>>> y = codec.decode(codec.encode(x))
>>> y.shape == x.shape and bool((y - x).abs().mean() < 2)
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs import _ffmpeg
from splitcodec.codecs._image import ImageCodec
from splitcodec.codecs.hevc import PRESETS, run_x265
from splitcodec.codecs._mosaic import check_int
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import CodecError
from splitcodec.tiling import crop, pad, padded_size

__all__ = ["ImageHEVC", "rgb_to_ycbcr420", "ycbcr420_to_rgb"]

_FWD = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32
)
_INV = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32)


def rgb_to_ycbcr420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 H×W×3 (H, W even) → full-range BT.601 uint8 planes Y (H×W), Cb, Cr (H/2 × W/2)."""
    ycc = rgb.astype(np.float32) @ _FWD.T + np.array([0.0, 128.0, 128.0], dtype=np.float32)
    h, w = rgb.shape[:2]
    y = ycc[..., 0]
    chroma = ycc[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    to8 = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)  # noqa: E731
    return to8(y), to8(chroma[..., 0]), to8(chroma[..., 1])


def _upsample2(plane: np.ndarray) -> np.ndarray:
    """Bilinear ×2 upsampling with centred sample positions (the inverse siting of 2×2 means)."""
    import torch

    t = torch.from_numpy(plane.astype(np.float32))[None, None]
    return torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)[0, 0].numpy()


def ycbcr420_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr420`: uint8 H×W×3."""
    ycc = np.stack([y.astype(np.float32), _upsample2(cb) - 128.0, _upsample2(cr) - 128.0], axis=-1)
    return np.clip(np.rint(ycc @ _INV.T), 0, 255).astype(np.uint8)


@register_codec
class ImageHEVC(ImageCodec):
    """x265 intra HEVC of the input picture (8-bit, 4:2:0 or 4:0:0) at a fixed QP."""

    codec_id = "image-hevc"
    description = "input picture as one intra HEVC picture (x265, 8-bit 4:2:0/4:0:0) at a QP; whole model on the decoded picture"
    sweep = tuple({"qp": q} for q in (22, 27, 32, 37, 42))

    def __init__(self, qp: int = 27, preset: str = "medium") -> None:
        self.qp = check_int(self.codec_id, "qp", qp, 0, 51)
        if preset not in PRESETS:
            raise CodecError(f"image-hevc: preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.preset = preset

    @classmethod
    def check_available(cls) -> None:
        _ffmpeg.X265.path()
        _ffmpeg.check_decoder()

    def encode_picture(self, img: np.ndarray) -> bytes:
        if img.ndim == 2:
            plane = pad(img, multiple=8, minimum=16)
            return run_x265(plane.tobytes(), plane.shape, "i400", 8, self.qp, self.preset, what="image-hevc encode")
        planes = [pad(img[..., c], multiple=8, minimum=16) for c in range(3)]
        y, cb, cr = rgb_to_ycbcr420(np.stack(planes, axis=-1))
        raw = y.tobytes() + cb.tobytes() + cr.tobytes()
        return run_x265(raw, y.shape, "i420", 8, self.qp, self.preset, what="image-hevc encode")

    def decode_picture(self, data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
        ph, pw = padded_size(size, multiple=8, minimum=16)
        pix_fmt = "gray" if channels == 1 else "yuv420p"
        flat = _ffmpeg.decode_picture(data, "hevc", (ph, pw), pix_fmt, what="image-hevc decode")
        if channels == 1:
            return np.ascontiguousarray(crop(flat.reshape(ph, pw), size))
        n = ph * pw
        y = flat[:n].reshape(ph, pw)
        cb = flat[n : n + n // 4].reshape(ph // 2, pw // 2)
        cr = flat[n + n // 4 :].reshape(ph // 2, pw // 2)
        rgb = ycbcr420_to_rgb(y, cb, cr)
        return np.ascontiguousarray(rgb[: size[0], : size[1]])
