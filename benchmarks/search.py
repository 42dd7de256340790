"""Partition search benchmark: predicted vs measured end-to-end latency, as ``benchmarks/results/search.json``.

Two phases (``--phase accuracy``, ``--phase validate``; default both):

1. **accuracy** — bytes per sample and top-1 loss of every candidate setting on the full 10k Fashion-MNIST
   test set, through :func:`splitcodec.eval.evaluator.evaluate_codec`; written to
   ``benchmarks/results/search_records_<model>.json`` after each split (a rerun reuses what is there).
2. **validate** — re-times heads, tails and codecs (1 thread, repeats, medians) into a
   :class:`~splitcodec.search.ModelProfile`, searches split × codec × setting for 1, 10 and 100 Mbit/s,
   RTT 20 ms, max loss 1 pp, for two edge devices, and measures the chosen plans, the baselines and the
   best split end to end: the real edge client → emulated link (the in-process shaper) → ``splitcodec
   serve`` child process (cloud-only: a server that takes the picture, :func:`serve_picture`).  Medians
   of per-sample end-to-end times.  The edge devices: this machine (``local``), and ``x20``, a device 20×
   slower, emulated by running the real head and encoder and then sleeping 19× their profiled medians
   (a fixed time: stretching the measured time would also stretch the cold-cache and scheduling noise of
   a shared machine 20×).  The HTTP transport (request headers and JSON answer, counted by the shaper,
   and one fixed per-request time) is calibrated once on an unshaped link, on one candidate, and applied
   unchanged to every shaped link and candidate.

The candidate space (chosen to fit the CPU budget of a shared 2-core machine): per model four or five
split points (those with a ReLU/leaky-ReLU cut, plus ``flatten``) × ``raw`` fp32/fp16, ``uniform`` 8/6/4 bit,
``lightweight`` λ = 0.01/0.03/0.1/0.3 (``flatten``: raw and uniform only); cloud-only: ``image-jpeg`` and
``image-webp`` default sweeps; edge-only.  Left out: ``nearlossless`` (≈50 ms/sample to encode at the early
splits here, so 10k samples cost ≈15 min per split, and it is slower than the link time it saves),
``hevc``/``av1``/``jpegxl``/``ffv1``/``png``/``webp`` mosaics and ``image-hevc`` (an external encoder process
per sample: tens of ms each, never competitive on latency).

Usage::

    nice python benchmarks/search.py --phase accuracy          # ≈30–60 min on 2 shared cores
    python benchmarks/search.py --phase validate               # ≈10 min
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from splitcodec.eval import load_records, run_meta, save_records
from splitcodec.search import (
    CLOUD_ONLY, EDGE_ONLY, Candidate, Network, Transport, device_profile, measure_model, plot_latency_vs_split, predict,
    run_search,
)
# The test harness of the runtime, in one place: the shaper and the server child process move to
# splitcodec.testing (link, server) — change these two lines then.
from splitcodec.serve.client import EdgeClient
from splitcodec.serve.server import READY_LINE
from splitcodec.serve.streaming import stream_dataset
from splitcodec.testing.link import LinkSpec, ShapingProxy
from splitcodec.testing.process import ServerProcess

RESULTS = Path(__file__).parent / "results"

FEATURES = ["raw:dtype=float32", "raw:dtype=float16", "uniform:bits=8", "uniform:bits=6", "uniform:bits=4",
            "lightweight:lam=0.01", "lightweight:lam=0.03", "lightweight:lam=0.1", "lightweight:lam=0.3"]
SMALL = ["raw:dtype=float32", "raw:dtype=float16", "uniform:bits=8"]
IMAGES = ["image-jpeg", "image-webp"]
SPACE = {
    "ref-resnet": {"stem": FEATURES, "layer2": FEATURES, "layer3": FEATURES, "flatten": SMALL},
    "ref-darknet": {"stem": FEATURES, "stage1.down": FEATURES, "stage2.down": FEATURES, "stage3.down": FEATURES,
                    "flatten": SMALL},
}


def records_path(model: str) -> Path:
    return RESULTS / f"search_records_{model}.json"


def _key(r) -> tuple:
    return (r.model, r.split, r.codec, json.dumps(r.params, sort_keys=True))


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def accuracy_phase(models: list[str], samples: int | None) -> None:
    """Evaluate every candidate on the test set, saving records after each split (reruns resume)."""
    for model in models:
        path = records_path(model)
        records = load_records(path) if path.exists() else []
        for i, (split, specs) in enumerate(SPACE[model].items()):
            def keep(rec, records=records, path=path) -> None:
                key = _key(rec)
                records[:] = [r for r in records if _key(r) != key] + [rec]
                save_records(records, path, run_meta(command="benchmarks/search.py --phase accuracy", samples=samples))

            measure_model(model, [split], {split: specs}, IMAGES if i == 0 else (), samples=samples, timing_samples=3,
                          repeats=1, progress=log, records=list(records), on_record=keep)
            log(f"{len(records)} records in {path}")


# --- validation: the real edge → emulated link → server path ---------------------------------------

EDGES = ("local", "x20")
BANDWIDTHS = (1.0, 10.0, 100.0)
RTT_MS = 20.0
MAX_LOSS = 1.0


def serve_picture(model: str) -> None:
    """Run a server that takes the *picture* (``image-*`` codecs) and runs the whole model: cloud-only."""
    from splitcodec.data import load_dataset
    from splitcodec.models import load
    from splitcodec.serve.config import ServeConfig
    from splitcodec.serve.errors import WrongCodec
    from splitcodec.serve.server import run_server
    from splitcodec.serve.service import FeatureService

    torch.set_num_threads(1)
    net = load(model).eval()
    cfg = net.splitcodec_cfg
    data = load_dataset(cfg.dataset, "calibration")

    class Picture(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return net(data.normalize(x.round().clamp(0, 255).to(torch.uint8)))

    class PictureService(FeatureService):
        def _check_codec(self, codec) -> None:
            if codec.domain != "image":
                raise WrongCodec(f"codec {codec.codec_id!r} does not code pictures")

    service = PictureService(Picture(), tuple(cfg.input_size), model_name=cfg.name, split="input")
    run_server(service, ServeConfig(port=0), announce=lambda url: print(f"{READY_LINE}{url}", flush=True))


class PictureServer(ServerProcess):
    """:func:`serve_picture` as a child process (this script with ``--serve-picture``)."""

    def __init__(self, model: str) -> None:
        super().__init__([])
        self.cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-picture", model]


class EmulatedEdge(EdgeClient):
    """The edge device emulated here: the real head and encoder run, then the edge thread sleeps a fixed
    ``extra_head_ms`` + ``extra_enc_ms`` (a device ``s``× slower: (s − 1) × this machine's profiled medians)."""

    def __init__(self, url: str, *, extra_head_ms: float = 0.0, extra_enc_ms: float = 0.0, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self.extra = (extra_head_ms, extra_enc_ms)

    def encode(self, x: torch.Tensor) -> tuple[bytes, float, float]:
        stream, head_ms, enc_ms = super().encode(x)
        if sum(self.extra) > 0:
            time.sleep(sum(self.extra) / 1e3)
        return stream, head_ms + self.extra[0], enc_ms + self.extra[1]


def _extra(cand: Candidate, slowdown: float) -> tuple[float, float]:
    """The emulated device's time beyond this machine's: the candidate's (scaled) times × (s − 1) / s."""
    f = (slowdown - 1.0) / slowdown
    return f * cand.head_ms, f * cand.encode_ms


def _summary(totals: list[float]) -> dict:
    a = np.asarray(totals)
    return {"measured_ms": float(np.median(a)), "measured_mean_ms": float(a.mean()),
            "measured_p10_ms": float(np.percentile(a, 10)), "measured_p90_ms": float(np.percentile(a, 90)), "n": int(a.size)}


def measure_sent(url: str, head: nn.Module, codec, images: torch.Tensor, spec: LinkSpec, extra: tuple[float, float],
                 n: int) -> dict:
    """Median end-to-end ms of ``n`` samples one at a time through the shaper; HTTP bytes and parts too."""
    host, port = url.split("//")[1].rsplit(":", 1)
    with ShapingProxy(spec, (host, int(port))) as proxy:
        async def go():
            async with EmulatedEdge(proxy.url(url), head=head, codec=codec, connections=1, extra_head_ms=extra[0],
                                    extra_enc_ms=extra[1]) as edge:
                await edge.aregister()
                await stream_dataset(edge, images[:5], None, concurrency=1, register=False)  # warm-up
                before = (proxy.bytes_up, proxy.bytes_down)
                rep = await stream_dataset(edge, images[5 : 5 + n], None, concurrency=1, register=False, time_limit_s=120)
                return rep, (proxy.bytes_up - before[0], proxy.bytes_down - before[1])

        rep, (up, down) = asyncio.run(go())
    infs = [i for i in rep.inferences if i is not None and i.reply.ok]
    if len(infs) < n:
        raise RuntimeError(f"only {len(infs)}/{n} answered: {rep.kinds}")
    stream = float(np.mean([i.stream_bytes for i in infs]))
    parts = {k: float(np.median([i.timing[k] for i in infs])) for k in infs[0].timing}
    # everything but head, encode, queue, decode and tail: the HTTP stacks, the relay, the thread hand-offs
    parts["overhead_ms"] = float(np.median([t["total_ms"] - sum(t[k] for k in ("head_ms", "encode_ms", "queue_ms", "decode_ms", "tail_ms"))
                                            for t in (i.timing for i in infs)]))
    return {**_summary([i.total_ms for i in infs]), "stream_bytes": stream, "http_up_bytes": up / len(infs) - stream,
            "http_down_bytes": down / len(infs), "parts_ms": parts}


def measure_edge_only(net: nn.Module, images: torch.Tensor, extra_ms: float, n: int) -> dict:
    """The whole model on the edge, one sample at a time (plus the emulated device's extra time)."""
    totals = []
    with torch.inference_mode():
        for i in range(5 + n):
            t0 = time.perf_counter()
            net(images[i : i + 1])
            if extra_ms > 0:
                time.sleep(extra_ms / 1e3)
            if i >= 5:
                totals.append(1e3 * (time.perf_counter() - t0))
    return _summary(totals)


def _edge_side(model: str, cand: Candidate, n: int):
    """(head, fitted codec, inputs) for a candidate, fitted exactly as the evaluator fits it."""
    from splitcodec.codecs.registry import get_codec
    from splitcodec.eval import prepare

    codec = get_codec(cand.codec, **cand.params)
    if cand.kind == CLOUD_ONLY:
        ctx = prepare(model, None, samples=n + 5)
        codec.fit(ctx.calibration.raw.float())
        return nn.Identity(), codec, ctx.dataset.raw.float()
    ctx = prepare(model, cand.split, samples=n + 5)
    codec.fit(ctx.calib_features, activation=ctx.activation)
    return ctx.head, codec, ctx.dataset.images


def _server(model: str, split: str):
    return PictureServer(model) if split == "input" else ServerProcess(
        ["--model", model, "--split", split, "--threads", "1", "--port", "0"])


def calibrate_transport(model: str, cand: Candidate, n: int) -> tuple[Transport, dict]:
    """HTTP bytes each way, counted by the shaper on an unshaped link, and one fixed per-request time:
    the measured median there minus everything else the model predicts for ``cand`` (so it holds the
    HTTP stacks, the relay, thread hand-offs, and how much slower parts run in place than in the profile)."""
    head, codec, images = _edge_side(model, cand, n)
    with _server(model, cand.split) as server:
        m = measure_sent(server.url, head, codec, images, LinkSpec(), (0.0, 0.0), n)
    bytes_only = Transport(round(m["http_up_bytes"], 1), round(m["http_down_bytes"], 1), 0.0)
    rest = predict(cand, Network(1e9, 0.0), bytes_only).total_ms
    t = Transport(bytes_only.request_bytes, bytes_only.response_bytes, round(m["measured_ms"] - rest, 3))
    log(f"transport (unshaped, {cand.label}): {t}; measured {m['measured_ms']:.2f} ms, the rest predicted {rest:.2f} ms")
    return t, m


def measure_jobs(model: str, jobs: list[dict], n: int) -> None:
    """Measure each job (a candidate on a link with an edge slowdown); one server per split."""
    from splitcodec.eval import prepare

    def done(job: dict) -> None:
        err = 100 * (job["predicted_ms"] - job["measured_ms"]) / job["measured_ms"]
        log(f"  {model} edge {job['edge']:>5} {job['bandwidth_mbit']:>5g} Mbit/s {job['candidate'].label:<40} predicted "
            f"{job['predicted_ms']:7.2f} ms, measured {job['measured_ms']:7.2f} ms ({err:+.1f} %)")

    ctx = prepare(model, None, samples=n + 5)
    for job in [j for j in jobs if j["candidate"].kind == EDGE_ONLY]:
        job.update(measure_edge_only(ctx.model, ctx.dataset.images, sum(_extra(job["candidate"], job["slowdown"])), n))
        done(job)
    by_split: dict[str, list[dict]] = {}
    for job in jobs:
        if job["candidate"].kind != EDGE_ONLY:
            by_split.setdefault(job["candidate"].split, []).append(job)
    for split, group in by_split.items():
        fitted: dict[str, tuple] = {}
        with _server(model, split) as server:
            for job in group:
                cand = job["candidate"]
                if cand.label not in fitted:
                    fitted[cand.label] = _edge_side(model, cand, n)
                head, codec, images = fitted[cand.label]
                job.update(measure_sent(server.url, head, codec, images, LinkSpec(job["bandwidth_mbit"] * 1e6, RTT_MS),
                                        _extra(cand, job["slowdown"]), n))
                done(job)


def _best_split(res):
    """The fastest candidate within the budget that cuts the model (features cross the link)."""
    splits = [s for s in res.per_split.values() if s.candidate.kind == "split"]
    return min(splits, key=lambda s: s.total_ms) if splits else None


def _jobs(model: str, edge: str, slowdown: float, results) -> list[dict]:
    """What to measure per network: the choice, the baselines and the best split (each once per network)."""
    jobs: dict[tuple, dict] = {}
    for res in results:
        for role, scored in (("choice", res.choice), ("edge_only", res.edge_only), ("cloud_only", res.cloud_only),
                             ("best_uncompressed", res.best_uncompressed), ("best_split", _best_split(res))):
            if scored is None:
                continue
            key = (scored.candidate.label, res.network.bandwidth_mbit)
            job = jobs.setdefault(key, {"model": model, "edge": edge, "slowdown": slowdown, "candidate": scored.candidate,
                                        "bandwidth_mbit": res.network.bandwidth_mbit, "predicted_ms": scored.total_ms,
                                        "breakdown": scored.breakdown.to_json(), "roles": []})
            job["roles"].append(role)
    return list(jobs.values())


def _row(model: str, edge: str, res, exhaustive_res, jobs: list[dict]) -> dict:
    c = res.choice.candidate
    bw = res.network.bandwidth_mbit
    measured = {role: j for j in jobs if j["bandwidth_mbit"] == bw for role in j["roles"]}
    ms = lambda s: None if s is None else s.total_ms  # noqa: E731
    got = lambda role: measured[role]["measured_ms"] if role in measured else None  # noqa: E731
    pred, meas = res.choice.total_ms, got("choice")
    bases = [b for b in (res.edge_only, res.cloud_only, res.best_uncompressed) if b is not None]
    mbases = [got(r) for r in ("edge_only", "cloud_only", "best_uncompressed") if got(r) is not None]
    return {
        "model": model, "bandwidth_mbit": bw, "rtt_ms": res.network.rtt_ms, "max_loss": res.max_loss,
        "split": c.split, "codec": c.codec, "params": c.params, "predicted_ms": pred, "measured_ms": meas,
        "edge_only_ms": ms(res.edge_only), "cloud_only_ms": ms(res.cloud_only),
        "best_uncompressed_ms": ms(res.best_uncompressed), "exhaustive_best_ms": exhaustive_res.choice.total_ms,
        # beyond the format
        "edge": edge, "kind": c.kind, "top1_loss": c.top1_loss, "bytes_per_sample": c.bytes_per_sample,
        "cloud_only_plan": None if res.cloud_only is None else res.cloud_only.candidate.label,
        "best_uncompressed_plan": None if res.best_uncompressed is None else res.best_uncompressed.candidate.label,
        "measured_edge_only_ms": got("edge_only"), "measured_cloud_only_ms": got("cloud_only"),
        "measured_best_uncompressed_ms": got("best_uncompressed"),
        "best_split_plan": None if _best_split(res) is None else _best_split(res).candidate.label,
        "best_split_ms": ms(_best_split(res)), "measured_best_split_ms": got("best_split"),
        "prediction_error_pct": 100 * (pred - meas) / meas, "scored_pruned": res.evaluated,
        "scored_exhaustive": exhaustive_res.evaluated,
        "targets": {
            "not_slower_predicted": all(pred <= b.total_ms + 1e-9 for b in bases),
            "not_slower_measured": all(meas <= b * 1.05 for b in mbases),
            "within_5pct_of_exhaustive": pred <= 1.05 * exhaustive_res.choice.total_ms,
            "prediction_within_15pct": abs(pred - meas) <= 0.15 * meas,
        },
    }


def validate_phase(models: list[str], args) -> None:
    profiles = {}
    for model in models:
        records = load_records(records_path(model))
        log(f"profiling {model}: timings ({args.timing_samples} samples × {args.repeats} repeats), bytes/loss from "
            f"{len(records)} records")
        profiles[model], _ = measure_model(model, list(SPACE[model]), SPACE[model], IMAGES, samples=200,
                                           timing_samples=args.timing_samples, repeats=args.repeats, records=records)
        profiles[model].save(RESULTS / f"search_profile_{model}.json")
    first = models[0]
    [probe] = run_search(profiles[first], [Network(100, RTT_MS)], edge=device_profile("local"), cloud=device_profile("local"))
    calib = min((s for s in probe.per_split.values() if s.candidate.kind == "split"),
                key=lambda s: s.candidate.bytes_per_sample)  # the smallest stream: calibrate on the stacks, not the bytes
    transport, calib_m = calibrate_transport(first, calib.candidate, args.samples)
    rows, all_jobs, results = [], [], {}
    for model in models:
        jobs = []
        nets = [Network(b, RTT_MS) for b in BANDWIDTHS]
        for edge in EDGES:
            dev = device_profile(edge)
            kw = dict(edge=dev, cloud=device_profile("local"), max_loss=MAX_LOSS, transport=transport)
            res, ex = run_search(profiles[model], nets, **kw), run_search(profiles[model], nets, method="exhaustive", **kw)
            results[(model, edge)] = res
            jobs += _jobs(model, edge, dev.slowdown, res)
            rows += [(model, edge, r, e) for r, e in zip(res, ex)]
        measure_jobs(model, jobs, args.samples)
        all_jobs += jobs
    choices = [_row(m, e, r, x, [j for j in all_jobs if j["model"] == m and j["edge"] == e]) for m, e, r, x in rows]
    for c in choices:
        log(f"{c['model']:<12} edge {c['edge']:>5} {c['bandwidth_mbit']:>5g} Mbit/s: {c['kind']:<10} {c['split']} "
            f"{c['codec']} {c['params'] if c['codec'] else ''} predicted {c['predicted_ms']:.2f} measured "
            f"{c['measured_ms']:.2f} ({c['prediction_error_pct']:+.1f} %) targets {c['targets']}")
    measurements = [{**{k: v for k, v in j.items() if k != "candidate"}, "plan": j["candidate"].label,
                     "kind": j["candidate"].kind, "prediction_error_pct": 100 * (j["predicted_ms"] - j["measured_ms"]) / j["measured_ms"]}
                    for j in all_jobs]
    doc = {"meta": run_meta(command="benchmarks/search.py " + " ".join(sys.argv[1:]), loadavg=os.getloadavg(),
                            rtt_ms=RTT_MS, max_loss=MAX_LOSS, edges={e: f"{device_profile(e).slowdown:g}× this machine's profiled compute, 1 thread" for e in EDGES},
                            samples_per_measurement=args.samples, link="in-process shaper (splitcodec.testing.link.ShapingProxy)"),
           "transport": {**asdict(transport), "calibrated_on": calib.candidate.label, "calibration": calib_m},
           "choices": choices, "measurements": measurements,
           "summary": {k: f"{sum(c['targets'][k] for c in choices)}/{len(choices)}" for k in choices[0]["targets"]}}
    out = RESULTS / "search.json"
    out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    plot(profiles, results, measurements, out.with_suffix(".png"))
    log(f"wrote {out} and {out.with_suffix('.png')}; targets met: {doc['summary']}")


def plot(profiles: dict, results: dict, measurements: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(profiles)
    fig, axes = plt.subplots(len(models), len(EDGES) + 1, figsize=(6 * (len(EDGES) + 1), 4.6 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        for k, edge in enumerate(EDGES):
            plot_latency_vs_split(profiles[model], results[(model, edge)], path, ax=axes[i][k],
                                  title=f"{model}, edge {edge}: predicted, best ≤ {MAX_LOSS:g} pp loss per split")
        ax = axes[i][-1]
        ms = [m for m in measurements if m["model"] == model]
        for edge, marker in zip(EDGES, "os"):
            sel = [m for m in ms if m["edge"] == edge]
            ax.scatter([m["measured_ms"] for m in sel], [m["predicted_ms"] for m in sel], marker=marker,
                       c=[np.log10(m["bandwidth_mbit"]) for m in sel], cmap="viridis", label=f"edge {edge}")
        lim = [min(min(m["measured_ms"], m["predicted_ms"]) for m in ms) * 0.8, max(max(m["measured_ms"], m["predicted_ms"]) for m in ms) * 1.2]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.fill_between(lim, [v * 0.85 for v in lim], [v * 1.15 for v in lim], color="grey", alpha=0.2, label="±15 %")
        ax.set(xscale="log", yscale="log", xlabel="measured ms (median)", ylabel="predicted ms",
               title=f"{model}: predicted vs measured (colour: 1 / 10 / 100 Mbit/s)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phase", choices=["accuracy", "validate", "all"], default="all")
    ap.add_argument("--models", default="ref-resnet,ref-darknet")
    ap.add_argument("--accuracy-samples", type=int, default=None, help="test samples for accuracy (default: all 10k)")
    ap.add_argument("--samples", type=int, default=40, help="samples per end-to-end measurement")
    ap.add_argument("--timing-samples", type=int, default=30, help="samples per profile timing")
    ap.add_argument("--repeats", type=int, default=5, help="repeats per profile timing (median)")
    ap.add_argument("--serve-picture", metavar="MODEL", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.serve_picture:
        serve_picture(args.serve_picture)
        return 0
    models = args.models.split(",")
    if args.phase in ("accuracy", "all"):
        accuracy_phase(models, args.accuracy_samples)
    if args.phase in ("validate", "all"):
        validate_phase(models, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
