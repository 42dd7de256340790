"""Plane layout and coding order: which element is coded in which wavefront step, and its neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Layout", "Neighbours", "layout_of", "neighbours", "planes", "reference_channels"]


def planes(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(P, G, H, W): P planes of H×W in groups of G channels (one group per sample).

    The last two dims are the spatial plane and the third-last the channels; lower-rank tensors are
    planes of 1×1, all in one group.
    """
    if len(shape) >= 3:
        return int(np.prod(shape[:-2], dtype=np.int64)), int(shape[-3]), int(shape[-2]), int(shape[-1])
    n = int(np.prod(shape, dtype=np.int64))
    return n, max(n, 1), 1, 1


def reference_channels(G: int, H: int, W: int) -> int:
    """How many leading channels of each sample are coded first and serve as cross-channel context."""
    if H * W < 4 or G < 4:
        return G
    return (G + 3) // 4


@dataclass(frozen=True)
class Layout:
    """Coding order: anti-diagonal wavefronts; the non-reference channels run one diagonal behind the
    reference channels, so each of their positions sees every reference channel's value there."""

    P: int  # planes (samples × channels)
    G: int  # channels per sample
    H: int  # plane height
    W: int  # plane width
    order: np.ndarray  # flat indices in coding order
    bounds: np.ndarray  # step t covers order[bounds[t]:bounds[t + 1]]
    plane: np.ndarray  # plane of each element, in order
    cross_pos: np.ndarray  # sample * H * W + h * W + w of each element, in order (index into the cross maps)
    follower: np.ndarray  # element of a non-reference channel, in order
    has_left: np.ndarray  # element has a left neighbour (w > 0), in order
    has_above: np.ndarray  # element has an upper neighbour (h > 0), in order
    # per step: positions (into the cross maps) whose reference values the step completes, and the flat
    # indices of those reference values, shape (positions, R)
    done_pos: tuple[np.ndarray, ...]
    done_refs: tuple[np.ndarray, ...]

    @property
    def steps(self) -> int:
        return len(self.bounds) - 1

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.P * self.H * self.W


def _completed_references(
    P: int, G: int, H: int, W: int, R: int, steps: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Per step: the cross-map positions whose reference channels it completes, and their flat indices."""
    hw = H * W
    samples = P // G
    ref_planes = (np.arange(samples)[:, None] * G + np.arange(R)[None, :]).ravel()  # (samples·R)
    done_pos, done_refs = [], []
    diag = (np.arange(hw) // W) + (np.arange(hw) % W)
    for t in range(steps):
        cells = np.flatnonzero(diag == t) if R < G else np.zeros(0, dtype=np.int64)
        pos = (np.arange(samples)[:, None] * hw + cells[None, :]).ravel()
        refs = (ref_planes.reshape(samples, R)[:, None, :] * hw + cells[None, :, None]).reshape(-1, R)
        done_pos.append(pos)
        done_refs.append(refs)
    return tuple(done_pos), tuple(done_refs)


@lru_cache(maxsize=32)
def layout_of(P: int, G: int, H: int, W: int) -> Layout:
    """The coding order of P planes of H×W in groups of G channels (cached: tensors repeat shapes)."""
    R = reference_channels(G, H, W)
    hw = H * W
    plane = np.arange(P).repeat(hw)
    h = np.tile(np.arange(H).repeat(W), P)
    w = np.tile(np.arange(W), P * H)
    follower = (plane % G) >= R
    key = h + w + follower  # followers one diagonal behind
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    done_pos, done_refs = _completed_references(P, G, H, W, R, len(counts))
    o_hw = order % hw
    return Layout(
        P=P,
        G=G,
        H=H,
        W=W,
        order=order,
        bounds=bounds,
        plane=order // hw,
        cross_pos=(order // hw // G) * hw + o_hw,
        follower=follower[order],
        has_left=(o_hw % W) > 0,
        has_above=(o_hw // W) > 0,
        done_pos=done_pos,
        done_refs=done_refs,
    )


@dataclass(frozen=True)
class Neighbours:
    """The elements of one wavefront step and their causal neighbours in the same plane.

    Neighbour indices are flat; where a neighbour does not exist the element's own index stands in
    (its value is then masked out by the matching ``has_*`` flag).
    """

    index: np.ndarray  # flat index of each element
    plane: np.ndarray  # its plane
    cross_pos: np.ndarray  # its position in the cross maps
    follower: np.ndarray  # it belongs to a non-reference channel
    has_left: np.ndarray
    has_above: np.ndarray
    has_above_left: np.ndarray
    has_left2: np.ndarray  # two to the left exists
    has_above2: np.ndarray  # two above exists
    left: np.ndarray
    above: np.ndarray
    above_left: np.ndarray
    left2: np.ndarray
    above2: np.ndarray

    @property
    def available(self) -> np.ndarray:
        """How many of left and above exist (0, 1 or 2)."""
        return self.has_left.astype(np.int64) + self.has_above


def neighbours(lay: Layout, sl: slice) -> Neighbours:
    """The elements of the steps ``sl`` of the coding order, with their neighbours."""
    W = lay.W
    idx, hl, ha = lay.order[sl], lay.has_left[sl], lay.has_above[sl]
    hal = hl & ha
    hw = idx % (lay.H * W)
    hll = hl & (hw % W >= 2)
    haa = ha & (hw // W >= 2)
    return Neighbours(
        index=idx,
        plane=lay.plane[sl],
        cross_pos=lay.cross_pos[sl],
        follower=lay.follower[sl],
        has_left=hl,
        has_above=ha,
        has_above_left=hal,
        has_left2=hll,
        has_above2=haa,
        left=np.where(hl, idx - 1, idx),
        above=np.where(ha, idx - W, idx),
        above_left=np.where(hal, idx - W - 1, idx),
        left2=np.where(hll, idx - 2, idx),
        above2=np.where(haa, idx - 2 * W, idx),
    )
