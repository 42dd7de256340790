"""The container: layout, size, and clean rejection of every kind of bad input (incl. a fuzz test)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitcodec import bitstream
from splitcodec.bitstream import Limits, canonical_config, config_ref, pack, unpack
from splitcodec.codecs import ConfigStore, decode, get_codec
from splitcodec.errors import BitstreamError, ElementLimitError, SplitcodecError


def relu_features(n=1, c=16, h=12, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, c, h, w, generator=g))


def test_layout_by_reference_is_16_bytes_for_4d():
    payload = b"\x01\x02\x03"
    ref = config_ref({"id": "x"})
    data = pack(payload, (1, 64, 14, 14), "float32", ref=ref)
    assert data[:2] == b"SC" and data[2] == 0x11
    assert data[3:7] == ref
    assert len(data) - len(payload) == 16
    frame = unpack(data)
    assert frame.shape == (1, 64, 14, 14) and frame.dtype == "float32"
    assert frame.config is None and frame.config_ref == ref
    assert frame.payload == payload and frame.header_bytes == 16
    assert int.from_bytes(data[-4:], "little") == zlib.crc32(data[:-4])


def test_inline_config_roundtrip_and_large_dims():
    cfg = {"id": "uniform", "bits": 4, "state": {"counts": [1, 2, 3]}}
    data = pack(b"abc", (3, 1000, 70000), "bfloat16", config=cfg)
    frame = unpack(data, Limits(max_elements=1 << 40))
    assert frame.config == cfg and frame.shape == (3, 1000, 70000) and frame.dtype == "bfloat16"
    assert frame.header_bytes == len(data) - 3
    assert canonical_config(cfg) in data


def test_per_sample_overhead_of_a_real_codec_by_reference():
    codec = get_codec("uniform", bits=2).fit(relu_features(8))
    x = relu_features(1, 64, 7, 7, seed=1)
    by_ref, inline = codec.encode(x, config="ref"), codec.encode(x)
    assert unpack(by_ref).header_bytes == 16
    config_len = len(canonical_config(codec.get_config()))
    varint_len = len(bitstream.write_varint(config_len))
    assert len(inline) == len(by_ref) - 4 + varint_len + config_len


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:1], "magic|truncated"),
        (lambda d: b"XX" + d[2:], "not a splitcodec stream"),
        (lambda d: d[:5], "truncated|checksum"),
        (lambda d: d[:-1], "checksum"),
        (lambda d: d[:2] + bytes([0x21]) + d[3:], "unsupported format version 2"),
        (lambda d: d[:10] + bytes([d[10] ^ 0xFF]) + d[11:], "checksum"),
        (lambda d: d + b"\x00", "checksum"),
        (lambda d: b"", "magic"),
    ],
)
def test_rejects_with_a_message(mutate, message):
    codec = get_codec("uniform", bits=4)
    data = codec.encode(relu_features())
    with pytest.raises(BitstreamError, match=message):
        decode(mutate(data))


def _recrc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_rejects_oversized_and_malformed_headers_even_with_a_valid_checksum():
    # 2**40 elements announced in a tiny stream
    body = b"SC\x11" + b"\0\0\0\0" + bytes([0x03]) + b"\x80\x80\x80\x80\x0f" * 3
    with pytest.raises(ElementLimitError, match="too large"):
        unpack(_recrc(body))
    with pytest.raises(BitstreamError, match="dimensions"):
        unpack(_recrc(b"SC\x11\0\0\0\0" + bytes([0x0F])))
    with pytest.raises(BitstreamError, match="dtype"):
        unpack(_recrc(b"SC\x11\0\0\0\0" + bytes([0xF1]) + b"\x01"))
    with pytest.raises(BitstreamError, match="flags"):
        unpack(_recrc(b"SC\x13\0\0\0\0" + bytes([0x01]) + b"\x01"))
    with pytest.raises(BitstreamError, match="JSON"):
        unpack(_recrc(b"SC\x10\x03{x}" + bytes([0x01]) + b"\x01"))
    with pytest.raises(BitstreamError, match='"id"'):
        unpack(_recrc(b"SC\x10\x02[]" + bytes([0x01]) + b"\x01"))
    with pytest.raises(BitstreamError, match="exceeds the limit"):
        unpack(b"SC" + bytes(100), Limits(max_bytes=50))
    with pytest.raises(BitstreamError, match="must be bytes"):
        unpack("SC not bytes")  # type: ignore[arg-type]
    with pytest.raises(BitstreamError, match="cannot build"):
        decode(_recrc(b"SC\x10" + bytes([len(b'{"id":"nope"}')]) + b'{"id":"nope"}' + bytes([0x01]) + b"\x01"))


def test_reference_needs_the_store():
    codec = get_codec("uniform", bits=3).fit(relu_features(4))
    data = codec.encode(relu_features(seed=5), config="ref")
    with pytest.raises(BitstreamError, match="ConfigStore"):
        decode(data)
    with pytest.raises(BitstreamError, match="does not hold"):
        decode(data, ConfigStore())
    store = ConfigStore()
    store.add(codec.get_config())
    assert torch.equal(decode(data, store), codec.decode(data))


def test_decoded_tensor_keeps_dtype():
    codec = get_codec("uniform", bits=8)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        x = relu_features().to(dtype)
        assert codec.decode(codec.encode(x)).dtype == dtype


# --- fuzz: >= 1,000 mutated streams -----------------------------------------------------------------


def _streams() -> list[tuple[bytes, torch.Tensor, ConfigStore]]:
    calib = relu_features(8, 8, 6, 6, seed=11)
    x = relu_features(1, 8, 6, 6, seed=12)
    out = []
    for codec, mode in [
        (get_codec("raw", dtype="float16"), "inline"),
        (get_codec("uniform", bits=4), "inline"),  # unfitted: table inside the payload
        (get_codec("uniform", bits=2).fit(calib), "inline"),
        (get_codec("uniform", bits=6).fit(calib), "ref"),
    ]:
        store = ConfigStore()
        store.add(codec)
        data = codec.encode(x, config=mode)
        out.append((data, decode(data, store), store))
    return out


STREAMS = _streams()
FUZZ_LIMITS = Limits(max_bytes=1 << 16, max_elements=1 << 16, max_config_bytes=1 << 12)


def _mutations(draw_data: bytes) -> st.SearchStrategy[bytes]:
    n = len(draw_data)
    flip = st.tuples(st.integers(0, n - 1), st.integers(0, 7)).map(
        lambda t: draw_data[: t[0]] + bytes([draw_data[t[0]] ^ (1 << t[1])]) + draw_data[t[0] + 1 :]
    )
    replace = st.tuples(st.integers(0, n - 1), st.binary(min_size=1, max_size=8)).map(
        lambda t: draw_data[: t[0]] + t[1] + draw_data[t[0] + len(t[1]) :]
    )
    truncate = st.integers(0, n - 1).map(lambda k: draw_data[:k])
    insert = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=8)).map(
        lambda t: draw_data[: t[0]] + t[1] + draw_data[t[0] :]
    )
    return st.one_of(flip, replace, truncate, insert, st.binary(max_size=64))


@st.composite
def mutated(draw):
    k = draw(st.integers(0, len(STREAMS) - 1))
    data, expected, store = STREAMS[k]
    bad = draw(_mutations(data))
    fix_crc = draw(st.booleans())
    if fix_crc and len(bad) > 4:  # also attack the parser and the codecs behind the checksum
        bad = _recrc(bad[:-4])
    return data, bad, expected, store, fix_crc


def test_fuzz_mutated_streams_are_rejected_or_exact():
    """>= 1,000 mutated streams: each is rejected with a SplitcodecError or decodes correctly.

    With the checksum left as it was, a stream that decodes must be the original bytes and tensor.
    With the checksum recomputed, the parser and codec must still end cleanly (error or a tensor of
    the announced shape) — no crash, no hang, no allocation beyond the limits.
    """
    outcomes = {"rejected": 0, "decoded": 0}

    @settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
    @given(mutated())
    def run(case):
        original, bad, expected, store, fixed_crc = case
        try:
            got = decode(bad, store, limits=FUZZ_LIMITS)
        except SplitcodecError:
            outcomes["rejected"] += 1
            return
        outcomes["decoded"] += 1
        assert got.shape == unpack(bad, FUZZ_LIMITS).shape
        if not fixed_crc:
            assert bad == original and torch.equal(got, expected)

    run()
    assert sum(outcomes.values()) >= 1000, outcomes
    assert outcomes["rejected"] > 900, outcomes
    print("fuzz outcomes:", outcomes)


STRUCTURED = [(data, expected, store) for data, expected, store in STREAMS] + [
    (d, decode(d), ConfigStore())
    for d in (get_codec("nearlossless", bits=6).encode(relu_features(1, 8, 6, 6, seed=13)),)
]


@st.composite
def structured(draw):
    """A structured mutation (header fields, shapes, configs, truncation/extension, CRC recomputed)."""
    import random

    from splitcodec.testing.mutate import MUTATIONS, mutate

    k = draw(st.integers(0, len(STRUCTURED) - 1))
    kind = draw(st.sampled_from(sorted(MUTATIONS)))
    seed = draw(st.integers(0, 2**32 - 1))
    data, expected, store = STRUCTURED[k]
    return (kind, *mutate(data, random.Random(seed), kind)[1:], expected, store)


def test_fuzz_structured_mutations_end_cleanly():
    """Structured mutations over raw, uniform and nearlossless: a SplitcodecError or a tensor, within the
    limits; only mutations the checksum covers may change the tensor (``keepcrc`` ones never do)."""
    outcomes = {"rejected": 0, "decoded": 0}

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
    @given(structured())
    def run(case):
        kind, bad, expected, store = case
        try:
            got = decode(bad, store, limits=FUZZ_LIMITS)
        except SplitcodecError:
            outcomes["rejected"] += 1
            return
        outcomes["decoded"] += 1
        assert got.numel() <= FUZZ_LIMITS.max_elements
        if kind.endswith("keepcrc"):
            assert torch.equal(got, expected)

    run()
    assert outcomes["rejected"] > 300, outcomes
