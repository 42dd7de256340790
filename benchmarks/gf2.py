"""Benchmark of the ``gf2`` codec (issue 13): fixed-point baseline vs learned GF(2) codes, bits and memory.

For every trained entry (``models/weights/gf2-<model>.pt``: split × reduction) and its split:

``fixed``   the ``fixed-point`` baseline at 8/6/4/3/2 bits (bit-packed: the paper's feature memory);
``gf2``     each trained reduction (1×1, 3×3 stride 2), bit-packed and ANS-coded;
``anchors`` ``lightweight`` (its default sweep) and ``uniform`` on the same features, for "gf2 below
            lightweight at equal loss" (``benchmarks/wsae.py``'s anchor part, reused).

Every codec goes through ``splitcodec.eval.evaluate_codec``: one stream per test sample (real bytes,
container included, config by reference), top-1 and its 95 % paired interval on the full test split
(10k Fashion-MNIST images; the 80 test photo crops for ``mobilenetv2-imagenet``, scored by embedding
cosine).  Each record's ``extra`` holds the memory view: bytes per sample of the fixed-point feature
map at the entry's bit-width vs the packed GF(2) code.  Parts are cached in ``--cache``.

    nice python benchmarks/gf2.py [--models ref-resnet ref-darknet mobilenetv2-imagenet]

Writes ``benchmarks/results/gf2.json`` (+ ``.csv``, ``gf2.png``) with ``meta.summary`` per split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from wsae import run_anchors  # noqa: E402  (benchmarks/wsae.py: lightweight + uniform sweeps)
from wsae_report import _lowest_under  # noqa: E402

from splitcodec.codecs import get_codec  # noqa: E402
from splitcodec.codecs.gf2 import trained_entries  # noqa: E402
from splitcodec.eval import Record, evaluate_codec, load_records, prepare, run_meta, save_records  # noqa: E402
from splitcodec.eval.plot import plot_rate_accuracy  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIXED_BITS = (8, 6, 4, 3, 2)
COSINE_BAR = 0.99


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_part(part: str, ctx, entries: list[str]) -> list[Record]:
    out: list[Record] = []
    if part == "anchors":
        return run_anchors(ctx)
    if part == "fixed":
        for bits in FIXED_BITS:
            rec = evaluate_codec(ctx, get_codec("fixed-point", bits=bits))
            rec.extra.update(variant="fixed-point (bit-packed)", feature_bytes=ctx.features[0].numel() * bits / 8)
            out.append(rec)
    else:
        for entry in entries:
            split, reduction = entry.split("/")
            for coding in ("packed", "ans"):
                codec = get_codec("gf2", model=ctx.model_name, split=split, reduction=reduction, coding=coding)
                rec = evaluate_codec(ctx, codec)
                bn = codec._entry[0]
                h, w = bn.code_size(*ctx.features.shape[-2:])
                rec.extra.update(variant=f"gf2 {reduction} ({coding})", bits=bn.fmt.bits, code_channels=bn.code_channels,
                                 feature_bytes=ctx.features[0].numel() * bn.fmt.bits / 8,
                                 code_bytes=bn.code_channels * h * w / 8)
                out.append(rec)
    for rec in out:
        log(f"  {rec.model}@{rec.split} {rec.extra.get('variant', rec.codec)} {rec.params}: {rec.bpe:.3f} bpe, "
            f"loss {rec.top1_loss if rec.top1_loss is not None else float('nan'):+.2f}, cosine {rec.cosine:.4f}")
    return out


def _lowest_cosine(recs: list[Record], bar: float) -> Record | None:
    ok = [r for r in recs if r.cosine is not None and r.cosine >= bar]
    return min(ok, key=lambda r: r.bpe) if ok else None


def lightweight_reference(model: str, split: str) -> dict | None:
    """``lightweight``'s default at its lowest bpe under 1 % loss (cosine ≥ 0.99) from lightweight.json."""
    path = RESULTS / "lightweight.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text())["meta"]
    entry = meta["summary"].get(f"{model}@{split}", {})
    for key in ("lowest_bpe_under_1pct_loss", "lowest_bpe_with_cosine_0.99"):
        for variant, value in entry.get(key, {}).items():
            if variant.startswith("lightweight (default"):
                bpe = value["bpe"] if isinstance(value, dict) else value
                return {"bpe": round(bpe, 4), "source": f"lightweight.json meta.summary {key} (its own run: "
                        "first 1000 Fashion-MNIST test images, or the test photos)"}
    return None


def summary(records: list[Record]) -> list[dict]:
    """Per split: lowest bpe under 1 % loss (cosine ≥ 0.99 without labels) of each curve, and the targets."""
    rows = []
    for model, split in sorted({(r.model, r.split) for r in records}):
        recs = [r for r in records if (r.model, r.split) == (model, split)]
        labelled = any(r.top1_loss is not None for r in recs)
        row: dict = {"model": model, "split": split, "quality_bar": "top-1 loss < 1 pp" if labelled else f"cosine >= {COSINE_BAR}"}
        for variant in sorted({r.extra.get("variant", r.codec) for r in recs}):
            curve = [r for r in recs if r.extra.get("variant", r.codec) == variant]
            best = _lowest_under(curve, 1.0) if labelled else _lowest_cosine(curve, COSINE_BAR)
            row[variant] = None if best is None else {
                "bpe": round(best.bpe, 4), "top1_loss": None if best.top1_loss is None else round(best.top1_loss, 2),
                "loss_interval": [best.loss_low, best.loss_high], "cosine": round(best.cosine, 5), "params": best.params,
                "feature_bytes": best.extra.get("feature_bytes"), "code_bytes": best.extra.get("code_bytes")}
        fixed = row.get("fixed-point (bit-packed)")
        gf2 = [v for k, v in row.items() if k.startswith("gf2") and v]
        light = next((v for k, v in row.items() if k.startswith("lightweight") and v), None)
        if light is None:
            light = row["lightweight (from lightweight.json)"] = lightweight_reference(model, split)
        if fixed and gf2:
            packed = min((v for k, v in row.items() if k.startswith("gf2") and "packed" in k and v), key=lambda v: v["bpe"], default=None)
            row["fixed_over_gf2_packed"] = None if packed is None else round(fixed["bpe"] / packed["bpe"], 3)
            row["two_x_fewer_bits_met"] = bool(packed and fixed["bpe"] / packed["bpe"] >= 2)
        if light and gf2:
            ans = min((v for k, v in row.items() if k.startswith("gf2") and "ans" in k and v), key=lambda v: v["bpe"], default=None)
            row["gf2_ans_below_lightweight"] = bool(ans and ans["bpe"] < light["bpe"])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["ref-resnet", "ref-darknet", "mobilenetv2-imagenet"])
    ap.add_argument("--parts", nargs="+", default=["fixed", "gf2", "anchors"])
    ap.add_argument("--samples", type=int, default=None, help="test samples (default: the full test split)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=str(REPO / ".cache" / "gf2-bench"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    for model in args.models:
        entries = trained_entries(model)
        for split in dict.fromkeys(e.split("/")[0] for e in entries):
            ctx = None
            for part in args.parts:
                path = cache / f"{part}-{model}-{split}.json"
                if not path.exists():
                    log(f"{part} {model}@{split}")
                    ctx = ctx or prepare(model, split, samples=args.samples)
                    save_records(run_part(part, ctx, [e for e in entries if e.startswith(split + "/")]), path, run_meta(part=part))
                records += load_records(path)
    meta = run_meta(samples=args.samples or "full test split", summary=summary(records),
                    note="fixed-point and gf2 bpe include the 16-byte container per sample; the memory view "
                         "(extra.feature_bytes vs extra.code_bytes) counts the feature map / binary code alone")
    save_records(records, RESULTS / "gf2.json", meta)
    plot_rate_accuracy(records, RESULTS / "gf2.png", title="gf2 (packed, ANS) vs fixed-point, lightweight, uniform")
    for row in meta["summary"]:
        log(str(row))


if __name__ == "__main__":
    main()
