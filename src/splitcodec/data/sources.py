"""Bring your own data: turn what a user has into test and calibration :class:`Dataset` objects.

:func:`resolve_dataset` accepts

- a registered name (``"fashion-mnist"``): its ``test`` and ``calibration`` splits;
- a directory in torchvision ``ImageFolder`` layout (one sub-folder per class, sorted names give the
  class indices — ImageNet-val works where a user has it): each picture is converted to the model's
  channels, and when it is not already H×W its shorter side is resized to ``H / 0.875`` and the centre
  H×W cut out (the usual ImageNet evaluation transform);
- a ``.pt`` file (a tensor, an ``(images, labels)`` pair or a dict with ``images`` / ``labels``) or an
  ``.npz`` file (arrays ``images`` and optionally ``labels``): uint8 N×C×H×W pixels, or floats in [0, 1];
- a torch ``DataLoader`` (or any iterable of ``(inputs, labels)`` batches) yielding model inputs that are
  already normalised: ``raw`` is then recovered by un-normalising with ``mean`` / ``std`` (it is only
  used by the input-picture codecs);
- a :class:`Dataset`.

Calibration never comes from the evaluation images.  It is taken, in this order, from the
``calibration`` argument (any of the kinds above), from the ``calibration`` split of a registered
dataset (also when a :class:`Dataset` object of a registered name is given), or else from a disjoint
cut: the **last** ``calibration_samples`` images become calibration and the evaluation uses the others
(:attr:`Sources.note` says so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from splitcodec.data.base import Dataset, list_datasets, load_dataset, normalize
from splitcodec.errors import DatasetError

__all__ = ["Sources", "resolve_dataset", "load_source", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
_CROP_RATIO = 0.875


@dataclass(frozen=True)
class Sources:
    """Evaluation and calibration data, disjoint; ``note`` says where calibration came from."""

    test: Dataset
    calibration: Dataset
    note: str


def _from_pixels(raw: torch.Tensor, labels: torch.Tensor | None, name: str, mean, std) -> Dataset:
    mean, std = _channel_stats(raw.shape[1], mean, std, name)
    return Dataset(name=name, split="user", images=normalize(raw, mean, std), labels=labels, raw=raw, mean=mean, std=std)


def _channel_stats(channels: int, mean, std, name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean = tuple(mean) if mean is not None else (0.5,) * channels
    std = tuple(std) if std is not None else (0.5,) * channels
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise DatasetError(f"{name}: {channels}-channel images but mean/std have {len(mean)}/{len(std)} values")
    return mean, std


def _as_pixels(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim != 4:
        raise DatasetError(f"{name}: images must be N×C×H×W (or N×H×W), got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.contiguous()
    if t.is_floating_point() and t.numel() and float(t.min()) >= 0.0 and float(t.max()) <= 1.0:
        return (t * 255.0).round().to(torch.uint8).contiguous()
    raise DatasetError(f"{name}: images must be uint8 pixels or floats in [0, 1], got {t.dtype}")


def _labels(y: Any, n: int, name: str) -> torch.Tensor | None:
    if y is None:
        return None
    t = torch.as_tensor(np.asarray(y)).long().reshape(-1)
    if len(t) != n:
        raise DatasetError(f"{name}: {len(t)} labels for {n} images")
    return t


def _load_file(path: Path, mean, std) -> Dataset:
    name = path.name
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                obj = {k: z[k] for k in z.files}
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise DatasetError(f"cannot read a dataset from {path}: {exc}") from exc
    if isinstance(obj, dict):
        images = obj.get("images", obj.get("x"))
        labels = obj.get("labels", obj.get("y"))
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        images, labels = obj
    else:
        images, labels = obj, None
    if images is None:
        raise DatasetError(f"{path}: found no 'images' (keys: {', '.join(obj)})")
    raw = _as_pixels(images, name)
    return _from_pixels(raw, _labels(labels, len(raw), name), name, mean, std)


def _read_picture(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        if size is not None and im.size != (size[1], size[0]):
            h, w = size
            scale = min(h, w) / _CROP_RATIO / min(im.size)
            im = im.resize((max(w, round(im.size[0] * scale)), max(h, round(im.size[1] * scale))), Image.BILINEAR)
            left, top = (im.size[0] - w) // 2, (im.size[1] - h) // 2
            im = im.crop((left, top, left + w, top + h))
        a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _load_folder(root: Path, input_size, mean, std) -> Dataset:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{root}: no class sub-folders (ImageFolder layout: {root}/<class>/<image>)")
    channels = input_size[0] if input_size else 3
    size = tuple(input_size[1:]) if input_size else None
    pictures, labels = [], []
    for index, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                pictures.append(_read_picture(f, channels, size))
                labels.append(index)
    if not pictures:
        raise DatasetError(f"{root}: no pictures ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    shapes = {p.shape for p in pictures}
    if len(shapes) > 1:
        raise DatasetError(f"{root}: pictures of different sizes {sorted(shapes)[:3]}; give the model's input size")
    raw = torch.from_numpy(np.stack(pictures))
    return _from_pixels(raw, torch.tensor(labels, dtype=torch.int64), root.name, mean, std)


def _load_batches(batches: Iterable[Any], mean, std) -> Dataset:
    xs, ys = [], []
    for batch in batches:
        x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
        xs.append(torch.as_tensor(x).float())
        if y is not None:
            ys.append(torch.as_tensor(y).long().reshape(-1))
    if not xs:
        raise DatasetError("the data loader yielded no batches")
    images = torch.cat(xs)
    if images.ndim != 4:
        raise DatasetError(f"the data loader must yield N×C×H×W inputs, got {tuple(images.shape)}")
    mean, std = _channel_stats(images.shape[1], mean, std, "loader")
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    raw = ((images * s + m) * 255.0).round().clamp(0, 255).to(torch.uint8)
    labels = torch.cat(ys) if ys and sum(len(y) for y in ys) == len(images) else None
    return Dataset(name="loader", split="user", images=images.contiguous(), labels=labels, raw=raw, mean=mean, std=std)


def load_source(source: Any, *, split: str = "test", input_size=None, mean=None, std=None) -> Dataset:
    """One :class:`Dataset` from any accepted kind of source (see the module docstring)."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, Path)):
        text = str(source)
        if isinstance(source, str) and text in list_datasets():
            return load_dataset(text, split)
        path = Path(source).expanduser()
        if path.is_dir():
            return _load_folder(path, input_size, mean, std)
        if path.suffix in (".pt", ".pth", ".npz") and path.is_file():
            return _load_file(path, mean, std)
        raise DatasetError(
            f"--dataset {text!r} is neither a registered dataset ({', '.join(list_datasets())}), an image folder "
            "(<dir>/<class>/<image>), nor an existing .pt/.npz file"
        )
    if hasattr(source, "__iter__"):
        return _load_batches(source, mean, std)
    raise DatasetError(f"cannot use a {type(source).__name__} as a dataset")


def _cut(data: Dataset, n: int, start: int, stop: int) -> Dataset:
    sl = slice(start, stop)
    return replace(
        data,
        images=data.images[sl],
        raw=data.raw[sl],
        labels=None if data.labels is None else data.labels[sl],
        targets=None if data.targets is None else data.targets[sl],
    )


def resolve_dataset(
    dataset: Any,
    calibration: Any = None,
    *,
    calibration_samples: int = 64,
    input_size=None,
    mean=None,
    std=None,
) -> Sources:
    """Evaluation and calibration data from ``dataset`` (and ``calibration``), never overlapping."""
    kw = dict(input_size=input_size, mean=mean, std=std)
    test = load_source(dataset, split="test", **kw)
    if calibration is not None:
        calib = load_source(calibration, split="calibration", **kw)
        return Sources(test, calib, "calibration from the separate calibration data given")
    if test.name in list_datasets() and test.split != "calibration":
        calib = load_dataset(test.name, "calibration")
        return Sources(test, calib, f"calibration from the {test.name!r} calibration split")
    n = len(test)
    c = min(calibration_samples, max(1, n // 5))
    if n < 2:
        raise DatasetError(f"{n} image(s): too few to set calibration images apart; pass calibration data")
    note = f"calibration on the last {c} of {n} images, evaluation on the first {n - c} (pass calibration data to keep all)"
    return Sources(_cut(test, n, 0, n - c), _cut(test, n, n - c, n), note)
