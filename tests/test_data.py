"""Tests of splitcodec.data: Fashion-MNIST splits and the packaged photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from splitcodec.data import Dataset, list_datasets, load_dataset, normalize
from splitcodec.data import fashion_mnist, photos
from splitcodec.errors import DatasetError, SplitcodecError


def _fashion_mnist_available() -> bool:
    try:
        fashion_mnist.find_dir()
    except DatasetError:
        return False
    return True


needs_fmnist = pytest.mark.skipif(not _fashion_mnist_available(), reason="apt-get install dataset-fashion-mnist")


def test_list_datasets() -> None:
    assert list_datasets() == ["fashion-detect", "fashion-mnist", "photos"]


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(DatasetError, match="did you mean fashion-mnist"):
        load_dataset("fashion_mnist", "test")
    with pytest.raises(DatasetError, match="train, calibration, test"):
        load_dataset("fashion-mnist", "val")
    assert issubclass(DatasetError, SplitcodecError)


@needs_fmnist
@pytest.mark.parametrize(("split", "n"), [("train", 59000), ("calibration", 1000), ("test", 10000)])
def test_fashion_mnist_splits(split: str, n: int) -> None:
    d = load_dataset("fashion-mnist", split)
    assert (d.name, d.split, len(d)) == ("fashion-mnist", split, n)
    assert d.raw.dtype == torch.uint8 and d.raw.shape == (n, 1, 28, 28)
    assert d.images.dtype == torch.float32 and d.images.shape == (n, 1, 28, 28)
    assert d.labels is not None and d.labels.dtype == torch.int64 and d.labels.shape == (n,)
    assert int(d.labels.min()) == 0 and int(d.labels.max()) == 9
    assert torch.equal(d.images, d.normalize(d.raw))
    assert (d.mean, d.std) == ((0.2860,), (0.3530,))


@needs_fmnist
def test_fashion_mnist_calibration_is_held_out_of_train() -> None:
    train_images, train_labels = fashion_mnist._load_file_pair("train")
    held = fashion_mnist.calibration_indices()
    # pinned: the hold-out must never change silently (SplitMix64 hashes, not a library RNG)
    assert held[:6].tolist() == [28, 154, 177, 271, 379, 467]
    assert len(np.unique(held)) == 1000
    cal = load_dataset("fashion-mnist", "calibration")
    train = load_dataset("fashion-mnist", "train")
    assert np.array_equal(cal.raw[:, 0].numpy(), train_images[held])
    assert np.array_equal(cal.labels.numpy(), train_labels[held])  # type: ignore[union-attr]
    rest = np.setdiff1d(np.arange(60000), held)
    assert np.array_equal(train.raw[:, 0].numpy(), train_images[rest])


@needs_fmnist
def test_fashion_mnist_test_split_is_balanced_file_order() -> None:
    d = load_dataset("fashion-mnist", "test")
    assert torch.bincount(d.labels).tolist() == [1000] * 10  # type: ignore[arg-type]
    images, _ = fashion_mnist._load_file_pair("test")
    assert np.array_equal(d.raw[:5, 0].numpy(), images[:5])


@needs_fmnist
def test_subset_takes_the_first_samples() -> None:
    d = load_dataset("fashion-mnist", "test")
    s = d.subset(7)
    assert len(s) == 7 and torch.equal(s.raw, d.raw[:7]) and torch.equal(s.labels, d.labels[:7])  # type: ignore[index]
    assert d.subset(None) is d
    assert len(d.subset(10**9)) == len(d)
    with pytest.raises(DatasetError):
        d.subset(-1)


def test_missing_fashion_mnist_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLITCODEC_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(fashion_mnist, "_DEFAULT_DIR", tmp_path)
    with pytest.raises(DatasetError, match=r"dataset-fashion-mnist.*apt-get install dataset-fashion-mnist"):
        fashion_mnist.find_dir()


@needs_fmnist
def test_env_var_points_at_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = fashion_mnist.find_dir()
    for f in real.iterdir():
        (tmp_path / f.name).symlink_to(f)
    monkeypatch.setenv("SPLITCODEC_FASHION_MNIST_DIR", str(tmp_path))
    assert fashion_mnist.find_dir() == tmp_path


def test_malformed_idx_file(tmp_path: Path) -> None:
    bad = tmp_path / "x-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + b"\x00" * 8 + b"\x01" * 10)
    with pytest.raises(DatasetError, match="unexpected IDX size"):
        fashion_mnist._read_idx(bad, 2051, (28, 28))


def test_photos_splits() -> None:
    cal = load_dataset("photos", "calibration")
    test = load_dataset("photos", "test")
    assert (len(cal), len(test)) == (30, 80)
    for d in (cal, test):
        assert d.labels is None
        assert d.raw.dtype == torch.uint8 and d.raw.shape[1:] == (3, 224, 224)
        assert torch.equal(d.images, d.normalize(d.raw))
        assert d.mean == (0.485, 0.456, 0.406) and d.std == (0.229, 0.224, 0.225)
    assert len(photos.PHOTOS) == 11 and set(photos.CALIBRATION_PHOTOS) < set(photos.PHOTOS)
    # split by photo: no crop appears in both splits
    cal_keys = {bytes(c.numpy().tobytes()[:4096]) for c in cal.raw}
    assert not any(bytes(c.numpy().tobytes()[:4096]) in cal_keys for c in test.raw)


def test_photo_crops_are_ten_crops() -> None:
    d = load_dataset("photos", "calibration")
    crops = d.raw[:10]  # chelsea: TL, TR, BL, BR, centre, then the same of the flipped photo
    assert torch.equal(crops[9], crops[4].flip(-1))  # flipped centre
    assert torch.equal(crops[5], crops[1].flip(-1))  # flipped image's top-left = mirrored top-right
    assert torch.equal(load_dataset("photos", "calibration").raw, d.raw)


def test_photo_paths_come_from_installed_packages() -> None:
    for name in photos.PHOTOS:
        assert photos.photo_path(name).is_file()


def test_dataset_validates_its_fields() -> None:
    raw = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(DatasetError, match="raw must be uint8"):
        Dataset("x", "y", raw.float(), None, raw.float(), (0.5,), (0.5,))  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="mean/std"):
        Dataset("x", "y", normalize(raw, (0.5,), (0.5,)), None, raw, (0.5, 0.5), (0.5,))
    with pytest.raises(DatasetError, match="normalize expects uint8"):
        normalize(raw.float(), (0.5,), (0.5,))  # type: ignore[arg-type]
