"""Benchmark of the ``lightweight`` codec (issue 5): rate–accuracy, ablation, speed, ImageNet statistics.

Parts (``--parts``, default all; each is cached in ``--cache`` so they can run separately):

``fm``        ref-resnet (layer1, layer2) and ref-darknet (stage1.down, stage2.down) on Fashion-MNIST test
              images: the codec's λ sweep, the ablation variants (clip min–max / 99.9th percentile / model;
              uniform vs ECSQ; per-channel), x265 (``hevc``, 10-bit mosaic, QP sweep) and ``uniform``
              on the same features; the lowest bpe with < 1 % top-1 loss; BD-rate / BD-accuracy vs x265;
              how well the fitted model matches the feature histogram, and its predicted vs measured MSE/bits.
``speed``     encode+decode throughput on one core (``sched_setaffinity``), lightweight vs x265 (and AV1)
              on the same tensors, as ratios within one run, plus absolute elements/s.
``imagenet``  mobilenetv2-imagenet over the natural photos at 3 depths: bpe vs embedding cosine
              similarity, lightweight next to x265 and AV1 on the same tensors; the bpe where cosine ≥ 0.99.

Writes ``benchmarks/results/lightweight.json`` (+ ``.csv``) with every record (``extra.variant`` names the
curve, ``extra.part`` the part) and the summary in ``meta.summary``, and the plots ``lightweight.png``,
``lightweight_ablation.png``, ``lightweight_imagenet.png``, ``lightweight_fit.png``.

    nice python benchmarks/lightweight.py --samples 1000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splitcodec.codecs import get_codec
from splitcodec.errors import SplitcodecError
from splitcodec.eval import Record, bd_accuracy, bd_rate, evaluate_codec, load_records, prepare, run_meta, save_records
from splitcodec.eval.fitcheck import fit_check as check_fit
from lightweight_plots import DEFAULT, group_curves, histogram, plot, plot_fit  # the module beside this script

RESULTS = Path(__file__).parent / "results"
FM_SPLITS = [("ref-resnet", "layer1"), ("ref-resnet", "layer2"), ("ref-darknet", "stage1.down"), ("ref-darknet", "stage2.down")]
SPEED_FM = ("ref-resnet", "layer2")
IMAGENET_SPLITS = [("mobilenetv2-imagenet", s) for s in ("features.4.conv.1", "features.7.conv.1", "features.14.conv.1")]

PAPER = "ECSQ, model clip (paper coding: one table, shared levels)"
PER_CHANNEL = "per-channel quantizers (ECSQ, model clip)"
HEVC = "x265 (hevc, 10-bit mosaic)"
AV1 = "AV1 (libaom, 10-bit mosaic)"
UNIFORM_CODEC = "uniform codec (per-sample min–max, n bits)"
#: the coding of the paper: one probability table, one reconstruction value per cell, no context
PLAIN = {"channel_tables": False, "channel_levels": False, "context": False}
LAMS = (0.003, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)
LAMS_ABL = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5)
LEVELS = (2, 3, 4, 6, 8, 12, 16)

FM_VARIANTS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    DEFAULT: ("lightweight", [{"lam": v} for v in LAMS]),
    PAPER: ("lightweight", [{"lam": v, **PLAIN} for v in LAMS_ABL]),
    "+ channel tables": ("lightweight", [{"lam": v, **PLAIN, "channel_tables": True} for v in LAMS_ABL]),
    "+ channel tables + channel levels": ("lightweight", [{"lam": v, "context": False} for v in LAMS_ABL]),
    PER_CHANNEL: ("lightweight", [{"lam": v, "per_channel": True, "context": False} for v in (0.05, 0.1, 0.2, 0.3, 0.5)]),
    "ECSQ, p99.9 clip": ("lightweight", [{"lam": v, "clip": "percentile", **PLAIN} for v in LAMS_ABL]),
    "ECSQ, min–max clip": ("lightweight", [{"lam": v, "clip": "minmax", **PLAIN} for v in LAMS_ABL]),
    "uniform, model clip (D+λR: clip and levels)": ("lightweight", [{"lam": v, "quantizer": "uniform", **PLAIN} for v in LAMS_ABL]),
    "uniform, model clip (MSE-optimal, n levels)": (
        "lightweight", [{"lam": 0, "quantizer": "uniform", "levels": n, **PLAIN} for n in LEVELS]),
    "uniform, p99.9 clip (n levels)": (
        "lightweight", [{"lam": 0, "quantizer": "uniform", "clip": "percentile", "levels": n, **PLAIN} for n in LEVELS]),
    "uniform, min–max clip (n levels)": (
        "lightweight", [{"lam": 0, "quantizer": "uniform", "clip": "minmax", "levels": n, **PLAIN} for n in LEVELS]),
    HEVC: ("hevc", [{"bits": 10, "qp": q} for q in (22, 27, 32, 35, 37, 39, 41, 43, 45, 47)]),
    UNIFORM_CODEC: ("uniform", [{"bits": b} for b in (8, 6, 4, 3, 2)]),
}
IMAGENET_VARIANTS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    DEFAULT: ("lightweight", [{"lam": v} for v in (0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)]),
    PAPER: ("lightweight", [{"lam": v, **PLAIN} for v in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)]),
    PER_CHANNEL: ("lightweight", [{"lam": v, "per_channel": True, "context": False} for v in (0.003, 0.01, 0.03, 0.1, 0.3)]),
    HEVC: ("hevc", [{"bits": 10, "qp": q} for q in (12, 17, 22, 27, 32, 37, 42)]),
    AV1: ("av1", [{"bits": 10, "cq": q} for q in (5, 15, 25, 35, 45, 55)]),
}


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# --- running settings ---------------------------------------------------------------------------------


#: Anchor records (codecs other than lightweight) of an earlier run on the same samples, by
#: (model, split, variant, params): ``--reuse DIR`` takes them instead of re-running x265/AV1.
REUSED: dict[tuple[str, str, str, str], Record] = {}


def load_reusable(folder: Path) -> None:
    for path in sorted(folder.glob("*.json")):
        for r in load_records(path):
            if r.codec != "lightweight" and "variant" in r.extra:
                r.extra["reused_from"] = str(path)
                REUSED[(r.model, r.split, r.extra["variant"], json.dumps(r.params, sort_keys=True))] = r


def run_variants(ctx, variants: dict[str, tuple[str, list[dict[str, Any]]]], part: str) -> list[Record]:
    records = []
    for label, (codec_id, settings) in variants.items():
        for params in settings:
            codec = get_codec(codec_id, **params)
            old = REUSED.get((ctx.model_name, ctx.split, label, json.dumps(codec.params(), sort_keys=True)))
            if old is not None and old.samples == len(ctx.features):
                records.append(old)
                continue
            t0 = time.perf_counter()
            try:
                rec = evaluate_codec(ctx, codec)
            except SplitcodecError as exc:  # e.g. a missing binary: say so and go on
                log(f"  {label} {params}: skipped ({exc})")
                break
            extra: dict[str, Any] = {"variant": label, "part": part, "seconds": time.perf_counter() - t0}
            if codec_id == "lightweight":
                extra["chosen"] = _chosen(codec)
            rec.extra = extra
            records.append(rec)
            acc = f"top1 {rec.top1:.2f} (loss {rec.top1_loss:+.2f})" if rec.top1 is not None else f"cosine {rec.cosine:.4f}"
            log(f"  {ctx.model_name}@{ctx.split} {label} {params}: {rec.bpe:.3f} bpe, {acc}")
    return records


def _chosen(codec) -> dict[str, Any]:
    d = codec.describe()
    out = {k: d[k] for k in ("activation", "slope", "clip", "model", "model_mse", "model_bits", "mean_levels") if k in d}
    if "levels" in d:
        out["levels"] = len(d["levels"])
    return out


# --- part fm --------------------------------------------------------------------------------------------


def part_fm(samples: int, cache: Path, only: str | None = None) -> tuple[list[Record], dict[str, Any]]:
    """Every Fashion-MNIST split; each split's records are cached on their own (``--only`` runs one)."""
    records: list[Record] = []
    fits: dict[str, Any] = {}
    for model, split in FM_SPLITS:
        key = f"{model}@{split}"
        path = cache / f"fm_{model}_{split}.json"
        if (only is None or only == key) and not path.exists():
            log(f"{key}: preparing {samples} test samples")
            ctx = prepare(model, split, samples=samples, calibration_samples=64)
            recs = run_variants(ctx, FM_VARIANTS, "fm")
            save_records(recs, path, meta=run_meta(samples=samples, fit=fit_check(ctx)))
        if path.exists():
            records += load_records(path)
            fits[key] = json.loads(path.read_text())["meta"]["fit"]
    return records, {"fit": fits}


def fit_check(ctx, lams=(0.05, 0.2, 0.4)) -> dict[str, Any]:
    """Fitted model vs the test features' histogram, and the model's predicted MSE/bits vs measured."""
    point = ctx.split_point
    out: dict[str, Any] = {"activation": point.activation if point else None}
    for lam in lams:
        codec = get_codec("lightweight", lam=lam, **PLAIN).fit(ctx.calib_features, activation=ctx.activation)
        first = "model" not in out
        check = check_fit(codec, [("calibration", ctx.calib_features), ("test", ctx.features)], fits=first)
        if first:
            out["model"] = codec.describe()["model"]
            out["fit_test"] = check.fits["test"]
            out["fit_calibration"] = check.fits["calibration"]
            out["_hist"] = histogram(check.model, ctx.features.numpy())
        out[f"lam={lam}"] = {
            "levels": len(check.levels),
            "clip": list(check.clip),
            "model_mse": check.model_mse,
            "measured_mse": check.measured_mse,
            "model_bits": check.model_bits,
            "measured_entropy_bits": check.measured_bits,
        }
    return out


# --- part imagenet ----------------------------------------------------------------------------------------


def part_imagenet() -> tuple[list[Record], dict[str, Any]]:
    records: list[Record] = []
    fits: dict[str, Any] = {}
    for model, split in IMAGENET_SPLITS:
        log(f"{model} @ {split}: preparing all photo crops")
        ctx = prepare(model, split, samples=None, calibration_samples=64)
        records += run_variants(ctx, IMAGENET_VARIANTS, "imagenet")
        fits[f"{model}@{split}"] = fit_check(ctx, lams=(0.01, 0.05))
    return records, {"fit": fits}


# --- part speed -------------------------------------------------------------------------------------------


def _time(fn, min_seconds: float = 2.0, min_reps: int = 3) -> float:
    """Median seconds per call of ``fn`` over at least ``min_reps`` calls and ``min_seconds``."""
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def part_speed() -> tuple[list[Record], dict[str, Any]]:
    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})  # one core, for this process and the x265/ffmpeg it starts
    torch.set_num_threads(1)
    out: dict[str, Any] = {"core": cpu, "note": "median over repeated runs, one core, the same tensor for every codec"}
    cases = [(SPEED_FM[0], SPEED_FM[1], 64, "fashion-mnist"), ("mobilenetv2-imagenet", "features.4.conv.1", 30, None)]
    for model, split, n_calib, _ in cases:
        ctx = prepare(model, split, samples=4, calibration_samples=n_calib)
        x = ctx.features[:1].contiguous()
        entry: dict[str, Any] = {"shape": list(x.shape), "elements": int(x.numel())}
        codecs = {
            "lightweight": get_codec("lightweight", lam=0.2).fit(ctx.calib_features, activation=ctx.activation),
            "lightweight (paper coding)": get_codec("lightweight", lam=0.2, **PLAIN).fit(ctx.calib_features, activation=ctx.activation),
            "hevc": get_codec("hevc", bits=10, qp=37).fit(ctx.calib_features),
            "av1": get_codec("av1", bits=10, cq=35).fit(ctx.calib_features),
        }
        for name, codec in codecs.items():
            try:
                data = codec.encode(x, config="ref")
            except SplitcodecError as exc:
                entry[name] = {"error": str(exc)}
                continue
            enc = _time(lambda: codec.encode(x, config="ref"))
            dec = _time(lambda: codec.decode(data))
            entry[name] = {
                "bytes": len(data),
                "bpe": len(data) * 8 / x.numel(),
                "encode_ms": enc * 1e3,
                "decode_ms": dec * 1e3,
                "elements_per_s": x.numel() / (enc + dec),
                "encode_elements_per_s": x.numel() / enc,
                "decode_elements_per_s": x.numel() / dec,
            }
            log(f"  speed {model}@{split} {name}: enc {enc*1e3:.2f} ms, dec {dec*1e3:.2f} ms, {x.numel()/(enc+dec):.3g} elements/s")
        for ours, key in (("lightweight", "lightweight"), ("lightweight (paper coding)", "lightweight_paper_coding")):
            for name in ("hevc", "av1"):
                if "elements_per_s" in entry.get(ours, {}) and "elements_per_s" in entry.get(name, {}):
                    entry[f"{key}_vs_{name}"] = entry[ours]["elements_per_s"] / entry[name]["elements_per_s"]
        out[f"{model}@{split}"] = entry
    return [], {"throughput": out}


# --- summary and plots ---------------------------------------------------------------------------------


def _bd(anchor: list[Record], test: list[Record], metric: str) -> dict[str, float | str]:
    ra, aa = [r.bpe for r in anchor], [getattr(r, metric) for r in anchor]
    rb, ab = [r.bpe for r in test], [getattr(r, metric) for r in test]
    out: dict[str, float | str] = {}
    for name, fn in (("bd_rate_pct", bd_rate), ("bd_accuracy", bd_accuracy)):
        try:
            out[name] = fn(ra, aa, rb, ab)
        except SplitcodecError as exc:
            out[name] = f"n/a: {exc}"
    return out


def _crossing(recs: list[Record], metric: str, target: float) -> float | None:
    """bpe where the rate–metric envelope reaches ``target`` (log-linear between the bracketing points)."""
    pts = sorted((r.bpe, getattr(r, metric)) for r in recs if getattr(r, metric) is not None)
    best = -math.inf
    env = []
    for b, a in pts:
        if a > best:
            env.append((b, a))
            best = a
    for (b0, a0), (b1, a1) in zip(env, env[1:]):
        if a0 < target <= a1:
            t = (target - a0) / (a1 - a0)
            return float(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))))
    if env and env[0][1] >= target:
        return float(env[0][0])
    return None


def summarise(records: list[Record]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (model, split), curves in sorted(group_curves(records).items()):
        key = f"{model}@{split}"
        entry: dict[str, Any] = {}
        labelled = any(r.top1 is not None for rs in curves.values() for r in rs)
        metric = "top1" if labelled else "cosine"
        if labelled:
            entry["top1_ref"] = next(r.top1_ref for rs in curves.values() for r in rs)
            entry["elements"] = next(r.elements for rs in curves.values() for r in rs)
            lowest = {}
            for label, rs in curves.items():
                ok = [r for r in rs if r.top1_loss is not None and r.top1_loss < 1.0]
                if ok:
                    best = min(ok, key=lambda r: r.bpe)
                    lowest[label] = {"bpe": best.bpe, "top1_loss": best.top1_loss, "params": best.params,
                                     "bytes_per_sample": best.bytes_per_sample, "header_bytes": best.header_bytes}
                else:
                    lowest[label] = None
            entry["lowest_bpe_under_1pct_loss"] = lowest
        else:
            entry["bpe_at_cosine_0.99"] = {label: _crossing(rs, "cosine", 0.99) for label, rs in curves.items()}
            entry["lowest_bpe_with_cosine_0.99"] = {
                label: min((r.bpe for r in rs if r.cosine is not None and r.cosine >= 0.99), default=None)
                for label, rs in curves.items()
            }
        if HEVC in curves:
            entry["vs_x265"] = {label: _bd(curves[HEVC], rs, metric) for label, rs in curves.items() if label != HEVC}
        if AV1 in curves:
            entry["vs_av1"] = {label: _bd(curves[AV1], rs, metric) for label, rs in curves.items() if label not in (AV1, HEVC)}
        out[key] = entry
    return out


# --- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1000, help="Fashion-MNIST test images per split")
    ap.add_argument("--parts", default="fm,speed,imagenet")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/splitcodec-lightweight"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default=None, help="part fm: run only this model@split (others come from the cache)")
    ap.add_argument("--reuse", type=Path, default=None, help="take anchor (x265/AV1/uniform) records from this earlier cache")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.reuse is not None:
        load_reusable(args.reuse)
    funcs = {"fm": lambda: part_fm(args.samples, args.cache, args.only), "imagenet": part_imagenet, "speed": part_speed}
    for part in [p for p in args.parts.split(",") if p]:
        t0 = time.time()
        records, meta = funcs[part]()
        save_records(records, args.cache / f"{part}.json", meta=run_meta(part=part, samples=args.samples, extra=meta))
        log(f"part {part} done in {time.time() - t0:.0f} s")

    records: list[Record] = []
    metas: dict[str, Any] = {}
    for part in ("fm", "imagenet", "speed"):
        path = args.cache / f"{part}.json"
        if path.exists():
            records += load_records(path)
            metas[part] = json.loads(path.read_text())["meta"]
    summary = summarise(records)
    fit = {**metas.get("fm", {}).get("extra", {}).get("fit", {}), **metas.get("imagenet", {}).get("extra", {}).get("fit", {})}
    throughput = metas.get("speed", {}).get("extra", {}).get("throughput")
    fit_table = {k: {kk: vv for kk, vv in v.items() if kk != "_hist"} for k, v in fit.items()}
    meta = run_meta(
        benchmark="lightweight (issue 5)",
        samples={p: m.get("samples") for p, m in metas.items()},
        part_dates={p: m.get("date") for p, m in metas.items()},
        summary=summary,
        fit=fit_table,
        throughput=throughput,
    )
    save_records(records, RESULTS / "lightweight.json", meta=meta)
    fm_labels = [DEFAULT, PAPER, HEVC, UNIFORM_CODEC]
    plot(records, fm_labels, RESULTS / "lightweight.png", metric="top1", zoom=6.0,
         title="lightweight vs x265 on the same features (Fashion-MNIST test images)")
    abl = [k for k in FM_VARIANTS if k not in (HEVC, UNIFORM_CODEC)]
    plot(records, abl, RESULTS / "lightweight_ablation.png", metric="top1", zoom=6.0,
         title="ablation: clip (min–max / p99.9 / model) × quantizer (uniform / ECSQ)")
    plot(records, list(IMAGENET_VARIANTS), RESULTS / "lightweight_imagenet.png", metric="cosine", zoom=0.05, part="imagenet",
         title="mobilenetv2-imagenet on natural photos: bpe vs embedding cosine")
    if fit:
        plot_fit(fit, RESULTS / "lightweight_fit.png")
    print(json.dumps(summary, indent=1, default=str))
    if throughput:
        print(json.dumps(throughput, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
