"""Tests every registered codec gets for free (parametrized over the registry)."""

from __future__ import annotations

import pytest
import torch

from common import check_backwards_compat, check_config, check_roundtrip, make_codec, sample_input
from splitcodec.codecs import available_codecs, codec_class, default_settings, get_codec
from splitcodec.errors import BitstreamError, CodecError, NotFittedError, SplitcodecError

AVAILABLE = available_codecs()
CODECS = sorted(AVAILABLE)


def _skip_unavailable(codec_id: str) -> None:
    if AVAILABLE[codec_id] is not None:
        pytest.skip(f"{codec_id} unavailable here: {AVAILABLE[codec_id]}")


def _settings(codec_id: str) -> list[dict]:
    sweep = default_settings(codec_id)
    return [sweep[0], sweep[-1]] if len(sweep) > 1 else sweep


CASES = [(c, s) for c in CODECS for s in _settings(c)]


@pytest.mark.parametrize(("codec_id", "params"), CASES, ids=[f"{c}-{i}" for c, i in ((c, list(s.values())) for c, s in CASES)])
def test_roundtrip_and_config(codec_id, params):
    _skip_unavailable(codec_id)
    codec = make_codec(codec_id, params)
    x = sample_input(codec_id, seed=1)
    y = check_roundtrip(codec, x)
    check_config(codec)
    if codec_id in {"raw"} or codec_class(codec_id).lossless or getattr(codec_class(codec_id), "task_driven", False):
        return  # task-driven learned codecs rebuild what the tail needs, not the tensor itself
    # Lossy codecs at their highest-rate default setting must keep the tensor recognisable.
    if params == default_settings(codec_id)[0]:
        cos = torch.nn.functional.cosine_similarity(x.flatten(), y.float().flatten(), dim=0)
        assert cos > 0.9, f"{codec_id}{params}: cosine {cos:.3f} at its highest default rate"


@pytest.mark.parametrize("codec_id", CODECS)
def test_default_sweep_rate_decreases(codec_id):
    """The default sweep goes from high to low rate (the evaluator and plots rely on it)."""
    _skip_unavailable(codec_id)
    x = sample_input(codec_id, seed=2)
    sizes = [len(make_codec(codec_id, p).encode(x, config="ref")) for p in default_settings(codec_id)]
    assert sizes[0] >= sizes[-1], sizes


@pytest.mark.parametrize("codec_id", CODECS)
def test_rejects_foreign_and_corrupt_streams(codec_id):
    _skip_unavailable(codec_id)
    codec = make_codec(codec_id, default_settings(codec_id)[0])
    data = bytearray(codec.encode(sample_input(codec_id, seed=3)))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(BitstreamError):
        codec.decode(bytes(data))
    with pytest.raises(BitstreamError):
        codec.decode(bytes(data[: len(data) // 2]))
    other = get_codec("raw", dtype="float16")
    if other != codec:
        with pytest.raises(BitstreamError, match="another config|refers to config"):
            codec.decode(other.encode(sample_input(codec_id)))


@pytest.mark.parametrize("codec_id", CODECS)
def test_rejects_bad_input(codec_id):
    _skip_unavailable(codec_id)
    codec = make_codec(codec_id, default_settings(codec_id)[0])
    with pytest.raises(CodecError):
        codec.encode("not a tensor")  # type: ignore[arg-type]
    if not codec.allow_nonfinite:
        x = sample_input(codec_id)
        x[0, 0, 0, 0] = float("nan")
        with pytest.raises(CodecError, match="non-finite"):
            codec.encode(x)
    with pytest.raises(CodecError, match="unknown parameter"):
        get_codec(codec_id, no_such_parameter=1)


@pytest.mark.parametrize("codec_id", CODECS)
def test_golden_streams_still_decode(codec_id):
    """Committed streams keep decoding to the committed tensors (format and codec compatibility)."""
    _skip_unavailable(codec_id)
    checked = check_backwards_compat(codec_id, _settings(codec_id))
    assert checked >= 1, f"no golden streams for {codec_id}: run GENERATE_EXPECTED=1 pytest tests/test_codecs.py"


def test_needs_fit_codecs_refuse_to_encode_unfitted():
    for codec_id in CODECS:
        cls = codec_class(codec_id)
        if cls.needs_fit and AVAILABLE[codec_id] is None:
            with pytest.raises(NotFittedError):
                get_codec(codec_id, **default_settings(codec_id)[0]).encode(sample_input(codec_id))


def test_errors_are_splitcodec_errors():
    assert issubclass(BitstreamError, SplitcodecError)
    assert issubclass(NotFittedError, CodecError)
