"""``raw``: the tensor's values stored as little-endian floats (fp32, fp16 or bf16) — the no-codec anchor.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> x = torch.randn(1, 8, 4, 4)
>>> codec = get_codec("raw", dtype="float32")
>>> bool(torch.equal(codec.decode(codec.encode(x)), x))
True
"""

from __future__ import annotations

import numpy as np

from splitcodec.codecs.base import Codec
from splitcodec.codecs.registry import register_codec
from splitcodec.errors import CodecError, PayloadError

__all__ = ["Raw"]

_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


@register_codec
class Raw(Codec):
    """Store values as float32, float16 or bfloat16 (round to nearest even)."""

    codec_id = "raw"
    description = "uncompressed fp32 / fp16 / bf16 values"
    allow_nonfinite = True
    sweep = ({"dtype": "float32"}, {"dtype": "float16"}, {"dtype": "bfloat16"})

    def __init__(self, dtype: str = "float32") -> None:
        if dtype not in _ITEMSIZE:
            raise CodecError(f"raw: dtype must be one of {sorted(_ITEMSIZE)}, got {dtype!r}")
        self.dtype = dtype
        self.lossless = dtype == "float32"

    def encode_array(self, x: np.ndarray) -> bytes:
        if self.dtype == "bfloat16":
            import torch  # bfloat16 rounding as torch does it; the other dtypes need no torch

            return torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        return x.astype("<f4" if self.dtype == "float32" else "<f2").tobytes()

    def decode_array(self, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        numel = int(np.prod(shape, dtype=np.int64))
        expected = numel * _ITEMSIZE[self.dtype]
        if len(payload) != expected:
            raise PayloadError(f"raw: payload has {len(payload)} bytes, shape {shape} needs {expected}")
        if self.dtype == "bfloat16":
            import torch

            bits = torch.from_numpy(np.frombuffer(payload, dtype="<i2").astype(np.int16))
            return bits.view(torch.bfloat16).to(torch.float32).numpy().reshape(shape)
        dtype = "<f4" if self.dtype == "float32" else "<f2"
        return np.frombuffer(payload, dtype=dtype).astype(np.float32).reshape(shape)
