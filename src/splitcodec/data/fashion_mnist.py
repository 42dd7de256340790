"""Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747), read from the IDX files of the Debian package.

Splits:
    ``train``        59,000 images of the 60k training file (all but ``calibration``);
    ``calibration``  1,000 images held out of the training file by a fixed seeded permutation;
    ``test``         the 10,000 images of the t10k file, in file order.

Both train-file splits keep file order.  The hold-out is drawn with SplitMix64 hashes of the image
indices (not a library RNG) so it cannot change with a numpy/torch upgrade.  Files are looked up in
``$SPLITCODEC_FASHION_MNIST_DIR``, then ``/usr/share/datasets/fashion-mnist`` (``.gz`` or uncompressed).
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from splitcodec.data.base import Dataset, normalize, register_dataset
from splitcodec.errors import DatasetError

__all__ = ["MEAN", "STD", "CALIBRATION_SIZE", "calibration_indices", "find_dir"]

#: Mean and std of all 60k training pixels in [0, 1] units (computed once: 0.286041, 0.353024).
MEAN: tuple[float, ...] = (0.2860,)
STD: tuple[float, ...] = (0.3530,)
CALIBRATION_SIZE = 1000
_SEED = 0x5EED_F4A5
_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
_ENV = "SPLITCODEC_FASHION_MNIST_DIR"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_dir() -> Path:
    """The directory holding the four IDX files; raises DatasetError saying how to install them."""
    candidates = [Path(os.environ[_ENV])] if os.environ.get(_ENV) else []
    candidates.append(_DEFAULT_DIR)
    for d in candidates:
        if all(_find_file(d, stem) for pair in _FILES.values() for stem in pair):
            return d
    raise DatasetError(
        "Fashion-MNIST files not found in "
        + ", ".join(str(d) for d in candidates)
        + ". Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
        f"or point ${_ENV} at a directory with {', '.join(s + '.gz' for p in _FILES.values() for s in p)}."
    )


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    header = 8 + 4 * len(item_shape)  # magic, count, then one int32 per item dimension
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise DatasetError(f"{path} is not an IDX file with magic {magic}")
    count = int.from_bytes(data[4:8], "big")
    dims = tuple(int.from_bytes(data[8 + 4 * i : 12 + 4 * i], "big") for i in range(len(item_shape)))
    if dims != item_shape or len(data) != header + count * int(np.prod(item_shape, dtype=np.int64)):
        raise DatasetError(f"{path}: unexpected IDX size (count {count}, dims {dims}, {len(data)} bytes)")
    arr = np.frombuffer(data, dtype=np.uint8, offset=header).reshape((count, *item_shape))
    return arr


@lru_cache(maxsize=None)
def _load_file_pair(which: str) -> tuple[np.ndarray, np.ndarray]:
    """Parsed (images uint8 N×28×28, labels uint8 N) of the train or t10k files, cached in-process."""
    directory = find_dir()
    img_stem, lbl_stem = _FILES[which]
    images = _read_idx(_find_file(directory, img_stem), 2051, (28, 28))  # type: ignore[arg-type]
    labels = _read_idx(_find_file(directory, lbl_stem), 2049, ())  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise DatasetError(f"{directory}: {len(images)} {which} images but {len(labels)} labels")
    return images, labels


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def calibration_indices(n_train: int = 60000) -> np.ndarray:
    """Sorted indices (into the 60k training file) of the ``calibration`` split."""
    keys = _splitmix64(np.arange(n_train, dtype=np.uint64) + np.uint64(_SEED))
    return np.sort(np.argsort(keys, kind="stable")[:CALIBRATION_SIZE])


@register_dataset("fashion-mnist", ("train", "calibration", "test"))
def load(split: str) -> Dataset:
    """Load one split of Fashion-MNIST (1×28×28 images, 10 classes)."""
    images, labels = _load_file_pair("test" if split == "test" else "train")
    if split != "test":
        held_out = calibration_indices(len(images))
        if split == "calibration":
            index = held_out
        else:
            keep = np.ones(len(images), dtype=bool)
            keep[held_out] = False
            index = np.flatnonzero(keep)
        images, labels = images[index], labels[index]
    raw = torch.from_numpy(np.ascontiguousarray(images)[:, None].copy())
    return Dataset(
        name="fashion-mnist",
        split=split,
        images=normalize(raw, MEAN, STD),
        labels=torch.from_numpy(labels.astype(np.int64)),
        raw=raw,
        mean=MEAN,
        std=STD,
    )
