"""A malformed lightweight state or payload is refused with a typed error, never another exception."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest

import splitcodec
from splitcodec.bitstream import pack, unpack
from splitcodec.codecs import decode
from splitcodec.errors import CodecError, PayloadError

GOLDEN = Path(__file__).parent / "fixtures" / "lightweight" / "00.scb"


@pytest.fixture(scope="module")
def frame():
    return unpack(GOLDEN.read_bytes())


def _bad(state: dict, key: str, value) -> dict:
    out = copy.deepcopy(state)
    out[key] = value
    return out


BAD_STATES = {
    "renamed key": lambda s: {("channem_levels" if k == "channel_levels" else k): v for k, v in s.items()},
    "missing key": lambda s: {k: v for k, v in s.items() if k != "counts"},
    "not an object": lambda s: [s],
    "clip is an object": lambda s: _bad(s, "clip", [{"a": 1}]),
    "float counts": lambda s: _bad(s, "counts", [[float(c) for c in s["counts"][0]]]),
    "wrapping counts": lambda s: _bad(s, "counts", [[2**62] * 3 + [65536 - 3 * 2**62 % 2**64]]),
    "string levels": lambda s: _bad(s, "levels", [[str(v) for v in s["levels"][0]]]),
    "huge level": lambda s: _bad(s, "levels", [[1e39] + s["levels"][0][1:]]),
    "huge channel level": lambda s: _bad(s, "channel_levels", [[1e300] + r[1:] for r in s["channel_levels"]]),
    "model is an object": lambda s: _bad(s, "model", [{"3": 1}]),
    "string slope": lambda s: _bad(s, "slope", "0.0"),
    "context is a list": lambda s: _bad(s, "context", [1, 2]),
    "nested thresholds": lambda s: _bad(s, "thresholds", [[s["thresholds"][0]]]),
}


@pytest.mark.parametrize("name", sorted(BAD_STATES))
def test_malformed_state_is_a_codec_error_without_warnings(frame, name):
    state = BAD_STATES[name](frame.config["state"])
    codec = splitcodec.get_codec("lightweight")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CodecError, match="lightweight"):
            codec.set_state(state)


def test_valid_state_round_trips(frame):
    codec = splitcodec.get_codec("lightweight")
    codec.set_state(frame.config["state"])
    assert codec.get_state() == frame.config["state"]


@pytest.mark.parametrize("tail", [b"\0", b"\0\0", b"\0\0\0\0", b"\1\0\0\0"])
def test_extended_payload_is_a_payload_error(frame, tail):
    data = pack(frame.payload + tail, frame.shape, frame.dtype, config=frame.config)
    with pytest.raises(PayloadError):
        decode(data)


def test_channel_count_disagreeing_with_the_state_is_a_payload_error(frame):
    shape = (1, frame.shape[1] + 1) + tuple(frame.shape[2:])
    with pytest.raises(PayloadError, match="channels"):
        decode(pack(frame.payload, shape, frame.dtype, config=frame.config))


def test_golden_payload_still_decodes(frame):
    expected = np.load(GOLDEN.with_suffix(".npy"))
    assert decode(GOLDEN.read_bytes()).shape == expected.shape
