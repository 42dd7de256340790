"""Near-lossless benchmark: ``nearlossless`` vs the lossless anchors on the same 8-bit codes, and input
reconstruction from features.

1. Bytes.  For every model at several split points, each test sample's feature tensor is quantized to
   8 bits (per-tensor min–max, :func:`splitcodec.tiling.quantize`) and coded losslessly by
   ``nearlossless`` and by the registered anchors on the channel mosaic of the same codes: x265 HEVC
   lossless (``hevc``), libaom AV1 lossless (``av1``), FFV1, PNG, WebP lossless and JPEG XL lossless.
   Every stream is decoded and checked bit-exact against the quantized codes.  Rates count every byte
   of every per-sample stream (container included, config by reference).  Per tensor, the benchmark
   counts where ``nearlossless`` is shorter than the best of AV1, FFV1 and JPEG XL.
2. Speed.  Encode/decode milliseconds per sample of every codec, measured in this one run; the figure
   to read is the ratio to x265 (which includes starting the x265/ffmpeg process per tensor).
3. Reconstruction.  The committed decoders (``scripts/train_reconstruction.py``) rebuild the test images
   from uncompressed and from ``nearlossless`` features: PSNR/SSIM on held-out test images and a grid
   (original | from uncompressed features | from near-lossless features).

    PYTHONPATH=src python benchmarks/nearlossless.py                     # writes benchmarks/results/nearlossless.*
    PYTHONPATH=src python benchmarks/nearlossless.py --quick             # a few samples, to check it runs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from splitcodec.bitstream import canonical_config
from splitcodec.codecs import available_codecs, get_codec
from splitcodec.eval import Coded, code_samples, prepare, run_meta, save_records, score
from splitcodec.eval.records import Record
from splitcodec.tiling import dequantize, quantize

RESULTS = Path(__file__).resolve().parent / "results"
BITS = 8
#: model -> split points: Fashion-MNIST nets at a shallow, the default and a deep split; MobileNetV2
#: (ImageNet weights, natural photos) at four depths, dense block outputs and ReLU6 expansions.
SPLITS: dict[str, tuple[str, ...]] = {
    "ref-resnet": ("layer1", "layer2", "layer3"),
    "ref-darknet": ("stage1", "stage2.down", "stage3.down"),
    "mobilenetv2-imagenet": ("features.3", "features.7.conv.1", "features.10", "features.14.conv.1"),
}
CODECS: list[tuple[str, dict[str, Any]]] = [
    ("nearlossless", {"bits": BITS}),
    ("hevc", {"bits": BITS, "qp": None}),
    ("av1", {"bits": BITS, "cq": None}),
    ("ffv1", {"bits": BITS}),
    ("jpegxl", {"bits": BITS, "distance": 0.0}),
    ("png", {"bits": BITS}),
    ("webp", {"bits": BITS}),
]
#: general-purpose lossless codecs nearlossless must beat on every tensor
GENERAL = ("av1", "ffv1", "jpegxl")
RECONSTRUCT = ("ref-resnet", "ref-darknet")

console = Console(width=200)


def photo_dataset(per_photo: int) -> Any:
    """``per_photo`` crops of every test photo (spread over its ten crops), and 6 calibration crops
    (from the photos' calibration split: other photos)."""
    from dataclasses import replace

    from splitcodec.data import load_dataset

    test, calib = load_dataset("photos", "test"), load_dataset("photos", "calibration")
    crops = np.linspace(0, 9, per_photo).round().astype(int) if per_photo > 1 else np.array([4])
    idx = torch.tensor([p * 10 + c for p in range(len(test) // 10) for c in crops])
    cal = torch.arange(0, len(calib), max(1, len(calib) // 6))[:6]
    return (replace(test, images=test.images[idx], raw=test.raw[idx], labels=None),
            replace(calib, images=calib.images[cal], raw=calib.raw[cal], labels=None))


def bench_split(model: str, split: str, samples: int, codecs: list[tuple[str, dict[str, Any]]]) -> tuple[list[Record], dict[str, Any]]:
    if model == "mobilenetv2-imagenet":  # 8 test photos: spread the samples over all of them
        test, calib = photo_dataset(max(1, samples // 8))
        ctx = prepare(model, split, dataset=test, calibration=calib, samples=None, calibration_samples=6)
    else:
        ctx = prepare(model, split, samples=samples, calibration_samples=64)
    feats = ctx.features
    expected = torch.cat([torch.from_numpy(dequantize(*quantize(x[None].numpy(), BITS), BITS)) for x in feats])
    with torch.no_grad():
        out = torch.cat([ctx.tail(expected[i : i + ctx.batch_size]) for i in range(0, len(expected), ctx.batch_size)])
    scores = score(ctx, out)  # every codec here is lossless on the same codes: one score for all
    elements = int(feats[0].numel())
    activation = getattr(ctx.split_point, "activation", None)
    runs: dict[str, Coded] = {}
    records = []
    for name, params in codecs:
        codec = get_codec(name, **params).fit(ctx.calib_features, activation=ctx.activation)
        r = runs[name] = code_samples(codec, feats)
        exact = bool(torch.equal(r.decoded, expected))
        records.append(
            Record(
                model=ctx.model_name, split=ctx.split, codec=name, params=codec.params(), samples=len(feats),
                bpe=8 * r.mean_bytes / elements, bytes_per_sample=r.mean_bytes, encode_ms=float(np.mean(r.encode_ms)),
                decode_ms=float(np.mean(r.decode_ms)), bpp=8 * r.mean_bytes / ctx.input_pixels, elements=elements,
                header_bytes=float(np.mean(r.header_bytes)), config_bytes=len(canonical_config(codec.get_config())),
                extra={"bit_exact": exact, "sizes": r.sizes, "activation": activation}, **scores,
            )
        )
    summary = _summary(ctx, runs, records, elements, activation)
    for rec in records:
        rec.extra["summary"] = {k: summary[k] for k in ("bytes_vs_x265", "bytes_vs_best_general") if k in summary} if rec.codec == "nearlossless" else {}
    return records, summary


def _summary(ctx: Any, runs: dict[str, Coded], records: list[Record], elements: int, activation: Any) -> dict[str, Any]:
    """Per-split figures: nearlossless's bytes and times against x265 and the best general-purpose codec."""
    sizes = {name: np.array(r.sizes) for name, r in runs.items()}
    ours = sizes["nearlossless"]
    summary: dict[str, Any] = {"model": ctx.model_name, "split": ctx.split, "shape": list(ctx.features.shape[1:]), "samples": len(ctx.features),
                               "activation": activation, "all_bit_exact": all(r.extra["bit_exact"] for r in records)}
    if "hevc" in runs:
        h = runs["hevc"]
        summary["bytes_vs_x265"] = float(ours.sum() / sizes["hevc"].sum())
        summary["max_tensor_bytes_vs_x265"] = float((ours / sizes["hevc"]).max())
        summary["encode_time_vs_x265"] = float(sum(runs["nearlossless"].encode_ms) / sum(h.encode_ms))
        summary["decode_time_vs_x265"] = float(sum(runs["nearlossless"].decode_ms) / sum(h.decode_ms))
    general = [g for g in GENERAL if g in runs]
    if general:
        best = np.min(np.stack([sizes[g] for g in general]), axis=0)
        summary["bytes_vs_best_general"] = float(ours.sum() / best.sum())
        summary["max_tensor_bytes_vs_best_general"] = float((ours / best).max())
        summary["tensors_won_vs_best_general"] = int((ours < best).sum())
        summary["best_general_codec_counts"] = {g: int(c) for g, c in zip(general, np.bincount(np.argmin(np.stack([sizes[g] for g in general]), axis=0), minlength=len(general)))}
    for name, r in runs.items():
        summary[f"bpe_{name}"] = float(8 * sizes[name].mean() / elements)
    return summary


def reconstruction(model: str, samples: int, grid_n: int, out_dir: Path) -> dict[str, Any]:
    from PIL import Image

    from splitcodec.reconstruct import image_grid, load_reconstructor, psnr, ssim, to_uint8

    ctx = prepare(model, None, samples=samples, calibration_samples=64)
    decoder = load_reconstructor(ctx.model_name, ctx.split)
    codec = get_codec("nearlossless", bits=BITS).fit(ctx.calib_features, activation=ctx.activation)
    r = code_samples(codec, ctx.features)
    coded = r.decoded
    with torch.no_grad():
        raw_rec = torch.cat([to_uint8(decoder(ctx.features[i : i + 256])) for i in range(0, len(ctx.features), 256)])
        nl_rec = torch.cat([to_uint8(decoder(coded[i : i + 256])) for i in range(0, len(coded), 256)])
    orig = ctx.dataset.raw
    grid = image_grid([orig[:grid_n], raw_rec[:grid_n], nl_rec[:grid_n]], scale=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"nearlossless_reconstruction_{model}.png"
    Image.fromarray(grid).save(path)
    meta = getattr(decoder, "meta", {})
    return {
        "model": model, "split": ctx.split, "test_images": len(orig), "grid": path.name,
        "columns": ["original", "from uncompressed features", f"from nearlossless bits={BITS} features"],
        "nearlossless_bpe": 8 * r.mean_bytes / ctx.features[0].numel(),
        "psnr_uncompressed": psnr(orig, raw_rec), "ssim_uncompressed": ssim(orig, raw_rec),
        "psnr_nearlossless": psnr(orig, nl_rec), "ssim_nearlossless": ssim(orig, nl_rec),
        "decoder_params": sum(p.numel() for p in decoder.parameters()), "decoder_training": meta,
    }


def plot(summaries: list[dict[str, Any]], codecs: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(summaries)), 4.5))
    width = 0.8 / len(codecs)
    labels = [f"{s['model'].replace('mobilenetv2-imagenet', 'mnv2')}\n{s['split']}" for s in summaries]
    for j, c in enumerate(codecs):
        vals = [s.get(f"bpe_{c}", np.nan) for s in summaries]
        ax.bar(np.arange(len(summaries)) + (j - (len(codecs) - 1) / 2) * width, vals, width, label=c)
    ax.set_xticks(np.arange(len(summaries)), labels, fontsize=8)
    ax.set_ylabel("bits per element (8-bit codes, lossless)")
    ax.set_title("nearlossless vs lossless image/video codecs on the same 8-bit feature codes")
    ax.legend(ncol=len(codecs), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_tables(summaries: list[dict[str, Any]], recon: list[dict[str, Any]], codecs: list[str]) -> None:
    """The bytes/speed table per split, and the reconstruction table."""
    t = Table(title=f"nearlossless vs lossless anchors on the same {BITS}-bit codes (bpe = bits per element, per sample, container included)")
    for col in ["model", "split", "shape", "act", *[f"bpe {c}" for c in codecs], "vs x265", "max/tensor", "vs best(AV1,FFV1,JXL)", "won", "enc/x265", "dec/x265", "exact"]:
        t.add_column(col, justify="left" if col in ("model", "split", "shape", "act") else "right")
    for s in summaries:
        t.add_row(
            s["model"], s["split"], "×".join(map(str, s["shape"])), str(s["activation"]),
            *[f"{s.get(f'bpe_{c}', float('nan')):.3f}" for c in codecs],
            f"{s.get('bytes_vs_x265', float('nan')):.3f}", f"{s.get('max_tensor_bytes_vs_x265', float('nan')):.3f}",
            f"{s.get('bytes_vs_best_general', float('nan')):.3f}", f"{s.get('tensors_won_vs_best_general', 0)}/{s['samples']}",
            f"{s.get('encode_time_vs_x265', float('nan')):.2f}", f"{s.get('decode_time_vs_x265', float('nan')):.2f}",
            "yes" if s["all_bit_exact"] else "NO",
        )
    console.print(t)
    if recon:
        rt = Table(title="input reconstruction on held-out test images")
        for col in ("model", "split", "images", "PSNR raw", "SSIM raw", "PSNR nearlossless", "SSIM nearlossless", "bpe", "grid"):
            rt.add_column(col)
        for r in recon:
            rt.add_row(r["model"], r["split"], str(r["test_images"]), f"{r['psnr_uncompressed']:.2f}", f"{r['ssim_uncompressed']:.4f}",
                       f"{r['psnr_nearlossless']:.2f}", f"{r['ssim_nearlossless']:.4f}", f"{r['nearlossless_bpe']:.3f}", r["grid"])
        console.print(rt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=100, help="test samples per Fashion-MNIST split")
    ap.add_argument("--photo-samples", type=int, default=24, help="test crops per MobileNetV2 split (8 photos × 10 crops exist)")
    ap.add_argument("--recon-samples", type=int, default=1000, help="test images for PSNR/SSIM")
    ap.add_argument("--quick", action="store_true", help="3 samples, to check the script runs")
    ap.add_argument("--models", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    ap.add_argument("--out", type=Path, default=RESULTS / "nearlossless.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples = args.photo_samples = 3
        args.recon_samples = 16
    torch.set_num_threads(2)
    avail = available_codecs()
    codecs = [(n, p) for n, p in CODECS if avail.get(n, "not registered") is None]
    for n, _ in CODECS:
        if avail.get(n, "not registered") is not None:
            console.print(f"[yellow]skipping {n}: {avail.get(n, 'not registered')}[/]")
    records: list[Record] = []
    summaries = []
    for model in args.models:
        for split in SPLITS[model]:
            n = args.photo_samples if model.startswith("mobilenet") else args.samples
            t0 = time.perf_counter()
            recs, summary = bench_split(model, split, n, codecs)
            records += recs
            summaries.append(summary)
            console.print(f"{model} @ {split}: {summary['samples']} tensors {tuple(summary['shape'])} in {time.perf_counter() - t0:.0f} s")
    recon = []
    for model in (m for m in RECONSTRUCT if m in args.models):
        try:
            recon.append(reconstruction(model, args.recon_samples, 8, args.out.parent))
        except Exception as exc:  # a missing decoder must not lose the byte figures
            console.print(f"[red]reconstruction for {model} failed: {exc}[/]")

    print_tables(summaries, recon, [c for c, _ in codecs])
    meta = run_meta(command="benchmarks/nearlossless.py", bits=BITS, samples=args.samples, photo_samples=args.photo_samples,
                    summaries=summaries, reconstruction=recon)
    json_path, csv_path = save_records(records, args.out, meta)
    png = args.out.with_suffix(".png")
    plot(summaries, [c for c, _ in codecs], png)
    console.print(f"wrote {json_path}, {csv_path}, {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
