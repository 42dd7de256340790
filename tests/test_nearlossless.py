"""The ``nearlossless`` codec: bit-exact on the quantized integers, and the feature-specific modes pay."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitcodec.codecs import decode, get_codec
from splitcodec.codecs.nearlossless import decode_levels, encode_levels
from splitcodec.codecs.nearlossless.codec import zero_level
from splitcodec.codecs.nearlossless.layout import layout_of, planes
from splitcodec.codecs.nearlossless.params import MODE_DENSE, MODE_SPARSE
from splitcodec.codecs.nearlossless.wavefront import encode_modeled
from splitcodec.errors import BitstreamError, CodecError
from splitcodec.split import Activation
from splitcodec.tiling import dequantize, quantize


def _relu_features(c=16, h=12, w=12, seed=0, slope=0.0) -> np.ndarray:
    """Spatially smooth pre-activations through a (leaky) ReLU, with a constant 'background' corner."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(1, c, h + 2, w + 2)).astype(np.float32)
    smooth = (base[..., :-2, :-2] + base[..., 1:-1, 1:-1] + base[..., 2:, 2:]) / 3 + rng.normal(size=(1, c, 1, 1)).astype(np.float32) * 0.5
    smooth[..., : h // 3, : w // 3] = rng.normal(size=(1, c, 1, 1)).astype(np.float32)  # flat region
    return np.where(smooth > 0, smooth, slope * smooth).astype(np.float32)


@st.composite
def _levels(draw):
    bits = draw(st.sampled_from([1, 2, 4, 8, 10, 16]))
    top = (1 << bits) - 1
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    kind = draw(st.sampled_from(["uniform", "sparse", "constant", "smooth"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if kind == "uniform":
        q = rng.integers(0, top + 1, size=shape)
    elif kind == "sparse":
        q = rng.integers(0, top + 1, size=shape) * (rng.random(shape) < 0.3)
    elif kind == "constant":
        q = np.full(shape, draw(st.integers(0, top)))
    else:
        q = np.clip(np.cumsum(rng.integers(-2, 3, size=shape), axis=-1) + top // 2, 0, top)
    zero = draw(st.integers(0, top))
    slope = draw(st.sampled_from([None, 0.0, 0.1, 0.5]))
    return q.astype(np.uint16), bits, zero, slope


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_levels())
def test_levels_round_trip_bit_exactly(case):
    q, bits, zero, slope = case
    data = encode_levels(q, bits, zero, slope=slope)
    out = decode_levels(data, q.shape, bits, zero)
    assert out.dtype == np.uint16 and out.shape == q.shape
    np.testing.assert_array_equal(out, q)


@pytest.mark.parametrize("bits", [4, 8, 10])
@pytest.mark.parametrize("slope", [0.0, 0.1, None])
def test_codec_reproduces_the_anchor_integers(bits, slope):
    """Decoded tensor == dequantize(tiling.quantize(x)): the same integers the mosaic anchors code."""
    x = _relu_features(seed=bits, slope=slope or 0.0)
    codec = get_codec("nearlossless", bits=bits)
    if slope is not None:
        codec.fit(torch.from_numpy(x), activation=Activation("leaky_relu" if slope else "relu", slope or None))
    y = codec.decode(codec.encode(torch.from_numpy(x))).numpy()
    q, lo, hi = quantize(x, bits)
    np.testing.assert_array_equal(y, dequantize(q, lo, hi, bits))
    np.testing.assert_array_equal(quantize(y, bits)[0], q)


def test_batch_and_low_rank_shapes():
    codec = get_codec("nearlossless")
    rng = np.random.default_rng(1)
    for shape in [(3, 4, 5, 6), (2, 7), (9,), (1, 1, 1, 1), (2, 3, 1, 8)]:
        x = torch.from_numpy(np.maximum(rng.normal(size=shape), 0).astype(np.float32))
        q, lo, hi = quantize(x.numpy(), 8)
        y = decode(codec.encode(x)).numpy()
        np.testing.assert_array_equal(y, dequantize(q, lo, hi, 8))


def test_constant_and_empty_tensors():
    codec = get_codec("nearlossless")
    for x in [torch.full((1, 4, 3, 3), 2.5), torch.zeros(1, 0, 4, 4)]:
        y = codec.decode(codec.encode(x))
        assert torch.equal(y, x)


def test_relu_sparsity_and_flat_regions_pay():
    """ReLU features cost far less than the same number of uniformly random 8-bit levels."""
    x = _relu_features(c=32, h=14, w=14)
    q, lo, hi = quantize(x, 8)
    ours = len(encode_levels(q, 8, 0, slope=0.0))
    noise = np.random.default_rng(0).integers(0, 256, size=q.shape).astype(np.uint16)
    assert ours < 0.65 * len(encode_levels(noise, 8, 0))
    assert len(encode_levels(noise, 8, 0)) < q.size * 1.02  # incompressible data does not blow up


def test_unleaking_pays_on_leaky_relu_features():
    """Un-leaking the negative side codes leaky-ReLU features in fewer bytes than the dense mode, and
    the encoder keeps the shorter of the two."""
    x = _relu_features(c=32, h=14, w=14, slope=0.1, seed=3)
    q, lo, hi = quantize(x, 8)
    zero = zero_level(lo, hi, 255)
    flat = q.reshape(-1).astype(np.int64)
    lay = layout_of(*planes(q.shape))
    dense = encode_modeled(flat, lay, 255, zero, MODE_DENSE, 0)
    leaky = encode_modeled(flat, lay, 255, zero, MODE_SPARSE, 26)
    assert len(leaky) < 0.99 * len(dense)
    assert encode_levels(q, 8, zero, slope=0.1) == leaky


def test_fit_reads_the_activation_and_travels_in_the_config():
    x = torch.from_numpy(_relu_features())
    leaky = get_codec("nearlossless").fit(x, activation=Activation("leaky_relu", 0.1))
    assert leaky.get_config()["state"] == {"activation": "leaky_relu", "slope": 0.1}
    assert get_codec(leaky.get_config()) == leaky
    relu = get_codec("nearlossless").fit(x, activation=Activation("relu6"))
    assert relu.get_state() == {"activation": "relu6", "slope": 0.0}
    other = get_codec("nearlossless").fit(x, activation=Activation("other"))
    assert other.get_state() == {"activation": "other", "slope": None}
    assert get_codec("nearlossless").fit(x).get_state() is None
    for bad in ({"slope": 2}, {"activation": "relu", "slope": 2.0}, {"activation": "other", "slope": 0.1}, {"activation": "tanh", "slope": 0.0}):
        with pytest.raises(CodecError, match="activation"):
            get_codec({"id": "nearlossless", "bits": 8, "state": bad})


def test_activation_picks_the_mode():
    """'other' features are coded densely, ReLU features with significance flags (payload byte 0)."""
    x = _relu_features(c=8, h=10, w=10)
    q, lo, hi = quantize(x, 8)
    assert encode_levels(q, 8, 0, activation="other")[0] & 3 == 1
    assert encode_levels(q, 8, 0, slope=0.0)[0] & 3 == 2
    assert len(encode_levels(q, 8, 0)) <= len(encode_levels(q, 8, 0, activation="other"))


def test_bad_parameters_and_levels():
    for bits in (0, 17, 8.0, True):
        with pytest.raises(CodecError, match="bits"):
            get_codec("nearlossless", bits=bits)
    with pytest.raises(CodecError, match="levels"):
        encode_levels(np.array([0, 300]), 8)
    with pytest.raises(CodecError, match="zero"):
        encode_levels(np.array([0, 3]), 8, zero=256)


def test_garbage_payloads_raise_bitstream_errors():
    q = quantize(_relu_features(), 8)[0]
    data = encode_levels(q, 8, 0, slope=0.0)
    with pytest.raises(BitstreamError):
        decode_levels(data[:2], q.shape, 8, 0)
    with pytest.raises(BitstreamError):
        decode_levels(data[:-1], q.shape, 8, 0)  # not whole 32-bit words
    with pytest.raises(BitstreamError):
        decode_levels(bytes([0xFF]) + data[1:], q.shape, 8, 0)  # unknown mode flags
    with pytest.raises(BitstreamError):
        decode_levels(b"\x01", (0, 3), 8, 0)
    # A flipped ANS word decodes to other levels or fails loudly; it never crashes or hangs.
    bad = bytearray(data)
    bad[-5] ^= 0xFF
    try:
        out = decode_levels(bytes(bad), q.shape, 8, 0)
        assert out.shape == q.shape
    except BitstreamError:
        pass


def test_tiny_tensors_use_the_adaptive_histogram():
    """4×4 channels are too small for channel statistics; a peaky value distribution is then coded with an
    adaptive order-0 histogram (mode byte 0), shorter than the predictive modes."""
    rng = np.random.default_rng(5)
    q = np.clip(np.rint(rng.laplace(40, 6, size=(1, 128, 4, 4))), 0, 255).astype(np.uint16)
    data = encode_levels(q, 8, 40, activation="other")
    assert data[0] == 0
    lay = layout_of(*planes(q.shape))
    assert len(data) < len(encode_modeled(q.reshape(-1).astype(np.int64), lay, 255, 40, MODE_DENSE, 0))
    np.testing.assert_array_equal(decode_levels(data, q.shape, 8, 40), q)
    with pytest.raises(BitstreamError):
        decode_levels(data[:-1], q.shape, 8, 40)
