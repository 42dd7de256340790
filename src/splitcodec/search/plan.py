"""Search split × codec × setting for the lowest predicted latency within an accuracy-loss budget.

* :func:`exhaustive` scores every candidate on a network.
* :func:`prune` keeps the candidates no other one dominates in (edge ms, bytes, server ms, loss): the
  latency model (and the energy model) never decreases in any of the four, so a dominated candidate is
  never strictly better on *any* network, and the pruned set is computed once for every network.
  :func:`search` scores only those; its choice has the exhaustive optimum's latency.
* :func:`pareto_front` — the scored candidates not dominated in (latency, bytes, loss).
* :class:`Plan` — the choice as JSON (model, split, codec, params, predicted ms, …), what the runtime
  takes: ``Plan.load(path).target()`` gives (model, split, codec spec).

>>> from splitcodec.search.latency import Candidate, Network, SPLIT
>>> a = Candidate(SPLIT, "s", "uniform", {"bits": 4}, 1000.0, 0.2, 1.0, 0.5, 0.5, 1.0)
>>> b = Candidate(SPLIT, "s", "uniform", {"bits": 8}, 2000.0, 0.0, 1.0, 0.6, 0.6, 1.0)
>>> r = search([a, b], Network(1.0, 20.0), max_loss=1.0)
>>> r.choice.candidate.params, round(r.choice.total_ms, 1)
({'bits': 4}, 31.0)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from splitcodec.errors import SplitcodecError
from splitcodec.search.latency import CLOUD_ONLY, EDGE_ONLY, SPLIT, Candidate, Network, Scored, Transport, predict
from splitcodec.search.profile import DeviceProfile, write_json

__all__ = ["PlanError", "Plan", "SearchResult", "exhaustive", "prune", "search", "pareto_front", "choose", "PLAN_FORMAT"]

PLAN_FORMAT = "splitcodec-plan/1"


class PlanError(SplitcodecError, ValueError):
    """A plan file is missing, malformed, or names nothing runnable."""


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _nondominated(items: Sequence[Any], key: Any) -> list[Any]:
    """Items whose key tuple no other item dominates (ties all kept); O(n log n + n·front)."""
    ordered = sorted(items, key=key)
    front: list[Any] = []
    for item in ordered:
        k = key(item)
        if not any(_dominates(key(f), k) for f in front):
            front.append(item)
    return front


def exhaustive(cands: Sequence[Candidate], network: Network, transport: Transport = Transport(), *,
               queue_ms: float = 0.0, edge: DeviceProfile | None = None) -> list[Scored]:
    """Every candidate scored on ``network``, fastest first."""
    scored = [Scored(c, predict(c, network, transport, queue_ms=queue_ms, edge=edge)) for c in cands]
    return sorted(scored, key=lambda s: s.total_ms)


def prune(cands: Sequence[Candidate]) -> list[Candidate]:
    """The candidates not dominated in (edge ms, bytes, server ms, loss) — network-independent.

    Edge-only sends nothing and pays no network terms, so it is kept apart (never pruned, prunes nothing).
    """
    edge = [c for c in cands if c.kind == EDGE_ONLY]
    sent = [c for c in cands if c.kind != EDGE_ONLY]
    return edge + _nondominated(sent, lambda c: (c.edge_ms, c.bytes_per_sample, c.server_ms, c.top1_loss))


def choose(scored: Sequence[Scored], max_loss: float) -> Scored:
    """The fastest scored candidate whose loss is within ``max_loss`` (ties: fewer bytes, less loss)."""
    ok = [s for s in scored if s.candidate.top1_loss <= max_loss]
    if not ok:
        raise SplitcodecError(f"no candidate loses at most {max_loss} pp of top-1 accuracy")
    return min(ok, key=lambda s: (s.total_ms, s.candidate.bytes_per_sample, s.candidate.top1_loss))


def pareto_front(scored: Sequence[Scored]) -> list[Scored]:
    """Scored candidates not dominated in (latency, bytes, loss), fastest first."""
    return _nondominated(scored, lambda s: (s.total_ms, s.candidate.bytes_per_sample, s.candidate.top1_loss))


@dataclass
class SearchResult:
    """The choice on one network, the baselines it must beat, and the Pareto front."""

    network: Network
    max_loss: float
    choice: Scored
    front: list[Scored]
    evaluated: int  # candidates scored
    edge_only: Scored | None
    cloud_only: Scored | None  # the fastest picture codec setting within the budget
    best_uncompressed: Scored | None  # the fastest split sending raw float32 features
    per_split: dict[str, Scored] = field(default_factory=dict)  # fastest within budget at each split


def _baselines(scored: Sequence[Scored], max_loss: float) -> dict[str, Scored | None]:
    def best(pred: Any) -> Scored | None:
        sel = [s for s in scored if pred(s.candidate) and s.candidate.top1_loss <= max_loss]
        return min(sel, key=lambda s: s.total_ms) if sel else None

    return {
        "edge_only": best(lambda c: c.kind == EDGE_ONLY),
        "cloud_only": best(lambda c: c.kind == CLOUD_ONLY),
        "best_uncompressed": best(lambda c: c.kind == SPLIT and c.codec == "raw" and c.params.get("dtype") == "float32"),
    }


def search(
    cands: Sequence[Candidate],
    network: Network,
    transport: Transport = Transport(),
    *,
    max_loss: float = 1.0,
    method: str = "pruned",
    queue_ms: float = 0.0,
    edge: DeviceProfile | None = None,
    pruned: Sequence[Candidate] | None = None,
) -> SearchResult:
    """The choice under ``max_loss`` on ``network``: ``method="pruned"`` (default) scores only the
    non-dominated candidates (pass ``pruned`` to reuse :func:`prune` across networks); ``"exhaustive"``
    scores all.  The baselines and the best candidate per split (for reports and plots) are taken from
    every candidate either way; ``evaluated`` counts what the choice was searched over."""
    if method not in ("pruned", "exhaustive"):
        raise SplitcodecError(f"search method must be 'pruned' or 'exhaustive', got {method!r}")
    kw = dict(queue_ms=queue_ms, edge=edge)
    pool = list(cands) if method == "exhaustive" else list(pruned if pruned is not None else prune(cands))
    scored = exhaustive(pool, network, transport, **kw)
    choice = choose(scored, max_loss)
    every = scored if method == "exhaustive" else exhaustive(cands, network, transport, **kw)
    per_split: dict[str, Scored] = {}
    for s in every:
        key = s.candidate.split or EDGE_ONLY
        if s.candidate.top1_loss <= max_loss and (key not in per_split or s.total_ms < per_split[key].total_ms):
            per_split[key] = s
    base = _baselines(every, max_loss)
    return SearchResult(network, max_loss, choice, pareto_front(scored), len(pool), per_split=per_split, **base)


@dataclass
class Plan:
    """A chosen way to run a model, as the runtime takes it (``splitcodec serve/edge --plan plan.json``).

    ``kind`` is ``"split"`` (run the head to ``split`` on the edge, send features coded by ``codec`` with
    ``params``), ``"cloud-only"`` (``split == "input"``: send the picture coded by an ``image-*`` codec) or
    ``"edge-only"`` (no codec, no server).
    """

    model: str
    kind: str
    split: str | None
    codec: str | None
    params: dict[str, Any]
    predicted_ms: float
    top1_loss: float
    bytes_per_sample: float
    network: dict[str, Any]
    max_loss: float
    edge: str = "local"
    breakdown: dict[str, Any] = field(default_factory=dict)
    format: str = PLAN_FORMAT

    @classmethod
    def from_result(cls, model: str, result: SearchResult, edge: str = "local") -> "Plan":
        c, b = result.choice.candidate, result.choice.breakdown
        return cls(model, c.kind, c.split, c.codec, dict(c.params), b.total_ms, c.top1_loss, c.bytes_per_sample,
                   asdict(result.network), result.max_loss, edge, b.to_json())

    @property
    def codec_spec(self) -> str | None:
        """The codec as a spec string (``"uniform:bits=4"``), every parameter written out; None for edge-only."""
        if self.codec is None:
            return None
        parts = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in self.params.items()]
        return ":".join([self.codec, *parts])

    def target(self) -> tuple[str, str | None, str | None]:
        """``(model, split, codec spec)`` for the runtime; split None = edge-only, ``"input"`` = cloud-only."""
        return self.model, self.split, self.codec_spec

    def build_codec(self) -> Any:
        """The plan's codec, unfitted (:func:`splitcodec.codecs.registry.get_codec`); None for edge-only."""
        from splitcodec.codecs.registry import get_codec

        return None if self.codec is None else get_codec(self.codec, **self.params)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any, source: str = "plan") -> "Plan":
        if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
            raise PlanError(f"{source}: not a splitcodec plan (expected \"format\": {PLAN_FORMAT!r})")
        try:
            plan = cls(**doc)
        except TypeError as exc:
            raise PlanError(f"{source}: malformed plan: {exc}") from exc
        if plan.kind not in (SPLIT, EDGE_ONLY, CLOUD_ONLY):
            raise PlanError(f"{source}: unknown plan kind {plan.kind!r} (split, edge-only, cloud-only)")
        if plan.kind != EDGE_ONLY and (not plan.split or not plan.codec or not isinstance(plan.params, dict)):
            raise PlanError(f"{source}: a {plan.kind} plan needs a split, a codec and params")
        return plan

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as exc:
            raise PlanError(f"cannot read plan {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise PlanError(f"plan {path} is not JSON: {exc}") from exc
        return cls.from_json(doc, str(path))
