"""Input reconstruction: the decoder network, its weight files, the metrics, the grid and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splitcodec.cli import main
from splitcodec.codecs import get_codec
from splitcodec.errors import SplitcodecError
from splitcodec.reconstruct import FeatureDecoder, image_grid, load_reconstructor, psnr, save_reconstructor, ssim, to_uint8


@pytest.mark.parametrize(
    ("features", "image"),
    [((32, 14, 14), (1, 28, 28)), ((64, 7, 7), (1, 28, 28)), ((128, 4, 4), (1, 28, 28)), ((24, 56, 56), (3, 224, 224))],
)
def test_decoder_maps_features_to_image_shape(features, image):
    dec = FeatureDecoder(features, image, width=16).eval()
    with torch.no_grad():
        y = dec(torch.randn(2, *features))
    assert y.shape == (2, *image)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(SplitcodecError, match="features"):
        dec(torch.randn(2, features[0] + 1, *features[1:]))


def test_decoder_learns_an_invertible_toy_mapping():
    """A few hundred steps on a toy head (space-to-depth) must beat the mean image by a wide margin."""
    torch.manual_seed(0)
    images = torch.rand(64, 1, 8, 8)
    images = torch.nn.functional.avg_pool2d(torch.nn.functional.interpolate(images, scale_factor=2), 2)  # smooth-ish
    feats = torch.nn.functional.pixel_unshuffle(images, 2) * 3 - 1  # 4×4×4, an invertible "head"
    dec = FeatureDecoder((4, 4, 4), (1, 8, 8), width=16)
    dec.set_feature_stats(feats)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and fair to a busy machine
    try:
        for _ in range(120):
            loss = torch.nn.functional.mse_loss(dec(feats), images)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    dec.eval()
    with torch.no_grad():
        out = to_uint8(dec(feats))
    target = to_uint8(images)
    baseline = psnr(target, to_uint8(images.mean(0, keepdim=True).expand_as(images)))
    assert psnr(target, out) > baseline + 6


def test_weights_round_trip(tmp_path):
    dec = FeatureDecoder((8, 7, 7), (1, 28, 28), width=16)
    dec.set_feature_stats(torch.randn(10, 8, 7, 7) * 3 + 1)
    path = tmp_path / "recon.pt"
    save_reconstructor(dec, path, model="toy", split="s")
    back = load_reconstructor("toy", "s", path=path)
    x = torch.randn(3, 8, 7, 7)
    with torch.no_grad():
        assert torch.allclose(back(x), dec.eval()(x).half().float(), atol=2e-2)  # float16 storage
    assert back.meta["model"] == "toy"
    with pytest.raises(SplitcodecError, match="train one with"):
        load_reconstructor("toy", "nowhere", path=tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SplitcodecError, match="not a reconstruction decoder"):
        load_reconstructor("toy", "s", path=tmp_path / "junk.pt")


def test_metrics_and_grid():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(0, 256, (4, 1, 16, 16), dtype=np.uint8))
    assert psnr(a, a) > 90 and ssim(a, a) == pytest.approx(1.0)
    noisy = (a.int() + torch.from_numpy(rng.integers(-8, 9, a.shape))).clamp(0, 255).to(torch.uint8)
    assert 25 < psnr(a, noisy) < 40
    assert 0 < ssim(a, noisy) < 1
    grid = image_grid([a, noisy], scale=2, pad=1)
    assert grid.shape == (4 * 33 + 1, 2 * 33 + 1, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid[1:33:2, 1:33:2, 0], a[0, 0].numpy())


def test_cli_reconstructs_from_streams(tmp_path):
    dec = FeatureDecoder((8, 7, 7), (1, 28, 28), width=16)
    weights = tmp_path / "recon.pt"
    save_reconstructor(dec, weights, model="ref-darknet", split="stage2.down")
    codec = get_codec("nearlossless")
    stream = tmp_path / "feat.scb"
    stream.write_bytes(codec.encode(torch.relu(torch.randn(1, 8, 7, 7))))
    out = tmp_path / "out"
    assert main(["reconstruct", "--model", "ref-darknet", "--stream", str(stream), "--weights", str(weights), "--out", str(out)]) == 0
    from PIL import Image

    img = Image.open(out / "feat.png")
    assert img.size == (28, 28)
    assert main(["reconstruct", "--model", "ref-darknet", "--stream", str(stream), "--weights", str(tmp_path / "none.pt"), "--out", str(out)]) == 2


@pytest.mark.slow
def test_reconstruct_images_through_a_codec_and_the_cli(tmp_path):
    """The committed ref-resnet decoder on 4 test images: uncompressed and uniform 4-bit columns, rates from
    the real streams; the CLI writes one PNG per image and the grid."""
    from splitcodec.reconstruct import reconstruct_images

    rec = reconstruct_images("ref-resnet", codec="uniform:bits=4", samples=4)
    assert list(rec.columns) == ["original", "uncompressed features", "uniform features"]
    assert all(c.shape == (4, 1, 28, 28) and c.dtype == torch.uint8 for c in rec.columns.values())
    assert rec.bpe["uncompressed features"] == 32.0 and 1.0 < rec.bpe["uniform features"] < 4.5
    assert psnr(rec.original, rec.columns["uniform features"]) > 15
    assert list(reconstruct_images("ref-resnet", codec=None, samples=2).columns) == ["original", "uncompressed features"]
    with pytest.raises(SplitcodecError, match="exactly one"):
        reconstruct_images("ref-resnet", codec="uniform:bits=4,2", samples=2)
    out = tmp_path / "rec"
    assert main(["reconstruct", "--model", "ref-resnet", "--codec", "uniform:bits=4", "--samples", "3", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000.png", "0001.png", "0002.png", "grid.png"]
