"""The checkerboard context model of 4-D index maps.

Anchors ((h + w) even) are coded first; every other index is coded with one of ``CONTEXTS`` tables chosen
by how many of its 4 neighbours (all anchors) are not at the rest index.  The decoder knows the anchors
before the others, so it computes the same contexts with vectorised array operations.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONTEXTS", "anchors", "neighbour_counts", "by_context"]

#: Context classes of the non-anchor indices: 0..4 active anchor neighbours.
CONTEXTS = 5


def anchors(shape: tuple[int, ...]) -> np.ndarray:
    """The checkerboard of a (N, C, H, W) tensor's planes: True where (h + w) is even."""
    h, w = shape[-2:]
    return (np.add.outer(np.arange(h), np.arange(w)) % 2) == 0


def neighbour_counts(idx: np.ndarray, anchor: np.ndarray, rest: int) -> np.ndarray:
    """For every position, how many of its 4 neighbours are anchors whose index is not ``rest`` (0..4)."""
    active = ((idx != rest) & anchor).view(np.uint8)
    out = np.zeros(idx.shape, dtype=np.uint8)
    out[..., 1:, :] += active[..., :-1, :]
    out[..., :-1, :] += active[..., 1:, :]
    out[..., :, 1:] += active[..., :, :-1]
    out[..., :, :-1] += active[..., :, 1:]
    return out


def by_context(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the flattened non-anchor indices) sorted by context, and each context's size."""
    flat = counts.ravel()
    return np.argsort(flat, kind="stable"), np.bincount(flat, minlength=CONTEXTS)
