"""``fashion-detect``: an offline object-detection set built from Fashion-MNIST items on 96×96 canvases.

Each canvas holds 1–6 Fashion-MNIST items, each scaled to a random 20–48 px square, dimmed by a random
factor in [0.6, 1], placed so that no two items' boxes overlap by more than 25 % of the smaller box, and
composited with ``max`` over a cluttered background: a random grey level, Gaussian noise and 0–3 small
unlabelled fragments cut from other items.  A box is tight around the item's own nonzero pixels after
scaling (scaled values below 16 are set to zero first), ``[x1, y1, x2, y2)`` in pixels, so
``x2 - x1`` is the box width; labels are the 10 Fashion-MNIST classes.

Splits (canvas counts) and the Fashion-MNIST split their items come from:
    ``train``        16,000 canvases from ``fashion-mnist`` train (59k items);
    ``calibration``  1,000 canvases from ``fashion-mnist`` calibration (1k items the detector never saw);
    ``test``         5,000 canvases from ``fashion-mnist`` test.

Canvas ``i`` of a split is drawn from ``numpy.random.default_rng([SEED, split code, i])``, so any prefix
is the same whatever the count.  Splits are generated on first use and cached as ``.npz`` under
``$SPLITCODEC_CACHE`` (default ``~/.cache/splitcodec``) in ``fashion-detect/v{GENERATOR_VERSION}-{seed}``,
written atomically.  ``Dataset.targets[i]`` is ``{"boxes": float32 K×4, "labels": int64 K}``, the
format of torchvision detection models and torchmetrics' ``MeanAveragePrecision``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from splitcodec.data.base import Dataset, load_dataset, normalize, register_dataset

__all__ = [
    "CANVAS",
    "CLASS_NAMES",
    "GENERATOR_VERSION",
    "SEED",
    "SIZES",
    "SOURCE_SPLIT",
    "MEAN",
    "STD",
    "Canvas",
    "cache_dir",
    "make_canvas",
    "generate",
    "load_split",
]

CANVAS = 96
#: Fashion-MNIST's classes, by label.
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
GENERATOR_VERSION = 1
SEED = 20260
SIZES = {"train": 16000, "calibration": 1000, "test": 5000}
#: Fashion-MNIST split whose items fill each canvas split.
SOURCE_SPLIT = {"train": "train", "calibration": "calibration", "test": "test"}
_SPLIT_CODE = {"train": 1, "calibration": 2, "test": 3}
#: Mean and std of the pixels of the first 500 train canvases in [0, 1] units (measured once).
MEAN: tuple[float, ...] = (0.1525,)
STD: tuple[float, ...] = (0.1972,)
MIN_ITEM, MAX_ITEM = 20, 48
MAX_ITEMS = 6
MAX_OVERLAP = 0.25  # intersection / smaller box area
ITEM_FLOOR = 16  # scaled item values below this are zeroed, so "nonzero" means visible


@dataclass(frozen=True)
class Canvas:
    """One generated canvas: ``image`` uint8 H×W, ``boxes`` float32 K×4 xyxy, ``labels`` int64 K.

    ``masks`` (bool K×H×W, each item's own nonzero pixels) is filled only when asked for.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None


def _scaled_item(item: np.ndarray, size: int, gain: float) -> np.ndarray:
    """A 28×28 uint8 item resized (bilinear) to ``size``² and dimmed by ``gain``, faint pixels zeroed."""
    scaled = np.asarray(Image.fromarray(item).resize((size, size), Image.BILINEAR), dtype=np.float32)
    out = np.rint(scaled * gain).astype(np.uint8)
    out[out < ITEM_FLOOR] = 0
    return out


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area over the smaller box's area of two xyxy boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller)


def _background(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """Grey level, Gaussian noise and 0–3 unlabelled fragments (6–12 px crops of random items)."""
    level = rng.uniform(0, 30)
    sigma = rng.uniform(3, 12)
    canvas = np.clip(level + sigma * rng.standard_normal((CANVAS, CANVAS)), 0, 255).astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):
        item = pool[int(rng.integers(len(pool)))]
        c = int(rng.integers(6, 13))
        y0, x0 = (int(v) for v in rng.integers(4, 28 - c - 3, size=2))
        size = int(rng.integers(c, 2 * c + 1))
        frag = np.asarray(Image.fromarray(item[y0 : y0 + c, x0 : x0 + c]).resize((size, size), Image.BILINEAR))
        frag = frag.astype(np.float32) * rng.uniform(0.3, 0.7)
        y, x = (int(v) for v in rng.integers(0, CANVAS - size + 1, size=2))
        np.maximum(canvas[y : y + size, x : x + size], frag, out=canvas[y : y + size, x : x + size])
    return canvas


def make_canvas(
    rng: np.random.Generator, pool: np.ndarray, pool_labels: np.ndarray, with_masks: bool = False
) -> Canvas:
    """Draw one canvas from ``rng`` with items taken from ``pool`` (uint8 N×28×28) and ``pool_labels``."""
    canvas = _background(rng, pool)
    boxes: list[np.ndarray] = []
    labels: list[int] = []
    masks: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, MAX_ITEMS + 1))):
        index = int(rng.integers(len(pool)))
        item = _scaled_item(pool[index], int(rng.integers(MIN_ITEM, MAX_ITEM + 1)), rng.uniform(0.6, 1.0))
        rows, cols = np.flatnonzero(item.any(axis=1)), np.flatnonzero(item.any(axis=0))
        if len(rows) == 0:
            continue
        for _attempt in range(20):
            y, x = (int(v) for v in rng.integers(0, CANVAS - len(item) + 1, size=2))
            box = np.array([x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1], dtype=np.float32)
            if all(_overlap(box, b) <= MAX_OVERLAP for b in boxes):
                break
        else:
            continue
        s = len(item)
        np.maximum(canvas[y : y + s, x : x + s], item, out=canvas[y : y + s, x : x + s])
        boxes.append(box)
        labels.append(int(pool_labels[index]))
        if with_masks:
            mask = np.zeros((CANVAS, CANVAS), dtype=bool)
            mask[y : y + s, x : x + s] = item > 0
            masks.append(mask)
    return Canvas(
        image=np.rint(canvas).astype(np.uint8),
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.array(labels, dtype=np.int64),
        masks=np.array(masks, dtype=bool).reshape(-1, CANVAS, CANVAS) if with_masks else None,
    )


def _pool(split: str) -> tuple[np.ndarray, np.ndarray]:
    source = load_dataset("fashion-mnist", SOURCE_SPLIT[split])
    assert source.labels is not None
    return source.raw[:, 0].numpy(), source.labels.numpy()


def generate(split: str, n: int, seed: int = SEED, start: int = 0) -> tuple[np.ndarray, list[Canvas]]:
    """Canvases ``start .. start+n-1`` of ``split``: (uint8 n×96×96 images, the :class:`Canvas` list)."""
    pool, pool_labels = _pool(split)
    canvases = [
        make_canvas(np.random.default_rng([seed, _SPLIT_CODE[split], i]), pool, pool_labels)
        for i in range(start, start + n)
    ]
    images = np.stack([c.image for c in canvases]) if canvases else np.zeros((0, CANVAS, CANVAS), np.uint8)
    return images, canvases


def cache_dir(seed: int = SEED) -> Path:
    """Where the generated splits of this generator version and seed are cached."""
    root = Path(os.environ.get("SPLITCODEC_CACHE") or Path.home() / ".cache" / "splitcodec")
    return root / "fashion-detect" / f"v{GENERATOR_VERSION}-{seed}"


def _save_atomic(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is plain data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_split(split: str, n: int | None = None, seed: int = SEED) -> tuple[np.ndarray, list[dict[str, torch.Tensor]]]:
    """(uint8 n×96×96 canvases, targets) of ``split``: its first ``n`` canvases (default ``SIZES[split]``).

    Read from the cache when a file of at least ``n`` canvases is there, else generated and cached.
    """
    n = SIZES[split] if n is None else n
    path = cache_dir(seed) / f"{split}-{max(n, SIZES[split])}.npz"
    if path.is_file():
        with np.load(path) as f:
            images, boxes, labels, counts = f["images"], f["boxes"], f["labels"], f["counts"]
    else:
        images, canvases = generate(split, max(n, SIZES[split]), seed)
        counts = np.array([len(c.labels) for c in canvases], dtype=np.int64)
        boxes = np.concatenate([c.boxes for c in canvases])
        labels = np.concatenate([c.labels for c in canvases])
        _save_atomic(path, images=images, boxes=boxes, labels=labels, counts=counts)
    ends = np.cumsum(counts)
    targets = [
        {"boxes": torch.from_numpy(boxes[e - k : e].copy()), "labels": torch.from_numpy(labels[e - k : e].copy())}
        for e, k in zip(ends[:n], counts[:n])
    ]
    return images[:n], targets


@register_dataset("fashion-detect", ("train", "calibration", "test"))
def load(split: str) -> Dataset:
    """Load one split of fashion-detect (1×96×96 canvases, per-canvas boxes and labels in ``targets``)."""
    images, targets = load_split(split)
    raw = torch.from_numpy(np.ascontiguousarray(images)[:, None])
    return Dataset(
        name="fashion-detect",
        split=split,
        images=normalize(raw, MEAN, STD),
        labels=None,
        raw=raw,
        mean=MEAN,
        std=STD,
        targets=targets,
    )
