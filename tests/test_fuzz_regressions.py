"""Every input that ever made a decoder fail (fuzzing, issue 16) now ends in a typed SplitcodecError.

The files under ``tests/fixtures/fuzz/`` are written by ``benchmarks/fuzz.py`` (``<codec>-<outcome>-…``)
and by hand for the issue's cases (``issue-…``).  Each is decoded under tight limits, in this process,
with its peak memory bounded.
"""

from __future__ import annotations

import resource
import zlib
from pathlib import Path

import pytest
import torch

from splitcodec import bitstream
from splitcodec.bitstream import Limits, pack, parse_config_json, unpack, write_varint
from splitcodec.codecs import decode, get_codec
from splitcodec.errors import BitstreamError, ConfigError, ElementLimitError, PayloadError, SplitcodecError

FUZZ = Path(__file__).parent / "fixtures" / "fuzz"
LIMITS = Limits(max_bytes=1 << 20, max_elements=1 << 16, max_config_bytes=1 << 16)
CASES = sorted(FUZZ.glob("*.scb"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_regression_input_ends_in_a_typed_error(path):
    before = _rss_mb()
    with pytest.raises(SplitcodecError):
        decode(path.read_bytes(), limits=LIMITS)
    assert _rss_mb() - before < 200  # no decompression bomb went off


def test_regression_files_exist():
    assert len(CASES) >= 10


def _stream(shape=(1, 8, 6, 6), codec="uniform"):
    x = torch.relu(torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
    return unpack(get_codec(codec, bits=8).encode(x))


def _inline(text: bytes) -> bytes:
    body = b"SC\x10" + write_varint(len(text)) + text + b"\x04\x04\x01\x08\x06\x06"
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_zero_dimension_cannot_hide_a_huge_one():
    f = _stream(codec="nearlossless")
    with pytest.raises(ElementLimitError):
        unpack(pack(f.payload, (0, 8, 30000, 30000), "float32", config=f.config), Limits(max_elements=6272))
    with pytest.raises(ElementLimitError):  # one dimension alone over the limit
        unpack(pack(b"", (1 << 20, 0), "float32", config=f.config), Limits(max_elements=1000))


@pytest.mark.parametrize("codec", ["nearlossless", "uniform", "raw"])
def test_zero_element_tensors_round_trip(codec):
    c = get_codec(codec) if codec == "raw" else get_codec(codec, bits=8)
    data = c.encode(torch.zeros(1, 0, 6, 6))
    assert decode(data).shape == (1, 0, 6, 6)
    f = unpack(data)
    with pytest.raises(PayloadError):  # an empty tensor with a payload it cannot have
        decode(pack(f.payload + bytes(8), f.shape, f.dtype, config=f.config))


@pytest.mark.parametrize("change", ["truncate", "extend", "reshape"])
def test_uniform_payload_must_be_consumed_exactly(change):
    f = _stream()
    payload, shape = f.payload, f.shape
    if change == "truncate":
        payload = payload[:-4]
    elif change == "extend":
        payload = payload + bytes(4)
    else:
        shape = (1, 8, 512, 512)  # 2M symbols cannot fit in ~150 bytes: refused before decoding
    with pytest.raises(PayloadError):
        decode(pack(payload, shape, "float32", config=f.config))


@pytest.mark.parametrize(
    "text, what",
    [
        (b"[" * 5000 + b"]" * 5000, "nests"),
        (b'{"id":"uniform","bits":' + b"9" * 5000 + b"}", "digits"),
        (b'{"id":"uniform","bits":NaN}', "NaN"),
        (b'{"id":"uniform","bits":-Infinity}', "-Infinity"),
        (b'{"id":"uniform","bits":1e999}', "non-finite"),
        (b'{"id":"uniform"', "not valid JSON"),
        (b"[1]", 'string "id"'),
    ],
)
def test_hostile_inline_configs_are_config_errors(text, what):
    with pytest.raises(ConfigError, match=what):
        decode(_inline(text))


def test_codec_without_its_state_is_refused_before_decoding():
    for text in (b'{"id":"lightweight"}', b'{"id":"lightweight","state":{}}', b'{"id":"lightweight","state":[1]}'):
        with pytest.raises(ConfigError):
            decode(_inline(text))


def test_parse_config_json_limits():
    assert parse_config_json(b'{"a":[1,2.5,"x"]}') == {"a": [1, 2.5, "x"]}
    assert parse_config_json(b'{"s":"[[[[[[[[[[[[[[[[[[[["}') == {"s": "[" * 20}  # brackets in strings
    with pytest.raises(ConfigError):
        parse_config_json(b"[" * 17 + b"]" * 17)
    with pytest.raises(ConfigError):
        parse_config_json(b"x" * 100, Limits(max_config_bytes=10))


def test_decoder_bugs_become_payload_errors(monkeypatch):
    codec = get_codec("raw")
    data = codec.encode(torch.zeros(1, 2))

    def broken(payload, shape):
        raise AssertionError("a decoder bug")

    monkeypatch.setattr(codec, "decode_array", broken)
    with pytest.raises(PayloadError) as err:
        codec.decode(data)
    assert isinstance(err.value.__cause__, AssertionError) and isinstance(err.value, BitstreamError)


def test_golden_streams_unchanged_by_the_limits():
    """The default limits still read every committed golden stream (shapes are small)."""
    for path in sorted((Path(__file__).parent / "fixtures").glob("*/0*.scb")):
        frame = bitstream.unpack(path.read_bytes())
        assert frame.numel <= bitstream.DEFAULT_LIMITS.max_elements
