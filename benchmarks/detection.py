"""Detection benchmark: ref-yolo on fashion-detect, rate vs COCO mAP at three split points and on the input.

Splits: ``stage1.down`` (32×24×24, shallow and large: where x265 has been strongest), ``stage2.down``
(64×12×12, the default) and ``neck.1`` (64×12×12 after the neck, deepest before the head); all leaky-ReLU
0.1.  At each: ``lightweight`` (λ sweep) and ``uniform`` on the first ``--samples`` test canvases, and
again, with ``nearlossless``, x265 ``hevc`` and ``av1``, on the first ``--anchor-samples`` canvases, where
the BD figures against x265 are computed on equal canvases.  The input canvas coded with
``image-jpeg``/``image-webp``/``image-hevc`` (whole detector on the decoded canvas) is on the anchor subset
too.  ``--lams`` reruns lightweight alone at a few λ on more canvases (all 5,000) to pin down the lowest
rate under 1 point of mAP@0.5 loss.  Each record's ``samples`` says how many canvases it scored; the
summary (meta ``summary`` of detection.json) gives figures per sample count.

The committed run (2 cores shared with other jobs: the full 5k for every codec did not fit):
    PYTHONPATH=src python benchmarks/detection.py --part stage1.down     # and stage2.down, neck.1, input
    PYTHONPATH=src python benchmarks/detection.py --part stage1.down --samples 5000 --lams 0.03 0.05 0.07
    PYTHONPATH=src python benchmarks/detection.py --part stage2.down --samples 5000 --lams 0.03 0.1 0.2 0.25
    PYTHONPATH=src python benchmarks/detection.py --part neck.1 --samples 5000 --lams 0.1 0.15 0.2 0.25
    PYTHONPATH=src python benchmarks/detection.py --merge    # detection.json/.csv/.png from detection_parts/
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from splitcodec.codecs import default_settings, get_codec
from splitcodec.eval import evaluate_codec, load_records, prepare, run_meta, save_records
from splitcodec.eval.bd import bd_accuracy, bd_rate
from splitcodec.eval.records import Record
from splitcodec.errors import CurveError

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = RESULTS / "detection_parts"
MODEL = "ref-yolo"
SPLITS = ("stage1.down", "stage2.down", "neck.1")
LAMS = (0.003, 0.01, 0.03, 0.1, 0.15, 0.2, 0.3, 0.5)
FULL = [("lightweight", {"lam": lam}) for lam in LAMS] + [("uniform", p) for p in default_settings("uniform")]
#: x265's whole default sweep; AV1 and nearlossless thinned (AV1 lossless and cq 50, nearlossless 10 bits) to save time.
ANCHORS = ([("hevc", p) for p in default_settings("hevc")]
           + [("av1", p) for p in default_settings("av1") if p["cq"] in (20, 32, 44, 56)]
           + [("nearlossless", p) for p in default_settings("nearlossless") if p["bits"] != 10])
IMAGE = [(c, p) for c in ("image-jpeg", "image-webp", "image-hevc") for p in default_settings(c)]

console = Console(width=160)


def head_subset(ctx: Any, n: int) -> Any:
    """The evaluation context restricted to its first ``n`` test samples (features and outputs sliced)."""
    return dataclasses.replace(ctx, dataset=ctx.dataset.subset(n), features=ctx.features[:n], ref_out=ctx.ref_out[:n])


def run(ctx: Any, settings: list[tuple[str, dict[str, Any]]], records: list[Record], out: Path) -> None:
    """Evaluate each setting, print it, and save all records so far (a killed run keeps what it did)."""
    for codec_id, params in settings:
        t0 = time.perf_counter()
        rec = evaluate_codec(ctx, get_codec(codec_id, **params))
        records.append(rec)
        setting = ",".join(f"{k}={v}" for k, v in params.items())
        console.print(f"  {rec.split:<11} {codec_id}({setting}){'':<{max(0, 30 - len(codec_id) - len(setting))}} n={rec.samples:<5} bpe {rec.bpe:7.3f}  B {rec.bytes_per_sample:8.1f}  "
                      f"mAP50 {rec.score:6.2f} (loss {rec.score_loss:+.2f})  mAP {rec.extra['map']:6.2f}  "
                      f"({time.perf_counter() - t0:.0f} s)", highlight=False)
        save_records(records, out, run_meta(command="benchmarks/detection.py", argv=sys.argv[1:]))


def part(name: str, samples: int, anchor_samples: int, lams: list[float] | None = None) -> None:
    """One split (or ``input``): its records to ``detection_parts/<name>.json``.  With ``lams``, only
    lightweight at those λ on ``samples`` canvases (to ``<name>-<samples>.json``)."""
    out = PARTS / (f"{name}-{samples}.json" if lams else f"{name}.json")
    records: list[Record] = []
    if lams:
        run(prepare(MODEL, name, samples=samples), [("lightweight", {"lam": lam}) for lam in lams], records, out)
        return
    ctx = prepare(MODEL, "stage2.down" if name == "input" else name, samples=anchor_samples if name == "input" else samples)
    sub = head_subset(ctx, anchor_samples)
    console.print(f"[bold]{MODEL} @ {name}[/]: features {tuple(ctx.features.shape[1:])}, {len(ctx.features)} canvases")
    if name == "input":
        run(sub, IMAGE, records, out)
        return
    run(ctx, FULL, records, out)
    run(sub, FULL + ANCHORS, records, out)


def lowest_bpe(recs: list[Record], max_loss: float = 1.0) -> dict[str, Any] | None:
    """The lightweight record of lowest bpe whose mAP@0.5 loss is under ``max_loss`` points."""
    ok = [r for r in recs if r.score_loss is not None and r.score_loss < max_loss]
    if not ok:
        return None
    r = min(ok, key=lambda r: r.bpe)
    return {"bpe": round(r.bpe, 4), "bytes_per_sample": round(r.bytes_per_sample, 1), "lam": r.params.get("lam"),
            "map_50": round(r.score, 3), "map_50_loss": round(r.score_loss, 3), "map": round(r.extra["map"], 3),
            "samples": r.samples}


def bd_vs(anchor: list[Record], test: list[Record]) -> dict[str, float | None]:
    """BD-rate (% bytes at equal mAP@0.5) and BD-mAP@0.5 (points at equal rate) of ``test`` vs ``anchor``."""
    ra, aa = [r.bytes_per_sample for r in anchor], [r.score for r in anchor]
    rb, ab = [r.bytes_per_sample for r in test], [r.score for r in test]
    out: dict[str, float | None] = {}
    for key, fn in (("bd_rate", bd_rate), ("bd_map_50", bd_accuracy)):
        try:
            out[key] = round(fn(ra, aa, rb, ab), 3)
        except CurveError:
            out[key] = None
    return out


def summary(records: list[Record]) -> dict[str, Any]:
    """Uncut mAP, and per split the lowest lightweight bpe at < 1 point loss and BD figures vs x265."""
    full = max(r.samples for r in records)
    ref = next(r for r in records if r.samples == full)
    out: dict[str, Any] = {"uncut": {"samples": full, "map_50": round(ref.score_ref, 3), "map": round(ref.extra["map_ref"], 3)},
                           "splits": {}}
    for split in SPLITS:
        at = [r for r in records if r.split == split]
        if not at:
            continue
        sub_n = min(r.samples for r in at)
        curve = lambda codec, n: [r for r in at if r.codec == codec and r.samples == n]  # noqa: E731
        hevc = curve("hevc", sub_n)
        counts = sorted({r.samples for r in at if r.codec == "lightweight"})
        entry: dict[str, Any] = {
            "elements": at[0].elements, "sample_counts": sorted({r.samples for r in at}), "anchor_samples": sub_n,
            "lightweight_lowest_bpe_under_1pt": {str(n): lowest_bpe(curve("lightweight", n)) for n in counts},
            "uncut_on_anchor_subset": {"map_50": round(hevc[0].score_ref, 3) if hevc else None},
            "vs_hevc": {c: bd_vs(hevc, curve(c, sub_n)) for c in ("lightweight", "uniform", "nearlossless", "av1")} if hevc else {},
        }
        out["splits"][split] = entry
    image = [r for r in records if r.split == "input"]
    if image:
        hevc = {s: [r for r in records if r.split == s and r.codec == "hevc" and r.samples == image[0].samples] for s in SPLITS}
        out["input_vs_feature_hevc"] = {c: {s: bd_vs(h, [r for r in image if r.codec == c]) for s, h in hevc.items() if h}
                                       for c in ("image-jpeg", "image-webp", "image-hevc")}
    return out


def plot(records: list[Record], path: Path) -> Path:
    """Per split: bytes/sample (log) vs mAP@0.5 (top row) and mAP@[.5:.95] (bottom), the input anchors in every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from splitcodec.eval.plot import log_rate_axis

    fig, axes = plt.subplots(2, len(SPLITS), figsize=(6.0 * len(SPLITS), 8.6), squeeze=False)
    image = [r for r in records if r.split == "input"]
    codecs = ["lightweight", "uniform", "nearlossless", "hevc", "av1", "image-jpeg", "image-webp", "image-hevc"]
    for col, split in enumerate(SPLITS):
        at = [r for r in records if r.split == split] + image
        full = max((r.samples for r in at), default=0)
        for row, (key, name) in enumerate((("score", "mAP@0.5 (%)"), ("map", "mAP@[.5:.95] (%)"))):
            ax = axes[row][col]
            for i, codec in enumerate(codecs):
                for n in sorted({r.samples for r in at if r.codec == codec}):
                    rs = sorted((r for r in at if r.codec == codec and r.samples == n), key=lambda r: r.bytes_per_sample)
                    ys = [r.score if key == "score" else r.extra["map"] for r in rs]
                    style = "-" if codec in ("lightweight", "uniform") else ("--" if codec.startswith("image") else ":")
                    if codec in ("lightweight", "uniform") and n == min(r.samples for r in at if r.codec == codec) \
                            and n < max(r.samples for r in at if r.codec == codec):
                        continue  # their anchor-subset curves are for the BD figures; the plot shows more canvases
                    ax.plot([r.bytes_per_sample for r in rs], ys, style, marker="osD^v<>p"[i], ms=3, lw=1.2,
                            color=plt.cm.tab10(i), label=f"{codec} (n={n})")
            refs = [r for r in at if r.samples == full]
            if refs:
                ref = refs[0].score_ref if key == "score" else refs[0].extra["map_ref"]
                ax.axhline(ref, color="k", ls="--", lw=0.8, label="uncut")
                if key == "score":
                    ax.axhline(ref - 1.0, color="gray", ls=":", lw=0.8, label="−1 point")
            log_rate_axis(ax)
            ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))
            ax.set_xlabel("bytes per canvas (headers included)")
            ax.set_ylabel(name)
            ax.set_title(f"{MODEL} @ {split} ({at[0].elements} elements)" if at else split, fontsize=10)
            ax.grid(True, which="both", alpha=0.25)
            ax.legend(fontsize=6, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def merge(out: Path) -> None:
    records = [r for path in sorted(PARTS.glob("*.json")) for r in load_records(path)]
    result = summary(records)
    meta = run_meta(command="benchmarks/detection.py --merge", summary=result,
                    parts={p.stem: json.loads(p.read_text())["meta"] for p in sorted(PARTS.glob("*.json"))})
    save_records(records, out, meta)
    png = plot(records, out.with_suffix(".png"))
    console.print_json(data=result)
    console.print(f"wrote {out}, {out.with_suffix('.csv')}, {png}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("input", *SPLITS), help="run one split (or the input anchors)")
    ap.add_argument("--merge", action="store_true", help="merge the parts into --out with the summary and plot")
    ap.add_argument("--samples", type=int, default=1000, help="test canvases for lightweight and uniform")
    ap.add_argument("--anchor-samples", type=int, default=300, help="canvases for the anchors (and the BD figures)")
    ap.add_argument("--lams", type=float, nargs="*", help="with --part: only lightweight at these λ on --samples canvases")
    ap.add_argument("--out", type=Path, default=RESULTS / "detection.json")
    args = ap.parse_args(argv)
    if args.part:
        part(args.part, args.samples, args.anchor_samples, args.lams)
    if args.merge:
        merge(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
