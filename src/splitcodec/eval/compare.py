"""BD-rate / BD-accuracy of codec curves against an anchor codec, from result records.

For every (model, split) and every codec in the *test* records, the curve (rate, accuracy) is compared with
the *anchor* codec's curve at the same model and split.  Rate is bytes per sample (headers included):
within one split it is proportional to bits per element, and it stays meaningful against an input-picture
anchor (split ``"input"``), which is used for every split of its model when it has no curve at the split
itself.  Accuracy is the task's score (top-1 or detection mAP@0.5, %) where both curves have it, else
top-1, else the output cosine similarity (``metric`` picks one explicitly).

>>> from splitcodec.eval.records import Record
>>> def rec(codec, rate, top1):
...     return Record("m", "s", codec, {}, 10, rate, rate, top1, 90.0, 90.0 - top1, None, 0.0, 0.0)
>>> anchor = [rec("hevc", r, a) for r, a in ((100, 80), (200, 85), (400, 88))]
>>> test = [rec("mine", r / 2, a) for r, a in ((100, 80), (200, 85), (400, 88))]
>>> [round(c.bd_rate, 3) for c in compare_records(anchor, test, anchor="hevc")]
[-50.0]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from splitcodec.errors import CurveError, DisjointCurvesError, ShortCurveError, SplitcodecError
from splitcodec.eval.bd import bd_accuracy, bd_rate
from splitcodec.eval.records import Record

__all__ = ["Comparison", "compare_records", "METRICS"]

METRICS = ("auto", "score", "top1", "agreement", "cosine")


@dataclass(frozen=True)
class Comparison:
    """BD figures of one codec curve against the anchor curve (None where they cannot be computed)."""

    model: str
    split: str
    codec: str
    anchor: str
    anchor_split: str
    metric: str
    points: int
    anchor_points: int
    bd_rate: float | None  # % bytes vs the anchor at equal accuracy (negative: fewer bytes)
    bd_accuracy: float | None  # metric difference vs the anchor at equal rate (score/top-1 in points)
    note: str = ""


def _curves(records: Iterable[Record]) -> dict[tuple[str, str, str], list[Record]]:
    out: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for r in records:
        out[(r.model, r.split, r.codec)].append(r)
    return out


def _values(recs: Sequence[Record], metric: str) -> list[float | None]:
    return [getattr(r, metric) for r in recs]


def _pick_metric(a: Sequence[Record], b: Sequence[Record], metric: str) -> str:
    """``auto``: the task's score (else top-1) where both curves have at least 2 rising points, else the output cosine."""
    from splitcodec.eval.bd import envelope

    if metric != "auto":
        return metric
    for candidate in ("score", "top1", "cosine"):
        values = (_values(a, candidate), _values(b, candidate))
        if any(v is None for v in values[0] + values[1]):
            continue
        rising = all(len(envelope([r.bytes_per_sample for r in recs], v)[0]) >= 2 for recs, v in zip((a, b), values))
        if rising or candidate == "cosine":
            return candidate
    return "agreement"


def _short(exc: CurveError) -> str:
    """The note a comparison carries when a BD figure cannot be computed."""
    if isinstance(exc, ShortCurveError):
        return "a curve has < 2 points of rising accuracy"
    if isinstance(exc, DisjointCurvesError):
        return "curves do not overlap"
    return str(exc)


def _coverage_note(ra, aa, rb, ab) -> list[str]:
    """A note when the common accuracy range (the only one BD figures use: PCHIP never extrapolates) is
    under half of either curve's own range."""
    from splitcodec.eval.bd import envelope

    (_, ea), (_, eb) = envelope(ra, aa), envelope(rb, ab)
    lo, hi = max(ea[0], eb[0]), min(ea[-1], eb[-1])
    share = min((hi - lo) / (e[-1] - e[0]) for e in (ea, eb))
    pct = f"{100 * share:.0f}" if share >= 0.01 else "< 1"
    return [f"over {pct} % of a curve's accuracy range only"] if share < 0.5 else []


def compare_records(
    anchor_records: Iterable[Record],
    test_records: Iterable[Record] | None = None,
    *,
    anchor: str = "hevc",
    codecs: Sequence[str] | None = None,
    metric: str = "auto",
) -> list[Comparison]:
    """Compare every codec curve of ``test_records`` (default: ``anchor_records``) with ``anchor``'s."""
    if metric not in METRICS:
        raise SplitcodecError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    anchor_records = list(anchor_records)
    same = test_records is None
    anchors = _curves(r for r in anchor_records if r.codec == anchor)
    if not anchors:
        present = sorted({r.codec for r in anchor_records})
        raise SplitcodecError(f"no records of anchor codec {anchor!r} (codecs present: {', '.join(present) or 'none'})")
    tests = _curves(anchor_records if same else test_records)  # type: ignore[arg-type]
    out: list[Comparison] = []
    for (model, split, codec), recs in sorted(tests.items()):
        if (codecs and codec not in codecs) or (same and codec == anchor):
            continue
        anchor_split = split
        base = anchors.get((model, split, anchor))
        if base is None:
            base = anchors.get((model, "input", anchor))
            anchor_split = "input"
        if base is None:
            continue
        m = _pick_metric(base, recs, metric)
        row = dict(model=model, split=split, codec=codec, anchor=anchor, anchor_split=anchor_split, metric=m,
                   points=len(recs), anchor_points=len(base))
        ra, aa = [r.bytes_per_sample for r in base], _values(base, m)
        rb, ab = [r.bytes_per_sample for r in recs], _values(recs, m)
        if any(v is None for v in aa + ab):
            out.append(Comparison(**row, bd_rate=None, bd_accuracy=None, note=f"records lack {m}"))
            continue
        notes: list[str] = []
        rate = acc = None
        try:
            rate = bd_rate(ra, aa, rb, ab)
            notes += _coverage_note(ra, aa, rb, ab)
        except CurveError as exc:
            notes.append(_short(exc))
        try:
            acc = bd_accuracy(ra, aa, rb, ab)
        except CurveError as exc:
            notes.append(_short(exc))
        out.append(Comparison(**row, bd_rate=rate, bd_accuracy=acc, note="; ".join(dict.fromkeys(notes))))
    return out
