"""The base Codec's config cache (dropped by fit/set_state and by a parameter change) and ``lossless``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splitcodec.bitstream import config_ref
from splitcodec.codecs import get_codec
from splitcodec.codecs.base import Codec
from splitcodec.codecs.store import ConfigStore
from splitcodec.errors import BitstreamError, UnknownConfigError


class Scaled(Codec):
    """A toy codec whose fitted state is one scale; it overrides ``fit`` and ``set_state``."""

    codec_id = "test-scaled"

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self.scale: float | None = None

    def fit(self, features, activation=None):
        self.scale = float(np.abs(np.asarray(features)).max())
        return self

    def get_state(self):
        return None if self.scale is None else {"scale": self.scale}

    def set_state(self, state):
        self.scale = float(state["scale"])

    def encode_array(self, x):
        return x.astype("<f4").tobytes()

    def decode_array(self, payload, shape):
        return np.frombuffer(payload, dtype="<f4").reshape(shape)


class Refit(Scaled):
    """Overrides ``fit`` again and calls the parent's: the cache must still be dropped."""

    codec_id = "test-refit"

    def fit(self, features, activation=None):
        super().fit(features, activation)
        self.scale = self.scale * 2
        return self


@pytest.mark.parametrize("cls", [Scaled, Refit])
def test_fit_and_set_state_drop_the_cached_config_and_reference(cls):
    codec = cls()
    assert not codec.is_fitted
    unfitted = codec.config_ref
    codec.fit(torch.ones(2, 3))
    assert codec.is_fitted and codec.get_config()["state"]["scale"] in (1.0, 2.0)
    fitted = codec.config_ref
    assert fitted != unfitted and fitted == config_ref(codec.get_config())
    codec.set_state({"scale": 5.0})
    assert codec.get_config()["state"] == {"scale": 5.0}
    assert codec.config_ref == config_ref(codec.get_config()) != fitted
    assert getattr(cls.fit, "_drops_config_cache", False) and getattr(cls.set_state, "_drops_config_cache", False)


def test_a_parameter_change_drops_the_cache():
    codec = Scaled(offset=1.0)
    before = codec.config_ref
    codec.offset = 2.0
    assert codec.get_config()["offset"] == 2.0 and codec.config_ref != before


def test_get_config_is_a_copy_the_caller_may_modify():
    codec = get_codec("uniform", bits=4).fit(torch.rand(8, 2, 3, 3))
    ref = codec.config_ref
    config = codec.get_config()
    config["bits"] = 9
    config["state"]["counts"][0] += 1
    assert codec.get_config()["bits"] == 4 and codec.config_ref == ref
    assert codec == get_codec(codec.get_config()) and hash(codec) == hash(get_codec(codec.get_config()))


def test_a_refit_codec_writes_streams_under_its_new_reference():
    codec = get_codec("uniform", bits=4).fit(torch.rand(8, 2, 3, 3))
    old = codec.config_ref
    codec.fit(torch.rand(8, 2, 3, 3) * 3)
    stream = codec.encode(torch.rand(1, 2, 3, 3), config="ref")
    assert codec.config_ref != old and stream[3:7] == codec.config_ref
    assert codec.decode(stream).shape == (1, 2, 3, 3)


def test_lossless_is_a_plain_attribute_on_every_codec():
    assert get_codec("raw").lossless is True
    assert get_codec("raw", dtype="float16").lossless is False
    assert get_codec("uniform").lossless is False
    assert not isinstance(Codec.__dict__["lossless"], property)


def test_an_unknown_reference_is_its_own_error_kind():
    codec = get_codec("uniform", bits=4).fit(torch.rand(4, 2, 3))
    stream = codec.encode(torch.rand(1, 2, 3), config="ref")
    with pytest.raises(UnknownConfigError) as e:
        ConfigStore().get(codec.config_ref)
    assert isinstance(e.value, BitstreamError)
    from splitcodec.codecs.store import decode

    with pytest.raises(UnknownConfigError):
        decode(stream)


def test_the_config_is_built_once_until_it_changes(monkeypatch):
    codec = Scaled().fit(torch.ones(2, 3))
    calls = []
    get_state = Scaled.get_state
    monkeypatch.setattr(Scaled, "get_state", lambda self: calls.append(1) or get_state(self))
    for _ in range(5):
        assert codec.is_fitted and len(codec.config_ref) == 4
        codec.encode(torch.ones(1, 3), config="inline")
    assert len(calls) == 1
    codec.fit(torch.ones(2, 3) * 2)
    assert codec.get_config()["state"] == {"scale": 2.0} and len(calls) == 2
