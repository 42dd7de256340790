"""Datasets held in memory as :class:`Dataset` objects: ``load_dataset("fashion-mnist", "test")``.

``fashion-mnist`` (train / calibration / test), ``fashion-detect`` (the same splits: detection canvases
of Fashion-MNIST items) and ``photos`` (calibration / test); see the modules
:mod:`splitcodec.data.fashion_mnist`, :mod:`splitcodec.data.fashion_detect` and
:mod:`splitcodec.data.photos` for what each split holds.
"""

from __future__ import annotations

from splitcodec.data import fashion_detect as _fashion_detect  # noqa: F401  (registers the loader)
from splitcodec.data import fashion_mnist as _fashion_mnist  # noqa: F401  (registers the loader)
from splitcodec.data import photos as _photos  # noqa: F401  (registers the loader)
from splitcodec.data.base import Dataset, list_datasets, load_dataset, normalize, register_dataset

__all__ = ["Dataset", "load_dataset", "list_datasets", "normalize", "register_dataset"]
