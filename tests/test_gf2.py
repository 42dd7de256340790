"""gf2: fixed-point bit-planes, binary NDR layers, their gradients, training, and the codecs' streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from splitcodec.codecs import get_codec
from splitcodec.errors import BitstreamError, CodecError
from splitcodec.nn import TrainConfig, fine_tune, insert
from splitcodec.nn.gf2 import FixedPoint, GF2Bottleneck, binarize, calibrate, from_planes, split_planes, to_planes


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", [1, 4, 9])
def test_bit_planes_round_trip_exactly(bits, signed):
    fmt = FixedPoint(bits, fl=2, signed=signed)
    q = torch.randint(fmt.lo, fmt.hi + 1, (3, 5, 4, 4))
    planes = to_planes(q, bits)
    assert planes.shape == (3, 5 * bits, 4, 4) and set(planes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(from_planes(planes, fmt), fmt.value(q))
    # layout: plane b of channel c is channel b·C + c, least significant first
    if bits > 1:
        assert torch.equal(planes[:, 5 * 1 + 2], (((q[:, 2] & ((1 << bits) - 1)) >> 1) & 1).float())


def test_fixed_point_matches_the_paper_formula():
    fmt = FixedPoint(9, fl=-3, signed=True)  # SqueezeNet's format in the paper
    x = torch.tensor([-5000.0, -13.0, 0.0, 3.9, 4.1, 100.0, 5000.0])
    expected = torch.clamp(torch.round(x * 2.0**-3), -256, 255) * 2.0**3
    assert torch.equal(fmt.value(fmt.quantize(x)), expected)


def test_calibrate_fits_the_range_and_sign():
    x = torch.rand(10, 4, 8, 8) * 6
    fmt = calibrate(x, bits=4)
    assert not fmt.signed and fmt.fl == 1  # 15 / 6: steps of ½ hold the range; ¼ would clip 40 %
    assert calibrate(x - 1, bits=4).signed


def test_binarize_is_binary_with_a_straight_through_gradient():
    x = torch.tensor([-0.5, 0.2, 0.49, 0.51, 0.9, 1.7], requires_grad=True)
    y = binarize(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # identity inside [0, 1], zero where clamped


def test_plane_gradient_is_masked_by_each_planes_bit():
    fmt = FixedPoint(3, fl=0, signed=False)
    x = torch.tensor([[[[5.0]], [[2.0]]]], requires_grad=True)  # 5 = 101b, 2 = 010b
    planes = split_planes(x, fmt)
    g = torch.arange(1.0, 7.0).reshape(1, 6, 1, 1)  # gradient per plane, channel b·C + c
    planes.backward(g)
    # x0: planes 0 and 2 set → 1·1 + 5·4 ; x1: plane 1 set → 4·2
    assert x.grad.flatten().tolist() == [1 * 1 + 5 * 4, 4 * 2]


@pytest.mark.parametrize("reduction", ["1x1", "3x3s2"])
def test_bottleneck_code_is_binary_and_shapes_hold(reduction):
    torch.manual_seed(0)
    bn = GF2Bottleneck(6, FixedPoint(4, 2, False), code_channels=5, reduction=reduction).eval()
    x = torch.relu(torch.randn(2, 6, 7, 9)) * 2
    code = bn.encode_bits(x)
    assert code.shape == (2, 5, *bn.code_size(7, 9)) and set(code.unique().tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        y = bn(x)
    assert y.shape == x.shape
    q = y * 2**2  # rebuilt values are on the fixed-point grid
    assert torch.equal(q, q.round()) and float(q.min()) >= 0 and float(q.max()) <= 15
    with pytest.raises(CodecError, match="reduction"):
        GF2Bottleneck(6, FixedPoint(4, 2, False), 5, reduction="5x5")  # type: ignore[arg-type]


def test_a_short_training_run_lowers_the_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    x = torch.randn(256, 1, 8, 8)
    with torch.no_grad():
        feats = model[1](model[0](x))
    bn = GF2Bottleneck(4, calibrate(feats, 4), code_channels=8)
    net = insert(model, at="1", bottleneck=bn, example_input=x[:1])
    cfg = TrainConfig(steps=120, batch_size=32, lr=1e-2, warmup=5, lam=0.0, progress=False, log_every=20, seed=0)
    hist = fine_tune(net, x, config=cfg).history
    assert hist[-1]["distill"] < 0.7 * hist[0]["distill"], hist


# --- the codecs (committed weights) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    return get_codec("gf2").example_features(n=3, seed=1)


@pytest.mark.parametrize("reduction", ["1x1", "3x3s2"])
def test_gf2_streams_are_bit_exact_and_packed_matches_the_code_size(features, reduction):
    ans = get_codec("gf2", reduction=reduction, coding="ans")
    packed = get_codec("gf2", reduction=reduction, coding="packed")
    code = ans.code(features)
    assert code.dtype == np.uint8 and set(np.unique(code).tolist()) <= {0, 1}
    assert len(packed.payload(code)) == 1 + (code.size + 7) // 8
    for codec in (ans, packed):
        assert np.array_equal(codec.read_code(codec.payload(code), tuple(features.shape)), code)
        data = codec.encode(features)
        assert codec.encode(features) == data
        y = codec.decode(data)
        torch.set_num_threads(2)
        try:  # the decoder runs on one thread whatever the caller's setting
            assert torch.equal(codec.decode(data), y)
        finally:
            torch.set_num_threads(1)
    assert torch.equal(ans.decode(ans.encode(features)), packed.decode(packed.encode(features)))


def test_gf2_rejects_streams_of_another_entry(features):
    one = get_codec("gf2", reduction="1x1", coding="packed")
    other = get_codec("gf2", reduction="3x3s2", coding="packed")
    payload = other.payload(other.code(features))
    with pytest.raises((BitstreamError, CodecError)):
        one.read_code(payload, tuple(features.shape))
    with pytest.raises(CodecError, match="no trained entry"):
        get_codec("gf2", split="layer9")
    with pytest.raises(CodecError, match="codes N×32"):
        one.encode(torch.zeros(1, 5, 14, 14))


def test_fixed_point_sends_exactly_bits_per_element():
    x = torch.relu(torch.randn(2, 8, 5, 5)) * 3
    for bits in (2, 4, 8):
        codec = get_codec("fixed-point", bits=bits).fit(x)
        fmt = FixedPoint(bits, codec.get_state()["fl"], False)
        assert len(codec.encode_array(x.numpy())) == (x.numel() * bits + 7) // 8
        assert torch.equal(codec.decode(codec.encode(x)), fmt.value(fmt.quantize(x)))
    signed = get_codec("fixed-point", bits=5).fit(x - 1)
    assert signed.get_state()["signed"] and float(signed.decode(signed.encode(x - 1)).min()) < 0
