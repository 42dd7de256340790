from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from splitcodec.codecs import Codec, codec_class, get_codec, list_codecs, parse_codec_spec, register_codec
from splitcodec.errors import CodecError, UnknownCodecError


def test_lookup_by_name_and_config():
    codec = get_codec("uniform", bits=4)
    assert codec.bits == 4
    assert get_codec({"id": "uniform", "bits": 4}) == codec
    assert "uniform" in list_codecs() and list_codecs("unif*") == ["uniform"]


def test_unknown_codec_suggests_close_names():
    with pytest.raises(UnknownCodecError, match="did you mean uniform"):
        get_codec("uniforn")


def test_bad_parameters_name_the_codec():
    with pytest.raises(CodecError, match="bits must be an integer"):
        get_codec("uniform", bits=99)
    with pytest.raises(CodecError, match="not both"):
        get_codec({"id": "uniform"}, bits=2)


def test_duplicate_id_is_refused():
    class Impostor(Codec):
        codec_id = "uniform"

        def encode_array(self, x):
            return b""

        def decode_array(self, payload, shape):
            raise NotImplementedError

    with pytest.raises(CodecError, match="already registered"):
        register_codec(Impostor)
    assert codec_class("uniform").__name__ == "Uniform"


def test_spec_parsing():
    assert parse_codec_spec("uniform:bits=8,2") == [("uniform", {"bits": 8}), ("uniform", {"bits": 2})]
    assert parse_codec_spec("raw") == [("raw", {"dtype": d}) for d in ("float32", "float16", "bfloat16")]
    with pytest.raises(CodecError, match="bad codec spec"):
        parse_codec_spec("uniform:bits")


@pytest.mark.slow
def test_entry_point_plugin_is_discovered(tmp_path):
    """A codec shipped by another distribution registers through the splitcodec.codecs entry points."""
    plugin_dir = Path(__file__).parent / "fake_plugin"
    code = (
        "import torch; from splitcodec.codecs import get_codec, list_codecs;"
        "assert 'test-negate' in list_codecs();"
        "c = get_codec('test-negate'); x = torch.randn(2, 3);"
        "assert torch.equal(c.decode(c.encode(x)), x); print('ok')"
    )
    src = Path(__file__).parents[1] / "src"
    env = {"PYTHONPATH": f"{plugin_dir}:{src}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_spec_with_a_repeated_key_is_refused():
    with pytest.raises(CodecError, match="'bits' is given twice"):
        parse_codec_spec("uniform:bits=4:bits=8")
