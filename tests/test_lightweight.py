"""The ``lightweight`` codec: header cost, table-lookup decoding, activations, ablation parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from splitcodec import bitstream
from splitcodec.codecs import ConfigStore, decode, get_codec
from splitcodec.entropy import ideal_bits
from splitcodec.errors import BitstreamError, CodecError, NotFittedError


@dataclass
class Point:  # the fields of splitcodec.split.SplitPoint that fit() reads
    activation: str
    negative_slope: float = 0.0


def relu_features(n: int, seed: int = 0, shape=(16, 10, 10)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.3, 2.0, shape[0]).view(1, -1, 1, 1)  # channels of different scales
    return torch.relu(torch.randn(n, *shape, generator=g) * scale - 0.3)


def leaky_features(n: int, seed: int = 0, slope: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.leaky_relu(torch.randn(n, 8, 10, 10, generator=g) * 1.2 + 0.1, slope)


def nmse(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((x - y) ** 2).mean() / (x**2).mean())


def test_per_sample_stream_is_the_container_plus_the_ans_words():
    calib, x = relu_features(64), relu_features(1, seed=9)
    codec = get_codec("lightweight", lam=0.05).fit(calib)
    data = codec.encode(x, config="ref")
    frame = bitstream.unpack(data)
    assert frame.header_bytes == 16  # magic, version, 4-byte config reference, dtype/ndim, shape, CRC
    group = codec._groups[0]
    ideal = ideal_bits(group.quantizer.quantize(x.numpy()), group.counts) / 8
    assert ideal <= len(frame.payload) <= ideal + 8  # nothing but the entropy-coded indices
    store = ConfigStore()
    store.add(json.loads(json.dumps(codec.get_config())))  # the config travels once, as JSON
    assert torch.equal(decode(data, store), codec.decode(data))


def test_decoder_is_a_table_lookup_into_the_levels():
    calib = relu_features(32)
    codec = get_codec("lightweight", lam=0.02).fit(calib)
    y = codec.decode(codec.encode(relu_features(2, seed=5)))
    levels = set(codec.get_config()["state"]["levels"][0])
    assert set(np.unique(y.numpy()).tolist()) <= levels
    assert 0.0 in levels  # ReLU keeps an exact zero level


def test_relu_zeros_stay_exactly_zero_and_rate_falls_with_lambda():
    calib, x = relu_features(64), relu_features(4, seed=3)
    sizes, errors = [], []
    for lam in (0.005, 0.05, 0.5):
        codec = get_codec("lightweight", lam=lam).fit(calib)
        y = codec.decode(codec.encode(x, config="ref"))
        assert torch.all(y[x == 0] == 0)
        sizes.append(len(codec.encode(x, config="ref")))
        errors.append(nmse(x, y))
    assert sizes[0] > sizes[1] > sizes[2]
    assert errors[0] < errors[1] < errors[2]


def test_leaky_relu_slope_comes_from_the_split_point():
    calib = leaky_features(64)
    codec = get_codec("lightweight", lam=0.01).fit(calib, split_point=Point("leaky_relu", 0.1))
    state = codec.get_config()["state"]
    assert state["activation"] == "leaky_relu" and state["slope"] == 0.1
    assert min(state["levels"][0]) < 0  # the negative branch is kept
    x = leaky_features(2, seed=4)
    assert nmse(x, codec.decode(codec.encode(x))) < 0.02
    # without the split point, data with negatives is modelled as "other"
    assert get_codec("lightweight").fit(calib).get_config()["state"]["activation"] == "other"


def test_wrong_activation_claim_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="modelling them as 'other'"):
        codec = get_codec("lightweight").fit(leaky_features(8), split_point=Point("relu"))
    assert codec.get_config()["state"]["activation"] == "other"


def test_model_clip_with_ecsq_beats_the_ablations_at_matched_settings():
    """The paper's parts, one at a time: min–max clip < model clip; uniform < ECSQ (in D + λR)."""
    calib, x = relu_features(64), relu_features(16, seed=11)
    lam = 0.05
    ms = float((calib**2).mean())

    def cost(**params) -> float:
        codec = get_codec("lightweight", lam=lam, levels=4, **params).fit(calib)
        data = codec.encode(x, config="ref")
        bits = (len(data) - 16) * 8 / x.numel()
        return nmse(x, codec.decode(data)) + lam * bits * float((x**2).mean()) / ms

    minmax = cost(clip="minmax", quantizer="uniform")
    model_uniform = cost(clip="model", quantizer="uniform")
    model_ecsq = cost(clip="model", quantizer="ecsq")
    assert model_ecsq < model_uniform < minmax


def test_per_channel_option_codes_each_channel_with_its_own_table():
    calib, x = relu_features(32), relu_features(2, seed=6)
    calib[:, 3] = 0  # a dead channel: one level, not coded
    codec = get_codec("lightweight", lam=0.02, per_channel=True).fit(calib)
    state = codec.get_config()["state"]
    assert state["channels"] == 16 and len(state["levels"]) == 16
    assert state["levels"][3] == [0.0]
    y = codec.decode(codec.encode(x))
    assert torch.all(y[:, 3] == 0)
    assert nmse(x, y) < 0.05
    with pytest.raises(CodecError, match="16 channels"):
        codec.encode(relu_features(1, shape=(8, 10, 10)))


def test_fit_uses_at_most_64_samples_and_is_deterministic():
    calib = relu_features(80)
    a = get_codec("lightweight").fit(calib)
    b = get_codec("lightweight").fit(calib[:64])
    assert a == b and a.config_ref == b.config_ref


def test_trailing_data_or_a_stale_config_is_refused():
    codec = get_codec("lightweight").fit(relu_features(16))
    x = relu_features(1, seed=2)
    frame = bitstream.unpack(codec.encode(x, config="ref"))
    longer = bitstream.pack(frame.payload + b"\x01\x02\x03\x04", frame.shape, "float32", ref=codec.config_ref)
    with pytest.raises(BitstreamError):
        codec.decode(longer)
    refit = get_codec("lightweight").fit(relu_features(16, seed=1))
    with pytest.raises(BitstreamError, match="refers to config"):
        refit.decode(codec.encode(x, config="ref"))


def test_bad_parameters_and_states_are_codec_errors():
    for bad in ({"lam": -1}, {"levels": 1}, {"quantizer": "lloyd"}, {"clip": "max"}, {"percentile": 20},
                {"family": "cauchy"}, {"per_channel": "yes"}, {"max_levels": 1000}):
        with pytest.raises(CodecError):
            get_codec("lightweight", **bad)
    with pytest.raises(NotFittedError):
        get_codec("lightweight").encode(relu_features(1))
    config = get_codec("lightweight").fit(relu_features(8)).get_config()
    broken = json.loads(json.dumps(config))
    broken["state"]["counts"][0][0] += 1
    with pytest.raises(CodecError, match="summing"):
        get_codec(broken)
    broken = json.loads(json.dumps(config))
    broken["state"]["thresholds"][0] = broken["state"]["thresholds"][0][::-1]
    with pytest.raises(CodecError):
        get_codec(broken)
    with pytest.raises(CodecError):
        get_codec("lightweight", per_channel=True).fit(torch.rand(4, 10))
