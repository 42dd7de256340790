"""The ``lightweight`` codec: header cost, table-lookup decoding, activations, ablation parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from splitcodec import bitstream
from splitcodec.codecs import ConfigStore, decode, get_codec
from splitcodec.entropy import ideal_bits
from splitcodec.errors import BitstreamError, CodecError, NotFittedError
from splitcodec.split import Activation


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
    codec = get_codec("lightweight", lam=0.05, channel_tables=False).fit(calib)
    data = codec.encode(x, config="ref")
    frame = bitstream.unpack(data)
    assert frame.header_bytes == 16  # magic, version, 4-byte config reference, dtype/ndim, shape, CRC
    state = codec.get_config()["state"]
    idx = np.searchsorted(np.float32(state["thresholds"][0]), x.numpy(), side="right")
    ideal = ideal_bits(idx, np.array(state["counts"][0])) / 8
    assert ideal <= len(frame.payload) <= ideal + 8  # nothing but the entropy-coded indices
    store = ConfigStore()
    store.add(json.loads(json.dumps(codec.get_config())))  # the config travels once, as JSON
    assert torch.equal(decode(data, store), codec.decode(data))


def test_decoder_is_a_table_lookup_into_the_levels():
    calib, x = relu_features(32), relu_features(2, seed=5)
    shared = get_codec("lightweight", lam=0.02, channel_levels=False).fit(calib)
    levels = shared.get_config()["state"]["levels"][0]
    assert set(np.unique(shared.decode(shared.encode(x)).numpy()).tolist()) <= set(levels)
    assert 0.0 in levels  # ReLU keeps an exact zero level
    # channel_levels: one value per (channel, cell), the calibration centroid; same indices, same rate
    codec = get_codec("lightweight", lam=0.02).fit(calib)
    table = np.array(codec.get_config()["state"]["channel_levels"], dtype=np.float32)
    assert table.shape == (16, len(levels))
    y = codec.decode(codec.encode(x)).numpy()
    thresholds = np.float32(shared.get_config()["state"]["thresholds"][0])
    idx = np.searchsorted(thresholds, x.numpy(), side="right")
    np.testing.assert_array_equal(y, table[np.arange(16)[None, :, None, None], idx])
    assert len(codec.encode(x, config="ref")) == len(shared.encode(x, config="ref"))
    # the centroids cut the error (the shared cell levels are only the tensor-wide centroids)
    assert nmse(x, torch.from_numpy(y)) < nmse(x, shared.decode(shared.encode(x)))


def test_relu_zeros_stay_exactly_zero_and_rate_falls_with_lambda():
    calib, x = relu_features(64), relu_features(4, seed=3)
    sizes, errors = [], []
    for lam in (0.005, 0.05, 0.5):
        codec = get_codec("lightweight", lam=lam, channel_levels=False).fit(calib)
        y = codec.decode(codec.encode(x, config="ref"))
        assert torch.all(y[x == 0] == 0)
        sizes.append(len(codec.encode(x, config="ref")))
        errors.append(nmse(x, y))
    assert sizes[0] > sizes[1] > sizes[2]
    assert errors[0] < errors[1] < errors[2]


@pytest.mark.slow
def test_leaky_relu_slope_comes_from_the_activation():
    calib = leaky_features(64)
    codec = get_codec("lightweight", lam=0.003).fit(calib, activation=Activation("leaky_relu", 0.1))
    state = codec.get_config()["state"]
    assert state["activation"] == "leaky_relu" and state["slope"] == 0.1
    assert min(state["levels"][0]) < 0  # the negative branch is kept
    x = leaky_features(2, seed=4)
    assert nmse(x, codec.decode(codec.encode(x))) < 0.02
    # without the split point, data with negatives is modelled as "other"
    assert get_codec("lightweight").fit(calib).get_config()["state"]["activation"] == "other"


def test_wrong_activation_claim_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="modelling them as 'other'"):
        codec = get_codec("lightweight").fit(leaky_features(8), activation=Activation("relu"))
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


def test_channel_tables_share_the_quantizer_and_spend_fewer_bits():
    calib, x = relu_features(64), relu_features(16, seed=12)
    shared = get_codec("lightweight", lam=0.1, channel_tables=False).fit(calib)
    tables = get_codec("lightweight", lam=0.1, channel_tables=True).fit(calib)
    s1, s2 = shared.get_config()["state"], tables.get_config()["state"]
    assert s2["levels"] == s1["levels"] and len(s2["counts"]) == 16 and len(s2["levels"]) == 1
    assert torch.equal(shared.decode(shared.encode(x)), tables.decode(tables.encode(x)))  # same quantizer
    # channels of different scales have different index statistics: conditioning on the channel pays
    assert len(tables.encode(x, config="ref")) < 0.97 * len(shared.encode(x, config="ref"))
    # a channel never active during calibration still codes (the tensor histogram is its prior)
    calib[:, 5] = 0
    sparse = get_codec("lightweight", lam=0.1, channel_tables=True).fit(calib)
    plain = get_codec("lightweight", lam=0.1, channel_tables=False).fit(calib)
    assert torch.equal(sparse.decode(sparse.encode(x)), plain.decode(plain.encode(x)))
    assert (x[:, 5] > 0).any()


def smooth_features(n: int, seed: int = 0) -> torch.Tensor:
    """ReLU features with spatial correlation, like a conv layer's."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, 16, 16, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1) * 3
    return torch.relu(x - 0.5)


def test_checkerboard_context_spends_fewer_bits_on_correlated_maps():
    calib, x = smooth_features(32), smooth_features(4, seed=1)
    plain = get_codec("lightweight", lam=0.1, context=False).fit(calib)
    ctx = get_codec("lightweight", lam=0.1).fit(calib)
    assert ctx.get_config()["state"]["context"] is not None
    y = ctx.decode(ctx.encode(x))
    assert torch.equal(y, plain.decode(plain.encode(x)))  # same quantizer, same levels
    assert len(ctx.encode(x, config="ref")) < 0.9 * len(plain.encode(x, config="ref"))
    # a tensor that is not (N, C, H, W) is coded without contexts by the same codec
    flat = x.reshape(4, 8, 256)
    assert torch.equal(ctx.decode(ctx.encode(flat)), y.reshape(4, 8, 256))
    # 2-D features: no channel refinements at all
    vec = get_codec("lightweight").fit(torch.relu(torch.randn(32, 40)))
    state = vec.get_config()["state"]
    assert state["channels"] is None and state["context"] is None and state["channel_levels"] is None


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


def test_cli_fit_model_reports_the_fit(tmp_path, capsys):
    from splitcodec.cli import main

    torch.save(relu_features(32), tmp_path / "calib.pt")
    torch.save(relu_features(8, seed=3), tmp_path / "test.pt")
    assert main(["fit-model", str(tmp_path / "calib.pt"), "--test", str(tmp_path / "test.pt"), "--lam", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "KS" in out and "held-out" in out and "index entropy" in out
    assert main(["fit-model", str(tmp_path / "calib.pt"), "--activation", "leaky_relu", "--slope", "0.2"]) == 0
    assert "leaky_relu (slope 0.2)" in capsys.readouterr().out
    assert main(["fit-model"]) == 2
