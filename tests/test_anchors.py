"""The image/video-codec anchors: exactness of the lossless modes, rate control, errors, missing binaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splitcodec.codecs import _ffmpeg, available_codecs, get_codec
from splitcodec.codecs.image_hevc import rgb_to_ycbcr420, ycbcr420_to_rgb
from splitcodec.errors import BitstreamError, CodecError, DependencyError
from splitcodec.tiling import dequantize, quantize

AVAILABLE = available_codecs()
LOSSLESS = [
    ("hevc", {}, (8, 10, 12)),
    ("av1", {}, (8, 10, 12)),
    ("ffv1", {}, (8, 10, 12, 16)),
    ("png", {}, (8, 16)),
    ("webp", {}, (6, 8)),
    ("jpegxl", {"distance": 0.0}, (8, 10, 12, 16)),
]
SUBPROCESS = ["hevc", "av1", "ffv1", "image-hevc"]


def need(codec_id: str) -> None:
    if AVAILABLE.get(codec_id) is not None:
        pytest.skip(f"{codec_id}: {AVAILABLE[codec_id]}")


def features(shape=(1, 24, 10, 10), seed=0) -> torch.Tensor:
    """ReLU-like features with spatial structure (a smooth field plus noise, ~half zeros)."""
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.randn(shape[0], shape[1], 3, 3, generator=g), size=shape[2:], mode="bilinear")
    return torch.relu(smooth * 2 + 0.3 * torch.randn(shape, generator=g))


def quantized(x: torch.Tensor, bits: int) -> torch.Tensor:
    q, lo, hi = quantize(x.numpy(), bits)
    return torch.from_numpy(dequantize(q, lo, hi, bits))


@pytest.mark.x265
@pytest.mark.parametrize("bits", [8, 10, 12])
def test_x265_lossless_is_bit_exact(bits):
    """x265's lossless mode decodes to exactly the quantized codes (the issue's bit-exact check)."""
    need("hevc")
    x = features((1, 40, 9, 11))  # 7×6 grid of 9×11 planes: 63×66, padded to 64×72 inside
    codec = get_codec("hevc", bits=bits)
    y = codec.decode(codec.encode(x))
    assert torch.equal(y, quantized(x, bits))


@pytest.mark.parametrize(("codec_id", "params", "depths"), LOSSLESS, ids=[c for c, _, _ in LOSSLESS])
def test_lossless_anchors_reproduce_the_codes(codec_id, params, depths):
    need(codec_id)
    x = features(seed=1)
    for bits in depths:
        codec = get_codec(codec_id, bits=bits, **params)
        assert torch.equal(codec.decode(codec.encode(x)), quantized(x, bits)), f"{codec_id} bits={bits}"


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (1, 3, 5, 7), (2, 4, 3, 3), (1, 300)])
@pytest.mark.parametrize("codec_id", ["hevc", "av1", "ffv1", "jpegxl"])
def test_odd_and_tiny_mosaics(codec_id, shape):
    """x265 needs one whole CTU (and crashes on tiny pictures): padding makes any mosaic codable."""
    need(codec_id)
    x = torch.relu(torch.randn(shape, generator=torch.Generator().manual_seed(3)))
    codec = get_codec(codec_id)
    assert torch.equal(codec.decode(codec.encode(x)), quantized(x, 10))


@pytest.mark.parametrize(("codec_id", "key", "values"), [("hevc", "qp", (22, 37)), ("av1", "cq", (10, 45)), ("jpegxl", "distance", (1.0, 6.0))])
def test_lossy_rate_control(codec_id, key, values):
    """A coarser setting spends fewer bytes and loses more; lossless spends the most."""
    need(codec_id)
    x = features((1, 32, 12, 12), seed=2)
    sizes, errors = [], []
    for value in (None if key != "distance" else 0.0, *values):
        codec = get_codec(codec_id, **{key: value})
        data = codec.encode(x, config="ref")
        sizes.append(len(data))
        errors.append(float((codec.decode(data) - x).pow(2).mean()))
    assert sizes[0] > sizes[1] > sizes[2], sizes
    assert errors[0] < errors[1] < errors[2], errors


@pytest.mark.x265
def test_x265_stream_has_no_info_sei():
    """x265's informational SEI (version + full option string, ~2 KB) is not coded data: it is off."""
    need("hevc")
    payload = get_codec("hevc").encode_array(features().numpy())
    assert b"x265" not in payload and b"options" not in payload
    assert payload[8:12] == b"\x00\x00\x00\x01"  # lo, hi, then an Annex-B start code


@pytest.mark.parametrize(
    ("codec_id", "params", "message"),
    [
        ("webp", {"bits": 10}, "bits"),
        ("hevc", {"bits": 13}, "bits"),
        ("hevc", {"qp": 52}, "qp"),
        ("hevc", {"preset": "warp"}, "preset"),
        ("av1", {"cq": 64}, "cq"),
        ("av1", {"cpu_used": 10}, "cpu_used"),
        ("ffv1", {"context": 2}, "context"),
        ("jpegxl", {"distance": -1}, "distance"),
        ("png", {"bits": 0}, "bits"),
        ("image-jpeg", {"quality": 0}, "quality"),
        ("image-hevc", {"qp": 3.5}, "qp"),
    ],
)
def test_bad_parameters_name_the_parameter(codec_id, params, message):
    with pytest.raises(CodecError, match=message):
        get_codec(codec_id, **params)


def test_lossless_spelled_out():
    assert get_codec("hevc", qp="lossless") == get_codec("hevc", qp=None)
    assert get_codec("av1", cq="lossless").cq is None


@pytest.mark.parametrize("codec_id", ["hevc", "av1", "ffv1", "png", "webp", "jpegxl"])
def test_garbage_and_mismatched_payloads_are_bitstream_errors(codec_id):
    need(codec_id)
    codec = get_codec(codec_id, bits=8)
    x = features((1, 16, 12, 12)).numpy()
    payload = codec.encode_array(x)
    with pytest.raises(BitstreamError):
        codec.decode_array(payload[:8] + bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), x.shape)
    with pytest.raises(BitstreamError):  # a 48×48 picture where the shape says 48×96
        codec.decode_array(payload, (1, 16, 12, 24))
    with pytest.raises(BitstreamError):
        codec.decode_array(payload[:5], x.shape)


@pytest.mark.x265
def test_missing_binaries_raise_dependency_errors_naming_the_package(monkeypatch):
    need("hevc")
    data = get_codec("hevc").encode(features())
    monkeypatch.setenv("SPLITCODEC_DECODER", "ffmpeg")
    monkeypatch.setattr(_ffmpeg.shutil, "which", lambda name: None)
    for codec_id in ("hevc", "av1", "ffv1", "image-hevc"):
        with pytest.raises(DependencyError, match="Debian package"):
            get_codec(codec_id).check_available()
    with pytest.raises(DependencyError, match="apt-get install x265"):
        get_codec("hevc").encode(features())
    with pytest.raises(DependencyError, match="apt-get install aom-tools"):
        get_codec("av1").encode(features())
    with pytest.raises(DependencyError, match="apt-get install ffmpeg"):  # not disguised as a corrupt stream
        get_codec("hevc").decode(data)
    assert "x265" in available_codecs()["hevc"]


@pytest.mark.parametrize("codec_id", ["hevc", "av1", "ffv1", "image-hevc"])
def test_both_decoders_give_the_same_samples(codec_id, monkeypatch):
    """Decoding is normative: libavcodec in-process (PyAV) and the ffmpeg binary agree bit for bit."""
    need(codec_id)
    if _ffmpeg._pyav() is None:
        pytest.skip("PyAV (package av) is not installed")
    codec = get_codec(codec_id, **get_codec(codec_id).sweep[-1])  # a lossy setting
    x = picture((1, 3, 21, 30)) if codec_id.startswith("image") else features((1, 20, 7, 9))
    data = codec.encode(x)
    decoded = {}
    for backend in ("pyav", "ffmpeg"):
        monkeypatch.setenv("SPLITCODEC_DECODER", backend)
        assert _ffmpeg.decoder_backend() == backend
        decoded[backend] = codec.decode(data)
    assert torch.equal(decoded["pyav"], decoded["ffmpeg"])


def test_decoder_choice(monkeypatch):
    monkeypatch.setenv("SPLITCODEC_DECODER", "vlc")
    with pytest.raises(DependencyError, match="SPLITCODEC_DECODER"):
        _ffmpeg.decoder_backend()
    monkeypatch.setenv("SPLITCODEC_DECODER", "pyav")
    monkeypatch.setattr(_ffmpeg, "_pyav", lambda: None)
    with pytest.raises(DependencyError, match="pip install av"):
        _ffmpeg.decoder_backend()
    monkeypatch.setenv("SPLITCODEC_DECODER", "auto")
    assert _ffmpeg.decoder_backend() == "ffmpeg"


def test_failing_binary_is_a_codec_error_with_its_stderr(monkeypatch, tmp_path):
    fake = tmp_path / "x265"
    fake.write_text("#!/bin/sh\necho 'x265 [error]: no such luck' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SPLITCODEC_X265", str(fake))
    with pytest.raises(CodecError, match="exited with 3: x265 \\[error\\]: no such luck"):
        get_codec("hevc").encode(features())
    monkeypatch.setenv("SPLITCODEC_X265", str(tmp_path / "nope"))
    with pytest.raises(DependencyError, match="SPLITCODEC_X265"):
        get_codec("hevc").encode(features())


def test_ffmpeg_stream_line_parsing():
    log = (
        "Input #0, hevc, from 'pipe:0':\n  Duration: N/A, bitrate: N/A\n"
        "  Stream #0:0: Video: hevc (Rext), gray10le(tv), 84x84, 1 tbr, 1200k tbn\n"
        "Output #0, rawvideo, to 'pipe:1':\n  Stream #0:0: Video: rawvideo, gray16le, 99x99\n"
    )
    m = _ffmpeg._STREAM.search(log)
    assert m is not None and m.groups() == ("gray10le", "84", "84")
    m = _ffmpeg._STREAM.search(log.replace("gray10le(tv)", "yuv420p(tv, progressive)"))
    assert m.groups() == ("yuv420p", "84", "84")


# --- input-picture anchors -------------------------------------------------------------------------------


def picture(shape, seed=0) -> torch.Tensor:
    """A smooth-ish picture with values 0..255."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    base = torch.nn.functional.interpolate(torch.rand(n, c, 4, 4, generator=g), size=(h, w), mode="bilinear")
    return (base * 255).round()


@pytest.mark.parametrize("codec_id", ["image-jpeg", "image-webp", "image-hevc"])
@pytest.mark.parametrize("shape", [(1, 1, 28, 28), (2, 3, 29, 31)])
def test_image_anchors_roundtrip(codec_id, shape):
    need(codec_id)
    x = picture(shape)
    codec = get_codec(codec_id, **get_codec(codec_id).sweep[0])
    y = codec.decode(codec.encode(x))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y, y.round()) and y.min() >= 0 and y.max() <= 255
    assert (y - x).abs().mean() < 3, f"{codec_id}: mean abs error {(y - x).abs().mean():.2f} at its best setting"


@pytest.mark.parametrize("codec_id", ["image-jpeg", "image-webp", "image-hevc"])
def test_image_anchors_refuse_what_is_not_a_picture(codec_id):
    codec = get_codec(codec_id)
    with pytest.raises(CodecError, match="0..255"):
        codec.encode(picture((1, 3, 16, 16)) + 300)
    with pytest.raises(CodecError, match="C = 1 or 3"):
        codec.encode(picture((1, 2, 16, 16)))
    with pytest.raises(CodecError, match="N×C×H×W"):
        codec.encode(torch.zeros(16, 16))


def test_ycbcr_conversion_roundtrip():
    rgb = np.moveaxis(picture((1, 3, 32, 32), seed=4)[0].numpy().astype(np.uint8), 0, -1)
    back = ycbcr420_to_rgb(*rgb_to_ycbcr420(rgb))
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).mean() < 1.5  # smooth picture: 4:2:0 loses little
    gray = np.repeat(rgb[..., :1], 3, axis=2)
    y, cb, cr = rgb_to_ycbcr420(gray)
    assert np.array_equal(y, gray[..., 0]) and (np.abs(cb.astype(int) - 128) <= 1).all()
