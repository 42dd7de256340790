"""Shared test helpers for codecs (after numcodecs' tests/common.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from splitcodec.codecs import Codec, ConfigStore, codec_class, decode, get_codec

FIXTURES = Path(__file__).parent / "fixtures"


def sample_input(codec_id: str, n: int = 1, seed: int = 0) -> torch.Tensor:
    """A small input of the kind the codec codes: ReLU-like features, or uint8-valued images."""
    g = torch.Generator().manual_seed(seed)
    if hasattr(codec_class(codec_id), "example_features"):  # learned codecs: features of their trained split
        return get_codec(codec_id).example_features(n, seed=seed)
    if codec_class(codec_id).domain == "image":
        return torch.randint(0, 256, (n, 3, 32, 32), generator=g).float()
    x = torch.randn(n, 16, 12, 12, generator=g) * 1.5 + 0.3
    return torch.relu(x)


def make_codec(codec_id: str, params: dict, seed: int = 0) -> Codec:
    codec = get_codec(codec_id, **params)
    codec.fit(sample_input(codec_id, n=8, seed=seed + 100))
    return codec


def check_roundtrip(codec: Codec, x: torch.Tensor) -> torch.Tensor:
    """encode → bytes → decode: shape and dtype preserved, exact when lossless, both config modes agree."""
    data = codec.encode(x)
    assert isinstance(data, bytes)
    y = codec.decode(data)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y.float()).all()
    if codec.lossless:
        assert torch.equal(y, x)
    store = ConfigStore()
    store.add(codec)
    by_ref = codec.encode(x, config="ref")
    assert len(by_ref) < len(data)
    assert torch.equal(decode(by_ref, store), y)
    assert torch.equal(decode(data), y)
    return y


def check_config(codec: Codec) -> None:
    """get_config() is JSON-only and rebuilds an equal codec that decodes the same stream the same way."""
    config = json.loads(json.dumps(codec.get_config()))
    assert config["id"] == codec.codec_id
    rebuilt = get_codec(config)
    assert rebuilt == codec
    assert rebuilt.config_ref == codec.config_ref


def golden_dir(codec_id: str) -> Path:
    return FIXTURES / codec_id


def check_backwards_compat(codec_id: str, settings: list[dict]) -> int:
    """Decode the committed golden streams of ``codec_id``; ``GENERATE_EXPECTED=1`` (re)writes them.

    Each fixture is ``NN.scb`` (an inline-config stream) + ``NN.npy`` (its decoded float32 tensor).
    Returns how many fixtures were checked.
    """
    folder = golden_dir(codec_id)
    if os.environ.get("GENERATE_EXPECTED"):
        folder.mkdir(parents=True, exist_ok=True)
        for i, params in enumerate(settings):
            codec = make_codec(codec_id, params)
            data = codec.encode(sample_input(codec_id, seed=7))
            (folder / f"{i:02d}.scb").write_bytes(data)
            np.save(folder / f"{i:02d}.npy", decode(data).float().numpy())
    streams = sorted(folder.glob("*.scb"))
    for stream in streams:
        expected = np.load(stream.with_suffix(".npy"))
        got = decode(stream.read_bytes()).float().numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"{stream} no longer decodes as it did")
    return len(streams)
