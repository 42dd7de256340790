"""The payload's coding modes and the model parameters it carries before the ANS words."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from splitcodec.codecs.nearlossless.layout import Layout, reference_channels
from splitcodec.entropy import read_varint, write_varint
from splitcodec.errors import PayloadError

__all__ = [
    "MODE_HIST", "MODE_DENSE", "MODE_SPARSE", "MODE_RAW", "GAUSS", "LAPLACE", "CAUCHY",
    "COEF_SCALE", "N_COEF", "BETA_SCALE", "ModelParams",
]

# payload flags bits 0-1: the coding mode
MODE_HIST = 0  # levels under an adaptive order-0 histogram (small tensors)
MODE_DENSE = 1  # context-coded, every value through the predictor
MODE_SPARSE = 2  # context-coded, with significance flags for the quantized zero (ReLU / leaky ReLU)
MODE_RAW = 3  # fixed-width levels (the worst-case bound)
_FLAG_HITS = 4  # payload flag: flat-prediction hit flags are coded
_FAMILY_SHIFT = 3  # payload flags bits 3-4: distribution family of the values
GAUSS, LAPLACE, CAUCHY = 0, 1, 2
COEF_SCALE = 1024  # predictor coefficients travel as int16 / 1024
N_COEF = 4
_COEFS = struct.Struct("<4h")
BETA_SCALE = 64  # cross-channel coefficients travel as int8 / 64


@dataclass(frozen=True)
class ModelParams:
    """What the payload carries besides the ANS words (all integers, so both sides compute alike)."""

    mode: int  # MODE_DENSE or MODE_SPARSE
    hits: bool  # hit flags coded
    family: int  # distribution of the values: GAUSS, LAPLACE or CAUCHY
    slope256: int  # leaky slope × 256 (sparse mode; 0 = ReLU)
    mean16: int  # global mean of the coded (non-zero) values ×16, in un-leaked units
    spread16: int  # global mean |residual| ×16
    rate256: int  # fraction of non-zero values ×256
    coef: tuple[int, ...]  # predictor coefficients ×COEF_SCALE
    #: cross-channel prediction: (channel, reference channel, coefficient × BETA_SCALE), channels of a group
    cross: tuple[tuple[int, int, int], ...] = ()

    def pack(self) -> bytes:
        flags = self.mode | (_FLAG_HITS if self.hits else 0) | (self.family << _FAMILY_SHIFT)
        return (
            bytes([flags, self.slope256, self.rate256])
            + write_varint(self.mean16)
            + write_varint(self.spread16)
            + _COEFS.pack(*self.coef)
            + write_varint(len(self.cross))
            + b"".join(write_varint(c) + write_varint(r) + struct.pack("<b", b) for c, r, b in self.cross)
        )

    @classmethod
    def unpack(cls, data: bytes, top: int, lay: Layout) -> tuple["ModelParams", int]:
        """The parameters at the start of ``data`` and the offset of the ANS words that follow."""
        if len(data) < 3:
            raise PayloadError(f"nearlossless: payload of {len(data)} bytes is shorter than its parameters")
        flags, slope256, rate256 = data[0], data[1], data[2]
        mode = flags & 3
        bad_mode = mode not in (MODE_DENSE, MODE_SPARSE) or (mode == MODE_SPARSE and top < 2)
        if flags & ~31 or (flags >> _FAMILY_SHIFT) > CAUCHY or bad_mode:
            raise PayloadError(f"nearlossless: invalid coding flags {flags:#04x}")
        mean16, pos = read_varint(data, 3, max_bytes=5, what="nearlossless mean")
        spread16, pos = read_varint(data, pos, max_bytes=5, what="nearlossless spread")
        if pos + _COEFS.size > len(data):
            raise PayloadError("nearlossless: payload truncated inside the predictor coefficients")
        coef = _COEFS.unpack_from(data, pos)
        cross, pos = _unpack_cross(data, pos + _COEFS.size, lay)
        params = cls(
            mode=mode, hits=bool(flags & _FLAG_HITS), family=flags >> _FAMILY_SHIFT, slope256=slope256,
            mean16=mean16, spread16=spread16, rate256=rate256, coef=tuple(coef), cross=cross,
        )
        return params, pos


def _unpack_cross(data: bytes, pos: int, lay: Layout) -> tuple[tuple[tuple[int, int, int], ...], int]:
    """The cross-channel predictions starting at ``pos`` (count, then channel, reference, coefficient)."""
    n, pos = read_varint(data, pos, max_bytes=5, what="nearlossless cross-channel count")
    R = reference_channels(lay.G, lay.H, lay.W)
    if n > lay.G - R:
        raise PayloadError(f"nearlossless: {n} cross-channel predictions for {lay.G - R} channels")
    cross = []
    for _ in range(n):
        c, pos = read_varint(data, pos, max_bytes=5, what="nearlossless cross channel")
        r, pos = read_varint(data, pos, max_bytes=5, what="nearlossless cross reference")
        if pos >= len(data) or not R <= c < lay.G or not 0 <= r < R:
            raise PayloadError(f"nearlossless: invalid cross-channel prediction {c} <- {r}")
        cross.append((c, r, struct.unpack_from("<b", data, pos)[0]))
        pos += 1
    return tuple(cross), pos
