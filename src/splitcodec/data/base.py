"""The :class:`Dataset` container and the dataset registry.

A dataset is held in memory as two tensors of the same N×C×H×W shape: ``raw`` (uint8 pixels, what an
input-image codec compresses) and ``images`` (float32, normalised exactly as the model expects,
``images == normalize(raw)``), plus per-image ``labels`` (classification) or ``targets`` (detection:
one ``{"boxes": float32 K×4 xyxy, "labels": int64 K}`` dict per image).  Loaders are registered by name with :func:`register_dataset`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from splitcodec.errors import DatasetError

__all__ = ["Dataset", "register_dataset", "load_dataset", "list_datasets"]


@dataclass(frozen=True)
class Dataset:
    """One split of a dataset, held in memory.

    Attributes:
        name: dataset name, e.g. ``"fashion-mnist"``.
        split: split name, e.g. ``"test"``.
        images: float32 N×C×H×W, ``normalize(raw)``.
        labels: int64 N class indices, or ``None`` where the data has no labels.
        raw: uint8 N×C×H×W un-normalised pixels.
        mean, std: per-channel normalisation constants in [0, 1] pixel units.
        targets: for detection data, one ``{"boxes": float32 K×4, "labels": int64 K}`` dict per image
            (boxes ``[x1, y1, x2, y2)`` in pixels), else ``None``.

    The tensors may be shared with other ``Dataset`` objects (``subset`` slices, it does not copy):
    treat them as read-only.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor | None
    raw: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    targets: list[dict[str, torch.Tensor]] | None = None

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r} split {self.split!r}"
        if self.raw.dtype != torch.uint8 or self.raw.ndim != 4:
            raise DatasetError(f"{where}: raw must be uint8 N×C×H×W, got {self.raw.dtype} {tuple(self.raw.shape)}")
        if self.images.dtype != torch.float32 or self.images.shape != self.raw.shape:
            raise DatasetError(
                f"{where}: images must be float32 of the raw shape {tuple(self.raw.shape)}, "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels is not None and (self.labels.dtype != torch.int64 or self.labels.shape != (len(self.raw),)):
            raise DatasetError(f"{where}: labels must be int64 of shape ({len(self.raw)},)")
        if self.targets is not None and len(self.targets) != len(self.raw):
            raise DatasetError(f"{where}: {len(self.targets)} targets for {len(self.raw)} images")
        channels = self.raw.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise DatasetError(f"{where}: mean/std need {channels} values, got {len(self.mean)}/{len(self.std)}")

    def __len__(self) -> int:
        return len(self.raw)

    def subset(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all of them if ``n`` is None or at least ``len(self)``)."""
        if n is None:
            return self
        if n < 0:
            raise DatasetError(f"subset size must be >= 0 or None, got {n}")
        return replace(
            self,
            images=self.images[:n],
            labels=None if self.labels is None else self.labels[:n],
            raw=self.raw[:n],
            targets=None if self.targets is None else self.targets[:n],
        )

    def normalize(self, raw_uint8: torch.Tensor) -> torch.Tensor:
        """Map uint8 N×C×H×W pixels to the float32 model input, exactly as ``images`` was made."""
        return normalize(raw_uint8, self.mean, self.std)


def normalize(raw_uint8: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(raw / 255 - mean) / std`` per channel, float32; ``raw_uint8`` is uint8 N×C×H×W."""
    if raw_uint8.dtype != torch.uint8 or raw_uint8.ndim != 4 or raw_uint8.shape[1] != len(mean):
        raise DatasetError(
            f"normalize expects uint8 N×{len(mean)}×H×W, got {raw_uint8.dtype} {tuple(raw_uint8.shape)}"
        )
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (raw_uint8.to(torch.float32) / 255.0 - m) / s


_LOADERS: dict[str, tuple[tuple[str, ...], Callable[[str], Dataset]]] = {}


def register_dataset(name: str, splits: tuple[str, ...]) -> Callable[[Callable[[str], Dataset]], Callable[[str], Dataset]]:
    """Register ``loader(split) -> Dataset`` under ``name``; raises ValueError on a duplicate name."""

    def decorator(loader: Callable[[str], Dataset]) -> Callable[[str], Dataset]:
        if name in _LOADERS:
            raise ValueError(f"dataset {name!r} is already registered")
        _LOADERS[name] = (tuple(splits), loader)
        return loader

    return decorator


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_LOADERS)


def load_dataset(name: str, split: str) -> Dataset:
    """Load split ``split`` of dataset ``name``; raises DatasetError on an unknown name/split or missing files."""
    if name not in _LOADERS:
        close = difflib.get_close_matches(name, list(_LOADERS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}{hint}")
    splits, loader = _LOADERS[name]
    if split not in splits:
        raise DatasetError(f"dataset {name!r} has no split {split!r}; its splits are: {', '.join(splits)}")
    return loader(split)
