"""Integer probability tables of the cell indices: per tensor, per channel group, and the channel levels.

Tables are integer counts summing to ``2**PRECISION`` (every count >= 1), used directly as ANS models.
With ``channel_tables`` the channels are clustered by their index histograms into at most
``TABLE_GROUPS`` tables; with ``channel_levels`` every (channel, cell) gets its calibration centroid as
reconstruction value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from splitcodec.entropy import quantize_pmf
from splitcodec.errors import CodecError

__all__ = [
    "PRECISION",
    "TABLE_GROUPS",
    "TABLE_PRIOR",
    "MIN_CENTROID_COUNT",
    "probability_table",
    "check_table",
    "index_histogram",
    "group_channels",
    "channel_centroids",
    "ans_model",
]

#: Probability tables are integer counts summing to 2**PRECISION.
PRECISION = 16
#: With channel_tables, channels are clustered into at most this many tables (one ANS call per table).
TABLE_GROUPS = 16
#: Pseudo-observations of the tensor's index histogram mixed into every channel or context table.
TABLE_PRIOR = 32.0
#: A (channel, cell) centroid needs this many calibration values, else the cell's shared level is kept.
MIN_CENTROID_COUNT = 20


def probability_table(weights: np.ndarray) -> np.ndarray:
    """Integer counts (>= 1, summing to 2**PRECISION) proportional to ``weights``."""
    return quantize_pmf(np.asarray(weights, dtype=np.float64), PRECISION)


def check_table(counts: np.ndarray, n: int, what: str) -> None:
    """Raise unless ``counts`` is a valid table for ``n`` levels."""
    if counts.shape != (n,) or counts.min() < 1 or counts.max() > 1 << PRECISION or int(counts.sum()) != 1 << PRECISION:
        raise CodecError(f"lightweight: {what} needs {n} counts >= 1 summing to 2**{PRECISION}")


def ans_model(counts: np.ndarray) -> Any:
    """The constriction categorical model of a table."""
    import constriction

    probs = (counts.astype(np.float64) / float(1 << PRECISION)).astype(np.float32)  # exact: counts < 2**24
    return constriction.stream.model.Categorical(probs, perfect=False)


def index_histogram(idx: np.ndarray, n: int) -> np.ndarray:
    """Histogram of the indices >= 0 (-1 marks indices coded elsewhere)."""
    flat = idx.ravel()
    return np.bincount(flat[flat >= 0], minlength=n).astype(np.float64)


def group_channels(hists: np.ndarray, groups: int, iterations: int = 20) -> np.ndarray:
    """Cluster channels (rows of index histograms) into ``groups`` tables of small total code length.

    Start from equal-count groups ordered by how often the channel sits at its most common index, then
    alternate: pool each group's histogram, move each channel to the table that codes it in fewest bits.
    Returned labels are renumbered 0..G-1 in order of first appearance.
    """
    c, n = hists.shape
    p = (hists + 0.5) / (hists + 0.5).sum(1, keepdims=True)
    order = np.argsort(p.max(1), kind="stable")
    labels = np.empty(c, dtype=np.int64)
    labels[order] = np.arange(c) * groups // c
    for _ in range(iterations):
        pooled = np.stack([hists[labels == g].sum(0) for g in range(groups)]) + 0.5
        cost = -hists @ np.log2(pooled / pooled.sum(1, keepdims=True)).T  # bits of channel c under table g
        new = np.argmin(cost, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    _, first = np.unique(labels, return_index=True)
    remap = np.empty(groups, dtype=np.int64)
    remap[labels[np.sort(first)]] = np.arange(first.size)
    return remap[labels]


def channel_centroids(arr: np.ndarray, idx: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(C, N) table: the mean calibration value of each (channel, cell), or the cell's level when rare."""
    c_count, n = arr.shape[1], levels.size
    key = (np.arange(c_count).reshape((1, -1) + (1,) * (arr.ndim - 2)) * n + idx).ravel()
    counts = np.bincount(key, minlength=c_count * n).reshape(c_count, n)
    sums = np.bincount(key, weights=arr.astype(np.float64).ravel(), minlength=c_count * n).reshape(c_count, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums / counts
    table = np.where(counts >= MIN_CENTROID_COUNT, centroids, levels[None, :].astype(np.float64))
    return table.astype(np.float32)
