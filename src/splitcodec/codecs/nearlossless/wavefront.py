"""The context-coded modes (dense, sparse): one pass over the wavefronts, shared by encoder and decoder.

Each step codes, for all its elements at once: significance (sparse mode), then whether the level is
its flat prediction (when hit flags are on), then the remaining levels (:mod:`.values`).  The encoder
runs the pass on the known levels collecting the symbols, picks the value distribution that costs the
fewest bits and ANS-codes everything in reverse; the decoder runs the same pass pulling symbols.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from splitcodec.codecs.nearlossless.context import ContextState
from splitcodec.codecs.nearlossless.estimate import fit_params
from splitcodec.codecs.nearlossless.events import code_events
from splitcodec.codecs.nearlossless.layout import Layout
from splitcodec.codecs.nearlossless.params import CAUCHY, GAUSS, LAPLACE, ModelParams
from splitcodec.codecs.nearlossless.values import code_values, value_model
from splitcodec.entropy import check_empty
from splitcodec.errors import PayloadError

__all__ = ["decode_modeled", "encode_modeled", "run_wavefronts"]


def _code_step(coder: Any, st: ContextState, sl: slice, levels: np.ndarray | None) -> None:
    """Code the elements of one wavefront step (``levels`` given: encode, else decode) and commit them."""
    sm = st.step_model(sl)
    zero = st.zero
    n = len(sm.index)
    v = levels[sm.index] if levels is not None else None
    # 1. significance (sparse mode)
    if st.sparse:
        nonzero = code_events(coder, st.nonzero_counts, sm.nonzero_ctx, None if v is None else v != zero)
    else:
        nonzero = np.ones(n, dtype=bool)
    # 2. does the value equal the flat prediction?
    hit = np.zeros(n, dtype=bool)
    cand = nonzero & (sm.flat != zero) & (sm.flat >= 0) if st.sparse else nonzero.copy()
    if not st.params.hits:
        cand[:] = False
    if cand.any():
        hit[cand] = code_events(coder, st.hit_counts, sm.hit_ctx[cand], None if v is None else v[cand] == sm.flat[cand])
    # 3. the other levels
    out = np.where(nonzero, sm.flat, zero).astype(np.int64)
    rest = nonzero & ~hit
    if rest.any():
        out[rest] = code_values(coder, st, sm, rest, cand[rest], None if v is None else v[rest])
    st.commit(sm, out, nonzero, rest)


def run_wavefronts(lay: Layout, p: ModelParams, top: int, zero: int, levels: np.ndarray | None, coder: Any) -> np.ndarray:
    """One pass over the wavefronts.  Encoding (``levels`` given): appends every symbol with its model to
    ``coder`` (a list, ANS-coded in reverse afterwards).  Decoding: pulls the symbols from ``coder``.
    Returns the levels (flat)."""
    st = ContextState(lay, p, top, zero)
    for t in range(lay.steps):
        _code_step(coder, st, slice(int(lay.bounds[t]), int(lay.bounds[t + 1])), levels)
        st.update_cross(t)
    return st.levels


def _cheapest_family(pushed: list) -> int:
    """The value distribution whose ANS coding of the pushed value chunks is shortest.

    The pass does not depend on the distribution, so the value chunks are costed under each family
    (their information content adds up, ANS or not).
    """
    import constriction

    values = [(size, symbols, params) for size, symbols, params in pushed if isinstance(size, int)]
    cost = {}
    for family in (GAUSS, LAPLACE, CAUCHY):
        probe = constriction.stream.stack.AnsCoder()
        for size, symbols, params in values:
            model, args = value_model(size, family, *params)
            probe.encode_reverse(symbols, model, *args)
        cost[family] = probe.num_bits()
    return min(cost, key=cost.__getitem__)


def encode_modeled(q: np.ndarray, lay: Layout, top: int, zero: int, mode: int, slope256: int) -> bytes:
    """Payload of the flat levels ``q`` in a context-coded ``mode``: parameters, then ANS words."""
    import constriction

    p = fit_params(q, lay, top, zero, mode, slope256)
    pushed: list = []
    run_wavefronts(lay, p, top, zero, q, pushed)
    family = _cheapest_family(pushed)
    coder = constriction.stream.stack.AnsCoder()
    for model, symbols, params in reversed(pushed):
        if isinstance(model, int):  # a value chunk: alphabet size, (mean, spread)
            model, params = value_model(model, family, *params)
        coder.encode_reverse(symbols, model, *params)
    return replace(p, family=family).pack() + coder.get_compressed().astype("<u4").tobytes()


def decode_modeled(data: bytes, lay: Layout, top: int, zero: int) -> np.ndarray:
    """Inverse of :func:`encode_modeled`: the flat levels."""
    import constriction

    p, pos = ModelParams.unpack(data, top, lay)
    words = data[pos:]
    if len(words) % 4:
        raise PayloadError(f"nearlossless: ANS payload of {len(words)} bytes is not a multiple of 4")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    levels = run_wavefronts(lay, p, top, zero, None, coder)
    check_empty(coder, "nearlossless")
    return levels
