"""Benchmark of the ``wsae`` codec (issue 12): per split × bit-width on the full Fashion-MNIST test set.

Parts (``--parts``; each cached under ``--cache`` as JSON records so they can run separately):

``anchors``      ``lightweight`` (its default λ sweep) and ``uniform`` (8/6/4/3/2 bits) at the same splits,
                 through ``splitcodec.eval.evaluate_codec`` (one stream per sample, config by reference);
``wsae``         the shared autoencoder (committed weights) at every trained split and bit-width;
``independent``  the per-split autoencoders of the same architecture (``scripts/train_wsae.py
                 --independent``), coded the same way;
``report``       merges the parts into ``benchmarks/results/wsae.json`` (+ ``.csv``, ``wsae.png``), with
                 ``meta.params`` (shared vs independent parameters), ``meta.summary`` (best bit-width per
                 split, lowest bpe under 1 % loss beside ``lightweight``) and x265 records taken from
                 ``lightweight.json`` where the split matches (those are on the first 1000 images).

Learned codecs are measured with one stream per sample (real bytes, container included, config by
reference) but with the networks run on batches of 500 (``encode_batch``/``decode_batch``); their
``encode_ms``/``decode_ms`` are the one-sample ``encode``/``decode`` calls timed on the first 50 images.

    nice python benchmarks/wsae.py --parts anchors wsae independent report [--samples 10000]

The committed run: ``wsae`` and ``independent`` on 10k images; ``anchors`` on 10k at layer1, layer2,
stage1.down, stage2.down and ``--samples 1000`` at the other splits (time on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from splitcodec.bitstream import canonical_config, unpack
from splitcodec.codecs import get_codec
from splitcodec.eval import Record, evaluate_codec, load_records, prepare, run_meta, save_records

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BITS = (8, 6, 4, 3, 2)
CHUNK = 500
TIMED = 50


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def splits_of(model: str) -> list[str]:
    from splitcodec.codecs.wsae import load_trained

    return list(load_trained(model)[1])


def run_anchors(ctx) -> list[Record]:
    out = []
    for name in ("lightweight", "uniform"):
        for params in get_codec(name).sweep:
            rec = evaluate_codec(ctx, get_codec(name, **params))
            rec.extra["variant"] = name
            out.append(rec)
            log(f"  {ctx.model_name}@{ctx.split} {rec.label}: {rec.bpe:.3f} bpe, loss {rec.top1_loss:+.2f}")
    return out


def _time_single(codec, x: torch.Tensor) -> tuple[float, float]:
    t_enc = t_dec = 0.0
    for i in range(len(x)):
        t0 = time.perf_counter()
        data = codec.encode(x[i : i + 1], config="ref")
        t1 = time.perf_counter()
        codec.decode(data)
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
    return 1e3 * t_enc / len(x), 1e3 * t_dec / len(x)


def learned_record(ctx, codec, variant: str, latent: torch.Tensor) -> Record:
    """Code every test sample alone (batched networks), score it like ``evaluate_codec`` does."""
    feats = ctx.features
    sizes, headers, decoded = [], [], []
    t0 = time.perf_counter()
    for i in range(0, len(feats), CHUNK):
        streams = codec.encode_batch(feats[i : i + CHUNK], latent=latent[i : i + CHUNK])
        sizes += [len(s) for s in streams]
        headers.append(unpack(streams[0]).header_bytes)
        decoded.append(codec.decode_batch(streams))
    batch_ms = 1e3 * (time.perf_counter() - t0) / len(feats)
    with torch.no_grad():
        out = torch.cat([ctx.tail(d) for d in torch.cat(decoded).split(CHUNK)])
    enc_ms, dec_ms = _time_single(codec, feats[:TIMED])
    elements = int(feats[0].numel())
    mean_bytes = float(np.mean(sizes))
    top1 = float((out.argmax(1) == ctx.labels).float().mean() * 100)
    cos = torch.nn.functional.cosine_similarity(out.double(), ctx.ref_out.double(), dim=1).mean()
    return Record(
        model=ctx.model_name, split=ctx.split, codec=codec.codec_id, params=codec.params(), samples=len(feats),
        bpe=mean_bytes * 8 / elements, bytes_per_sample=mean_bytes, top1=top1, top1_ref=ctx.top1_ref,
        top1_loss=ctx.top1_ref - top1, agreement=float((out.argmax(1) == ctx.ref_out.argmax(1)).float().mean() * 100),
        encode_ms=enc_ms, decode_ms=dec_ms, bpp=mean_bytes * 8 / ctx.input_pixels, cosine=float(cos),
        elements=elements, header_bytes=float(np.mean(headers)), config_bytes=len(canonical_config(codec.get_config())),
        extra={"variant": variant, "batched_codec_ms": batch_ms},
    )


def run_learned(ctx, independent: bool) -> list[Record]:
    from splitcodec.codecs.wsae import WSAECodec, register_weights

    if independent:
        register_weights(f"{ctx.model_name}@{ctx.split}", RESULTS / "wsae_baselines" / f"{ctx.model_name}-{ctx.split}.pt")
    out, latent = [], None
    for bits in BITS:
        if independent:
            codec = WSAECodec(model=f"{ctx.model_name}@{ctx.split}", bits=bits)
        else:
            codec = WSAECodec(model=ctx.model_name, split=ctx.split, bits=bits)
        if latent is None:  # the analysis does not depend on the bit-width: run it once per split
            latent = torch.cat([codec.analyse(f) for f in ctx.features.split(CHUNK)])
        rec = learned_record(ctx, codec, "wsae (independent per split)" if independent else "wsae (shared)", latent)
        if independent:
            rec.codec, rec.params = "wsae-independent", {"model": ctx.model_name, "split": ctx.split, "bits": bits}
        out.append(rec)
        log(f"  {rec.label}: {rec.bpe:.3f} bpe, loss {rec.top1_loss:+.2f}, enc {rec.encode_ms:.2f} dec {rec.decode_ms:.2f} ms")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["anchors", "wsae", "independent", "report"])
    ap.add_argument("--models", nargs="+", default=["ref-resnet", "ref-darknet"])
    ap.add_argument("--splits", nargs="*", help="only these splits (default: every trained split)")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=str(REPO / ".cache" / "bench"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for part in [p for p in args.parts if p != "report"]:
        for model in args.models:
            for split in [s for s in splits_of(model) if not args.splits or s in args.splits]:
                path = cache / f"{part}-{model}-{split}.json"
                if path.exists():
                    continue
                log(f"{part} {model}@{split}")
                ctx = prepare(model, split, samples=args.samples)
                recs = run_anchors(ctx) if part == "anchors" else run_learned(ctx, part == "independent")
                save_records(recs, path, run_meta(part=part))
    if "report" in args.parts:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from wsae_report import report  # benchmarks/wsae_report.py

        report(cache, args.models, args.samples)


if __name__ == "__main__":
    main()
