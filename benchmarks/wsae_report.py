"""Merge the cached parts of ``benchmarks/wsae.py`` into ``benchmarks/results/wsae.json`` (+ csv, png)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from splitcodec.eval import Record, load_records, run_meta, save_records
from splitcodec.eval.plot import plot_rate_accuracy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def parameter_counts(model: str) -> dict[str, float]:
    """Shared model (core + every split's adapters and density) vs one such autoencoder per split."""
    from splitcodec.codecs.wsae import load_trained
    from splitcodec.nn.wsae import WSAE

    wsae = load_trained(model)[0]
    shared = wsae.core_parameters() + sum(wsae.split_parameters(i) for i in range(len(wsae.channels)))
    independent = 0
    for c in wsae.channels:
        one = WSAE([c], width=wsae.width, latent=wsae.latent, mixtures=wsae.density.mixtures)
        independent += one.core_parameters() + one.split_parameters(0)
    return {"shared": shared, "independent": independent, "ratio": round(independent / shared, 3),
            "splits": len(wsae.channels), "core": wsae.core_parameters()}


def training_meta(model: str) -> dict:
    doc = torch.load(REPO / "src" / "splitcodec" / "models" / "weights" / f"wsae-{model}.pt", weights_only=True)
    meta = dict(doc["meta"])
    meta.pop("history", None)
    ind = []
    for p in sorted((RESULTS / "wsae_baselines").glob(f"{model}-*.pt")):
        m = torch.load(p, weights_only=True)["meta"]
        ind.append({"split": p.stem[len(model) + 1 :], "steps": m["steps"], "train_seconds": m["train_seconds"]})
    return {"shared": meta, "independent": ind}


def _lowest_under(recs: list[Record], limit: float) -> Record | None:
    ok = [r for r in recs if r.top1_loss is not None and r.top1_loss < limit]
    return min(ok, key=lambda r: r.bpe) if ok else None


def summary(records: list[Record]) -> list[dict]:
    """Per (model, split): best wsae bit-width, and the lowest bpe under 1 % loss of each codec."""
    panels: dict[tuple[str, str], dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        panels[(r.model, r.split)][r.codec].append(r)
    out = []
    for (model, split), by in sorted(panels.items()):
        if "wsae" not in by:
            continue
        best = min(by["wsae"], key=lambda r: (r.top1_loss, r.bpe))
        row = {"model": model, "split": split, "best_bits": best.params["bits"], "best_bpe": round(best.bpe, 4),
               "best_loss": round(best.top1_loss, 3), "best_loss_target_met": best.top1_loss <= 0.5}
        for codec, recs in sorted(by.items()):
            low = _lowest_under(recs, 1.0)
            row[f"{codec}_samples"] = recs[0].samples
            row[f"{codec}_best_loss"] = round(min(r.top1_loss for r in recs if r.top1_loss is not None), 3)
            row[f"{codec}_bpe_under_1pct"] = None if low is None else round(low.bpe, 4)
            row[f"{codec}_setting_under_1pct"] = None if low is None else low.params
        w, lw = row.get("wsae_bpe_under_1pct"), row.get("lightweight_bpe_under_1pct")
        row["wsae_over_lightweight"] = None if not (w and lw) else round(w / lw, 3)
        row["half_of_lightweight_met"] = None if not (w and lw) else w <= 0.5 * lw
        out.append(row)
    return out


def report(cache: Path, models: list[str], samples: int) -> Path:
    records: list[Record] = []
    for path in sorted(Path(cache).glob("*.json")):
        records += [r for r in load_records(path) if r.model in models]
    splits = {(r.model, r.split) for r in records}
    light = RESULTS / "lightweight.json"
    if light.exists():
        for r in load_records(light):
            if r.codec == "hevc" and (r.model, r.split) in splits:
                r.extra = {**r.extra, "source": "lightweight.json (first 1000 test images)"}
                records.append(r)
    meta = run_meta(
        samples=samples,
        params={m: parameter_counts(m) for m in models},
        training={m: training_meta(m) for m in models},
        summary=summary(records),
        note="samples per record in 'samples' (and per codec in the summary): wsae on the full 10k test set; "
        "what could not be run on 10k in the time (a machine shared with other jobs) ran on the first 2000 or 1000 "
        "test images; hevc (x265) records come from lightweight.json (first 1000 images)",
    )
    path, _ = save_records(records, RESULTS / "wsae.json", meta)
    title = ("wsae (shared, 10k images) vs wsae-independent, lightweight, uniform, x265; "
             "panels mix sample counts (see each record's samples), so read losses from meta.summary")
    plot_rate_accuracy(records, RESULTS / "wsae.png", title=title)
    for row in meta["summary"]:
        print(row)
    return path
