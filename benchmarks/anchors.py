"""Anchors benchmark: image/video codecs on the n-bit feature mosaic, and input-picture coding.

For each model at two split points: x265 HEVC lossless + QPs, libaom AV1 lossless + CQs, FFV1, PNG, WebP,
JPEG XL (lossless and lossy) on the 10-bit mosaic (WebP: 8-bit; the lossless codecs also at 8 bits, so all
six meet on the same 8-bit mosaic), and per model the input picture coded with JPEG, WebP and HEVC at a
quality sweep (the whole model runs on the decoded picture).  Rate counts every byte of every per-sample
stream (container included); encode/decode times are per sample, measured in this one run.  Encode times
of hevc/av1/ffv1/image-hevc include starting the x265/aomenc/ffmpeg process for each picture (that start-up
is measured on its own and printed, so it can be told apart); their decodes run libavcodec in-process
(PyAV) when it is installed (meta "decoder").  Lossless settings are checked bit-exact on the quantized codes.

    PYTHONPATH=src python benchmarks/anchors.py --samples 300          # writes benchmarks/results/anchors.*
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from splitcodec.codecs import _ffmpeg, default_settings, get_codec
from splitcodec.codecs.av1 import AOMENC
from splitcodec.eval import evaluate_codec, load_records, plot_rate_accuracy, prepare, run_meta, save_records
from splitcodec.eval.plot import log_rate_axis
from splitcodec.eval.records import Record
from splitcodec.tiling import dequantize, quantize

RESULTS = Path(__file__).resolve().parent / "results"

#: model -> two split points (a shallower, larger tensor and a deeper one).
SPLITS: dict[str, tuple[str, ...]] = {
    "ref-resnet": ("layer1", "layer2"),
    "ref-darknet": ("stage1.down", "stage2.down"),
    "mobilenetv2-imagenet": ("features.4", "features.7.conv.1"),
}

LOSSLESS_10 = [("hevc", {"bits": 10, "qp": None}), ("av1", {"bits": 10, "cq": None}), ("ffv1", {"bits": 10}),
               ("png", {"bits": 10}), ("jpegxl", {"bits": 10, "distance": 0.0})]
LOSSLESS_8 = [("hevc", {"bits": 8, "qp": None}), ("av1", {"bits": 8, "cq": None}), ("ffv1", {"bits": 8}),
              ("png", {"bits": 8}), ("webp", {"bits": 8}), ("jpegxl", {"bits": 8, "distance": 0.0})]
#: The lossy settings are the codecs' default sweeps (lossless first, then QP / CQ / distance).
LOSSY = [(c, p) for c in ("hevc", "av1", "jpegxl") for p in default_settings(c)[1:]]
IMAGE = [(c, p) for c in ("image-jpeg", "image-webp", "image-hevc") for p in default_settings(c)]

console = Console(width=180)


def is_lossless(codec_id: str, params: dict[str, Any]) -> bool:
    """Settings that must reproduce the n-bit codes exactly."""
    return codec_id in ("ffv1", "png", "webp") or any(params.get(k, 1) is None for k in ("qp", "cq")) \
        or params.get("distance", 1) == 0


def bit_exact(codec_id: str, params: dict[str, Any], features: torch.Tensor, n: int) -> bool:
    """Lossless settings: decode(encode(x)) equals the dequantized n-bit codes on the first ``n`` samples."""
    codec = get_codec(codec_id, **params)
    for x in features[:n]:
        x = x[None]
        q, lo, hi = quantize(x.numpy(), codec.bits)  # type: ignore[attr-defined]
        if not np.array_equal(codec.decode(codec.encode(x)).numpy(), dequantize(q, lo, hi, codec.bits)):  # type: ignore[attr-defined]
            return False
    return True


def plot_bytes(records: list[Record], path: Path) -> Path:
    """Per model: bytes/sample (log) vs accuracy, every feature anchor at both splits and the input anchors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r.model for r in records})
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 4.6), squeeze=False)
    shown = {"hevc": "-", "av1": "--", "jpegxl": ":", "image-jpeg": "-", "image-webp": "--", "image-hevc": ":"}
    for ax, model in zip(axes.flat, models):
        recs = [r for r in records if r.model == model]
        metric = "top1" if all(r.top1 is not None for r in recs) else "cosine"
        splits = sorted({r.split for r in recs if r.split != "input"})
        colors = {s: c for s, c in zip(splits, ("tab:blue", "tab:orange", "tab:green"))} | {"input": "k"}
        for split in [*splits, "input"]:
            for codec, style in shown.items():
                pts = sorted((r.bytes_per_sample, getattr(r, metric)) for r in recs
                             if r.split == split and r.codec == codec and r.params.get("bits", 10) == 10)
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, style, marker="o", ms=3, lw=1.2, color=colors[split], label=f"{codec} @ {split}")
            for r in recs:  # lossless anchors as single points
                if r.split == split and r.codec in ("ffv1", "png", "webp") and r.params.get("bits") == 8:
                    ax.plot(r.bytes_per_sample, getattr(r, metric), "x", color=colors[split], ms=5)
        ref = next((r.top1_ref for r in recs if r.top1_ref is not None), None)
        if metric == "top1" and ref is not None:
            ax.axhline(ref, color="gray", ls="--", lw=0.8)
            ax.set_ylim(max(0.0, ref - 30), ref + 3)
        log_rate_axis(ax)
        ax.set_xlabel("bytes per sample (headers included)")
        ax.set_ylabel("top-1 accuracy (%)" if metric == "top1" else "output cosine similarity vs uncut model")
        ax.set_title(f"{model}: features at {', '.join(splits)} vs the input picture", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=6, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def lossless_summary(records: list[Record]) -> None:
    """Bytes of each lossless anchor relative to x265 lossless on the same mosaic (negative: smaller)."""
    from rich.table import Table

    t = Table(title="lossless anchors: bytes vs x265 lossless on the same n-bit mosaic (%)")
    codecs = ["hevc", "av1", "ffv1", "png", "webp", "jpegxl"]
    for col in ("model", "split", "bits", *codecs):
        t.add_column(col, justify="left" if col in ("model", "split") else "right")
    keys = sorted({(r.model, r.split, r.params.get("bits")) for r in records if r.split != "input"})
    for model, split, bits in keys:
        size = {r.codec: r.bytes_per_sample for r in records if (r.model, r.split, r.params.get("bits")) == (model, split, bits)
                and is_lossless(r.codec, r.params)}
        if "hevc" not in size:
            continue
        cells = [f"{size['hevc']:.0f} B" if c == "hevc" else ("–" if c not in size else f"{(size[c] / size['hevc'] - 1) * 100:+.1f}")
                 for c in codecs]
        t.add_row(model, split, str(bits), *cells)
    console.print(t)


def table(records: list[Record], title: str) -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("model", "split", "codec", "setting", "bpe", "bytes/sample", "bpp", "top-1 %", "loss pp", "cosine",
                "enc ms", "dec ms", "exact"):
        t.add_column(col, justify="left" if col in ("model", "split", "codec", "setting") else "right")
    for r in records:
        setting = ",".join(f"{k}={'lossless' if v is None else v}" for k, v in r.params.items())
        exact = r.extra.get("bit_exact")
        t.add_row(r.model, r.split, r.codec, setting, f"{r.bpe:.3f}", f"{r.bytes_per_sample:.0f}", f"{r.bpp:.3f}",
                  "–" if r.top1 is None else f"{r.top1:.2f}", "–" if r.top1_loss is None else f"{r.top1_loss:+.2f}",
                  f"{r.cosine:.4f}", f"{r.encode_ms:.1f}", f"{r.decode_ms:.1f}", "" if exact is None else str(exact))
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=300, help="Fashion-MNIST test samples per split")
    ap.add_argument("--photo-samples", type=int, default=None, help="photo crops (default: all test crops)")
    ap.add_argument("--models", nargs="*", default=list(SPLITS), help="models to run")
    ap.add_argument("--exact-check", type=int, default=20, help="samples checked bit-exact per lossless setting")
    ap.add_argument("--out", type=Path, default=RESULTS / "anchors.json")
    ap.add_argument("--resume", action="store_true", help="keep the records in --out of the models not run now")
    args = ap.parse_args(argv)

    startup = {"ffmpeg_ms": _ffmpeg.startup_ms(_ffmpeg.FFMPEG, 9), "x265_ms": _ffmpeg.startup_ms(_ffmpeg.X265, 9),
               "aomenc_ms": _ffmpeg.startup_ms(AOMENC, 9), "decoder": _ffmpeg.decoder_backend()}
    console.print(f"process start-up alone (median of 9): ffmpeg {startup['ffmpeg_ms']:.1f} ms, x265 {startup['x265_ms']:.1f} ms, "
                  f"aomenc {startup['aomenc_ms']:.1f} ms; decoder: {startup['decoder']}")
    records: list[Record] = []
    if args.resume and args.out.exists():
        records = [r for r in load_records(args.out) if r.model not in args.models]
        console.print(f"kept {len(records)} records of {sorted({r.model for r in records})} from {args.out}")
    t_all = time.perf_counter()
    for model in args.models:
        for i, split in enumerate(SPLITS[model]):
            t0 = time.perf_counter()
            samples = args.photo_samples if model == "mobilenetv2-imagenet" else args.samples
            ctx = prepare(model, split, samples=samples)
            shape = tuple(ctx.features.shape[1:])
            console.print(f"[bold]{model} @ {split}[/]: features {shape}, {len(ctx.features)} samples, "
                          f"uncut top-1 {ctx.top1_ref}")
            settings = LOSSLESS_10 + LOSSLESS_8 + LOSSY + (IMAGE if i == 0 else [])
            split_records = []
            for codec_id, params in settings:
                codec = get_codec(codec_id, **params)
                rec = evaluate_codec(ctx, codec)
                if is_lossless(codec_id, params):
                    rec.extra["bit_exact"] = bit_exact(codec_id, params, ctx.features, args.exact_check)
                rec.extra["feature_shape"] = list(shape)
                split_records.append(rec)
                console.print(f"  {rec.label:<42} bpe {rec.bpe:7.3f}  top-1 {rec.top1 if rec.top1 is not None else float('nan'):6.2f}"
                              f"  cos {rec.cosine:.4f}  enc {rec.encode_ms:7.1f} ms  dec {rec.decode_ms:7.1f} ms")
            records += split_records
            console.print(f"  ({time.perf_counter() - t0:.0f} s)")
            save_records(records, args.out, run_meta(command="benchmarks/anchors.py", argv=sys.argv[1:], **startup))
    startup_end = {"ffmpeg_ms_end": _ffmpeg.startup_ms(_ffmpeg.FFMPEG, 9), "x265_ms_end": _ffmpeg.startup_ms(_ffmpeg.X265, 9),
                   "aomenc_ms_end": _ffmpeg.startup_ms(AOMENC, 9)}
    meta = run_meta(command="benchmarks/anchors.py", argv=sys.argv[1:], seconds=round(time.perf_counter() - t_all),
                    **startup, **startup_end)
    json_path, csv_path = save_records(records, args.out, meta)
    png = plot_rate_accuracy(records, args.out.with_suffix(".png"), title="anchors: bits per element vs accuracy")
    png2 = plot_bytes(records, args.out.with_name(args.out.stem + "_bytes.png"))
    table(records, "anchors")
    lossless_summary(records)
    console.print(f"process start-up (start → end of run): ffmpeg {startup['ffmpeg_ms']:.1f} → {startup_end['ffmpeg_ms_end']:.1f} ms, "
                  f"x265 {startup['x265_ms']:.1f} → {startup_end['x265_ms_end']:.1f} ms, aomenc {startup['aomenc_ms']:.1f} → "
                  f"{startup_end['aomenc_ms_end']:.1f} ms; the hevc/image-hevc (x265), av1 (aomenc) and ffv1 (ffmpeg) encode "
                  f"times include one such start per picture; decoding ran via {startup['decoder']}")
    console.print(f"wrote {json_path}, {csv_path}, {png}, {png2}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
