"""Binary events (significance, hit, side) under adaptive per-context counts, coded with ANS."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["EventCounts", "code_events"]

_PRIOR_WEIGHT = 2.0  # pseudo-counts of the initial binary probabilities
_FLAG_CHUNK, _MAX_FLAG_CHUNKS = 32, 32  # binary events of a step are coded in chunks of >= 32, at most 32


@dataclass
class EventCounts:
    """Adaptive counts of one kind of binary event, one pair per context."""

    ones: np.ndarray  # (pseudo-)count of events that were 1, per context
    zeros: np.ndarray  # (pseudo-)count of events that were 0, per context

    @classmethod
    def from_prior(cls, prior: np.ndarray) -> "EventCounts":
        """Counts worth :data:`_PRIOR_WEIGHT` events with P(1) = ``prior`` in each context."""
        return cls(prior * _PRIOR_WEIGHT, (1.0 - prior) * _PRIOR_WEIGHT)

    def p_one(self, ctx: np.ndarray) -> np.ndarray:
        """P(event = 1) in each of the contexts ``ctx``."""
        return self.ones[ctx] / (self.ones[ctx] + self.zeros[ctx])

    def learn(self, ctx: np.ndarray, bit: np.ndarray) -> None:
        """Count the events ``bit`` seen in contexts ``ctx``."""
        if len(ctx) * 8 < len(self.ones):  # a few events: scatter them
            np.add.at(self.ones, ctx, bit.astype(np.float64))
            np.add.at(self.zeros, ctx, (~bit).astype(np.float64))
        else:
            self.ones += np.bincount(ctx, weights=bit.astype(np.float64), minlength=len(self.ones))
            self.zeros += np.bincount(ctx, weights=(~bit).astype(np.float64), minlength=len(self.zeros))


def code_events(coder: Any, counts: EventCounts, ctx: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """Code binary events of one step under their contexts' adaptive counts, in chunks with the counts
    updated in between (a wide step would otherwise code hundreds of events on a stale estimate).

    Encoding (``truth`` given) appends to ``coder`` (a list); decoding (``truth`` None) pulls from it.
    """
    n = len(ctx)
    out = np.empty(n, dtype=bool)
    size = max(_FLAG_CHUNK, -(-n // _MAX_FLAG_CHUNKS))
    for a in range(0, n, size):
        cx = ctx[a : a + size]
        bits = _code_bits(coder, counts.p_one(cx), None if truth is None else truth[a : a + size])
        counts.learn(cx, bits)
        out[a : a + size] = bits
    return out


@lru_cache(maxsize=1)
def _bernoulli():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def _code_bits(coder: Any, p1: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    if len(p1) == 0:
        return np.zeros(0, dtype=bool)
    if truth is not None:
        coder.append((_bernoulli(), truth.astype(np.int32), (p1,)))
        return truth
    return np.asarray(coder.decode(_bernoulli(), p1), dtype=bool)
