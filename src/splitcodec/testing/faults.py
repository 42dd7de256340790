"""Bad requests for fault tests: every way a stream can be wrong, with the answer the server owes.

>>> import torch
>>> from splitcodec.codecs import get_codec
>>> codec = get_codec("uniform", bits=4).fit(torch.rand(4, 2, 3, 3))
>>> cases = bad_streams(codec, (2, 3, 3), max_stream_bytes=1000)
>>> sorted({c.kind for c in cases}) == sorted(FAULT_KINDS)
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from splitcodec.bitstream import pack, unpack
from splitcodec.codecs.base import Codec

__all__ = ["BadStream", "bad_streams", "FAULT_KINDS"]


@dataclass(frozen=True)
class BadStream:
    """A stream the server must refuse: what is wrong, the bytes, the HTTP status and error kind owed."""

    kind: str
    data: bytes
    status: int
    error: str


FAULT_KINDS = (
    "empty",
    "garbage",
    "truncated",
    "bit_flip",
    "oversized",
    "wrong_shape",
    "wrong_dtype",
    "unknown_config",
    "wrong_codec",
    "bad_payload",
)


def bad_streams(codec: Codec, feature_shape: tuple[int, ...], *, max_stream_bytes: int, seed: int = 0) -> list[BadStream]:
    """One bad stream of each kind in :data:`FAULT_KINDS`, built from streams of ``codec`` (fitted)."""
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(1, *feature_shape, generator=g))
    good = codec.encode(x, config="ref")
    frame = unpack(good)
    ref = frame.config_ref
    assert ref is not None
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x5A
    bigger = (1, *feature_shape[:-1], feature_shape[-1] + 1)
    unknown_ref = bytes(b ^ 0xFF for b in ref)  # a config this server was never given
    return [
        BadStream("empty", b"", 400, "malformed"),
        BadStream("garbage", bytes(rng.getrandbits(8) for _ in range(len(good))), 400, "malformed"),
        BadStream("truncated", good[: len(good) // 2], 400, "malformed"),
        BadStream("bit_flip", bytes(flipped), 400, "malformed"),
        BadStream("oversized", b"SC" + bytes(max_stream_bytes), 413, "too_large"),
        BadStream("wrong_shape", codec.encode(torch.relu(torch.randn(bigger, generator=g)), config="ref"), 422, "wrong_shape"),
        BadStream("wrong_dtype", pack(frame.payload, frame.shape, "int32", ref=ref), 422, "wrong_dtype"),
        BadStream("unknown_config", pack(frame.payload, frame.shape, "float32", ref=unknown_ref), 422, "unknown_config"),
        BadStream("wrong_codec", pack(frame.payload, frame.shape, "float32", config={"id": "no-such-codec"}), 422, "wrong_codec"),
        BadStream("bad_payload", pack(frame.payload[:3], frame.shape, "float32", ref=ref), 400, "undecodable"),
    ]


