"""One self-contained HTML report of result files, and the CompressAI JSON export.

:func:`build_report` reads every result file (``{"meta", "records"}`` JSON) in a folder and writes one
HTML page with everything inlined (pictures as base64 PNG): per (model, split) a leaderboard — each
codec's bits per element at 0.5 / 1 / 2 % top-1 loss read off its monotone hull with the 95 % interval
(:func:`splitcodec.eval.stats.curve_rate_at_loss`), its BD-rate against the x265 anchor (``hevc``) and
its median encode / decode time — then every rate–accuracy plot (one colour per codec in every figure,
:func:`splitcodec.eval.plot.codec_colour`) and the reconstruction / detection pictures found beside the
results.  :func:`to_compressai` gives CompressAI's result layout ``{"name", "results": {"bpp": [...]}}``.
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from splitcodec.errors import SplitcodecError
from splitcodec.eval.records import Record, load_records

__all__ = ["ResultFile", "LOSS_LEVELS", "collect_results", "leaderboard", "build_report", "to_compressai",
           "write_compressai"]

LOSS_LEVELS = (0.5, 1.0, 2.0)
PICTURE_WORDS = ("reconstruction", "detection", "examples")
ANCHOR = "hevc"


@dataclass(frozen=True)
class ResultFile:
    path: Path
    records: list[Record]
    meta: dict[str, Any]


def collect_results(folder: str | Path) -> list[ResultFile]:
    """Every ``*.json`` result file in ``folder`` that holds records (other JSON files are skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SplitcodecError(f"{folder} is not a folder of result files")
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("records"), list) or not doc["records"]:
            continue
        try:
            records = load_records(path)
        except SplitcodecError:
            continue
        out.append(ResultFile(path, records, doc.get("meta") or {}))
    return out


def _cell_rate(r) -> str:
    if r.rate is None:
        return "–"
    text = f"{r.rate:.3g}"
    if r.low is not None or r.high is not None:
        lo = f"{r.low:.3g}" if r.low is not None else "?"
        hi = f"{r.high:.3g}" if r.high is not None else "&gt;max"
        text += f" <small>[{lo}, {hi}]</small>"
    return text + (" <small>≤</small>" if r.note.startswith("already") else "")


def leaderboard(records: Sequence[Record], anchor_records: Sequence[Record] = ()) -> list[dict[str, Any]]:
    """One row per codec of one (model, split): bpe at each of :data:`LOSS_LEVELS`, BD-rate, speed."""
    from splitcodec.eval.compare import compare_records
    from splitcodec.eval.stats import curve_rate_at_loss

    by_codec: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_codec[r.codec].append(r)
    bd: dict[str, Any] = {}
    pool = list(records) + [a for a in anchor_records if a.codec == ANCHOR]
    if any(r.codec == ANCHOR for r in pool):
        try:
            bd = {c.codec: c for c in compare_records(pool, list(records), anchor=ANCHOR)}
        except SplitcodecError:
            bd = {}
    rows = []
    for codec, recs in sorted(by_codec.items()):
        c = bd.get(codec)
        rows.append({
            "codec": codec,
            "points": len(recs),
            "at": [curve_rate_at_loss(recs, x) for x in LOSS_LEVELS],
            "bd_rate": None if c is None else c.bd_rate,
            "bd_note": "" if c is None else (c.note or ("" if c.metric == "top1" else f"on {c.metric}")),
            "encode_ms": statistics.median(r.encode_ms for r in recs),
            "decode_ms": statistics.median(r.decode_ms for r in recs),
            "samples": max(r.samples for r in recs),
        })
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>bpe at {x:g} % loss</th>" for x in LOSS_LEVELS)
    out = [f"<table class='lb'><tr><th>codec</th><th>points</th>{head}<th>BD-rate vs x265 %</th>"
           "<th>enc ms</th><th>dec ms</th></tr>"]
    for r in rows:
        bd = "anchor" if r["codec"] == ANCHOR else "–" if r["bd_rate"] is None else f"{r['bd_rate']:+.1f}"
        note = f" <small>({html.escape(r['bd_note'])})</small>" if r["bd_note"] and r["codec"] != ANCHOR else ""
        cells = "".join(f"<td>{_cell_rate(a)}</td>" for a in r["at"])
        out.append(f"<tr><td>{html.escape(r['codec'])}</td><td>{r['points']}</td>{cells}<td>{bd}{note}</td>"
                   f"<td>{r['encode_ms']:.2f}</td><td>{r['decode_ms']:.2f}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _png_data(data: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def _plot_png(records: Iterable[Record]) -> bytes:
    import tempfile

    from splitcodec.eval.plot import plot_rate_accuracy

    with tempfile.TemporaryDirectory() as tmp:
        return plot_rate_accuracy(records, Path(tmp) / "p.png").read_bytes()


def _section(rf: ResultFile) -> list[str]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in rf.records:
        groups[(r.model, r.split)].append(r)
    parts = [f"<h2 id='{html.escape(rf.path.stem)}'>{html.escape(rf.path.name)}</h2>"]
    meta = ", ".join(f"{k} {v}" for k, v in rf.meta.items() if k in ("command", "samples", "date", "threads"))
    if meta:
        parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    for (model, split), recs in sorted(groups.items()):
        anchors = groups.get((model, "input"), []) if split != "input" else []
        n = max(r.samples for r in recs)
        parts.append(f"<h3>{html.escape(model)} @ {html.escape(split)} <small>({n} test images)</small></h3>")
        parts.append(_table(leaderboard(recs, anchors)))
    parts.append(_png_data(_plot_png(rf.records), f"rate–accuracy plot of {rf.path.name}"))
    return parts


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}
table.lb{border-collapse:collapse;margin:.5em 0 1.5em}table.lb td,table.lb th{border:1px solid #bbb;padding:2px 8px;
text-align:right}table.lb td:first-child{text-align:left}small{color:#666}img{max-width:100%;display:block;
margin:1em 0}.meta{color:#555}"""


def build_report(folder: str | Path, out: str | Path, title: str = "splitcodec results") -> Path:
    """Write one self-contained HTML page of every result file and picture in ``folder``; returns its path."""
    folder = Path(folder)
    results = collect_results(folder)
    if not results:
        raise SplitcodecError(f"no result files (.json with records) in {folder}")
    body = [f"<h1>{html.escape(title)}</h1>",
            "<p>Rate: bits per feature element, every byte of every stream counted. bpe at X % loss: read off each "
            "codec's monotone rate–loss hull by interpolation; in brackets the same read off the hulls of the "
            "paired 95 % loss interval's ends (absent for result files written before intervals existed). "
            "BD-rate: bytes per sample against the x265 (hevc) curve at equal top-1 (or cosine where top-1 is "
            "flat).</p>",
            "<ul>" + "".join(f"<li><a href='#{html.escape(r.path.stem)}'>{html.escape(r.path.name)}</a></li>"
                             for r in results) + "</ul>"]
    for rf in results:
        body += _section(rf)
    pictures = [p for p in sorted(folder.glob("*.png")) if any(w in p.stem for w in PICTURE_WORDS)]
    if pictures:
        body.append("<h2 id='pictures'>Reconstructions and detections</h2>")
        for p in pictures:
            body += [f"<h3>{html.escape(p.name)}</h3>", _png_data(p.read_bytes(), p.stem)]
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def to_compressai(records: Iterable[Record]) -> list[dict[str, Any]]:
    """One CompressAI-style result per (model, split, codec) curve, points sorted by rate."""
    curves: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for r in records:
        curves[(r.model, r.split, r.codec)].append(r)
    out = []
    for (model, split, codec), recs in sorted(curves.items()):
        recs = sorted(recs, key=lambda r: r.bpe)
        keys = ("bpp", "bpe", "bytes_per_sample", "top1", "top1_loss", "loss_low", "loss_high", "cosine",
                "encode_ms", "decode_ms")
        results = {k: [getattr(r, k) for r in recs] for k in keys}
        out.append({"name": f"{codec} ({model} @ {split})",
                    "description": f"splitcodec {codec} on {model} cut at {split}; bpp = bits per input pixel",
                    "results": results})
    return out


def write_compressai(records: Iterable[Record], folder: str | Path) -> list[Path]:
    """Write :func:`to_compressai`'s curves, one JSON file each, into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in to_compressai(records):
        stem = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in doc["name"]).strip("_")
        path = folder / f"{stem}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        paths.append(path)
    return paths
