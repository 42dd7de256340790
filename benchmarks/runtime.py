"""Runtime benchmark: the edge→server service on loopback, as ``benchmarks/results/runtime.json``.

What it measures (each part bounded in requests and time, loopback / own network namespace only):

1. throughput and p50/p99 latency of ``/v1/predict`` at concurrency 1, 8, 64 — single process
   (``splitcodec serve``) and Ray Serve with 2 replicas (``splitcodec serve --ray --replicas 2``); the
   load generator replays ready-made bitstreams of the test set (server capacity, not edge compute);
2. accuracy through the service vs :func:`splitcodec.eval.evaluate_codec` for the same fitted codec;
3. end-to-end latency over emulated 1/10/100 Mbit/s links (RTT fixed), next to the latency predicted
   from the measured parts: ``head + encode + bytes·8/B + RTT + decode + tail`` (and the same with the
   HTTP bytes and fixed HTTP overhead, measured on the unshaped link);
4. a fault test: 1,000 mixed good/bad requests (10 kinds of bad), then an overload burst against a
   small queue; every answer is checked and the server must still be alive.

Usage::

    nice python benchmarks/runtime.py                      # ref-resnet @ default split, uniform:bits=4
    python benchmarks/runtime.py --codec lightweight --quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from splitcodec.codecs.registry import get_codec
from splitcodec.eval import Record, evaluate_codec, prepare, run_meta, save_records
from splitcodec.pipeline import codec_from_spec
from splitcodec.serve.client import EdgeClient
from splitcodec.serve.streaming import load_test, stream_dataset
from splitcodec.testing import LinkSpec, NetnsLink, ServerProcess, ShapingProxy, bad_streams, kernel_qdiscs

RESULTS = Path(__file__).parent / "results"


def log(*args) -> None:
    print(*args, flush=True)


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def base_record(ctx, codec, evaluated: Record, experiment: str, **extra) -> Record:
    """A record carrying the evaluator's rate/accuracy for this codec, plus runtime figures in extra."""
    return Record(
        model=ctx.model_name, split=ctx.split, codec=codec.codec_id, params=codec.params(),
        samples=evaluated.samples, bpe=evaluated.bpe, bytes_per_sample=evaluated.bytes_per_sample,
        top1=evaluated.top1, top1_ref=evaluated.top1_ref, top1_loss=evaluated.top1_loss,
        agreement=evaluated.agreement, encode_ms=evaluated.encode_ms, decode_ms=evaluated.decode_ms,
        bpp=evaluated.bpp, elements=evaluated.elements, header_bytes=evaluated.header_bytes,
        config_bytes=evaluated.config_bytes, extra={"experiment": experiment, "loadavg": loadavg(), **extra},
    )


async def _load(url: str, codec, streams: list[bytes], concurrency: int, n: int, time_limit: float):
    async with EdgeClient(url, connections=max(concurrency, 1)) as edge:
        await edge.aregister(codec.get_config())
        warm = await load_test(edge, streams[: min(200, len(streams))], concurrency=min(concurrency, 8))
        reqs = [streams[i % len(streams)] for i in range(n)]
        report = await load_test(edge, reqs, concurrency=concurrency, time_limit_s=time_limit)
        server = (await edge.ametrics()).body
        return warm, report, server


def throughput(ctx, codec, evaluated, url: str, deployment: str, streams, args) -> list[Record]:
    """Each concurrency ``args.repeats`` times (the machine is shared): the run with the median throughput."""
    records = []
    for c in (1, 8, 64):
        n = args.requests if c > 1 else max(args.requests // 2, 100)
        runs = [asyncio.run(_load(url, codec, streams, c, n, args.time_limit))[1:] for _ in range(args.repeats)]
        order = sorted(range(len(runs)), key=lambda k: runs[k][0].throughput_rps)
        rep, server = runs[order[len(order) // 2]]
        lat = rep.latency_ms
        spread = [(round(r.throughput_rps, 1), round(r.latency_ms["p99"] or 0, 2)) for r, _ in runs]
        log(f"  {deployment:>6} c={c:<3} {rep.throughput_rps:8.1f} req/s  p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms"
            f"  ({rep.completed}/{rep.requests} sent, {rep.kinds}; runs (req/s, p99): {spread}; load {loadavg()[0]})")
        records.append(base_record(
            ctx, codec, evaluated, "throughput", deployment=deployment, concurrency=c, requests=rep.requests,
            completed=rep.completed, answers=rep.kinds, wall_s=rep.wall_s, throughput_rps=rep.throughput_rps,
            latency_ms=lat, runs_rps_p99=spread, mean_stream_bytes=rep.bytes_sent / max(rep.completed, 1),
            server_mean_batch=server.get("mean_batch"), server_latency_ms=server.get("latency_ms"),
            target_met=bool(rep.throughput_rps >= 500 and lat["p99"] is not None and lat["p99"] < 50),
        ))
    return records


def accuracy(ctx, codec, evaluated, url: str, args) -> Record:
    async def go():
        async with EdgeClient(url, head=ctx.head, codec=codec, connections=8) as edge:
            return await stream_dataset(edge, ctx.dataset.images, ctx.labels, concurrency=8, time_limit_s=args.time_limit)

    rep = asyncio.run(go())
    # the evaluator's per-sample predictions: the same streams decoded and run through the tail locally
    with torch.inference_mode():
        local = []
        for i in range(len(ctx.features)):
            y = codec.decode(codec.encode(ctx.features[i : i + 1], config="ref"))
            local.append(int(ctx.tail(y).argmax(1)))
    same = sum(p == q for p, q in zip(rep.predictions, local))
    log(f"  accuracy: service top-1 {rep.top1:.2f} %, evaluator {evaluated.top1:.2f} % "
        f"({same}/{len(local)} identical predictions), {rep.mean_stream_bytes:.1f} B/sample")
    return base_record(
        ctx, codec, evaluated, "accuracy", deployment="single", concurrency=8, service_top1=rep.top1,
        evaluator_top1=evaluated.top1, identical_predictions=same, samples_answered=rep.ok,
        service_bytes_per_sample=rep.mean_stream_bytes, evaluator_bytes_per_sample=evaluated.bytes_per_sample,
        throughput_sps=rep.throughput_sps, latency_ms=rep.latency_ms, parts_ms=rep.parts_ms,
    )


def wire_bytes(url: str, ctx, codec) -> tuple[float, float, dict]:
    """HTTP bytes per request each way, and the unshaped parts, through a counting (unshaped) relay."""
    host, port = url.split("//")[1].rsplit(":", 1)

    async def go(proxy_url: str):
        async with EdgeClient(proxy_url, head=ctx.head, codec=codec, connections=1) as edge:
            await edge.aregister()
            return await stream_dataset(edge, ctx.dataset.images[:100], None, concurrency=1, register=False)

    with ShapingProxy(LinkSpec(), (host.strip("[]"), int(port))) as proxy:
        asyncio.run(go(proxy.url(url)))  # warm-up + register
        up0, down0 = proxy.bytes_up, proxy.bytes_down
        rep = asyncio.run(go(proxy.url(url)))
        n = rep.ok
        return (proxy.bytes_up - up0) / n, (proxy.bytes_down - down0) / n, rep.parts_ms


def _link_run(ctx, codec, spec: LinkSpec, kernel: bool, server_args: list[str], args):
    """Stream samples one at a time over one emulated link; returns (report, mode)."""
    link = NetnsLink(spec).up() if kernel else None
    proxy = None
    try:
        prefix, host = (link.prefix, link.server_host) if link else ([], "127.0.0.1")
        with ServerProcess([*server_args, "--host", host, "--port", "0"], prefix=prefix) as server:
            if link is not None:
                client_url, mode = link.front(server.url), f"kernel:{link.mode}"
            else:
                hostname, port = server.url.split("//")[1].rsplit(":", 1)
                proxy = ShapingProxy(spec, (hostname, int(port))).start()
                client_url, mode = proxy.url(server.url), "proxy"

            async def go():
                async with EdgeClient(client_url, head=ctx.head, codec=codec, connections=1) as edge:
                    await edge.aregister()
                    await stream_dataset(edge, ctx.dataset.images[:10], None, concurrency=1, register=False)  # warm-up
                    n = args.link_samples
                    return await stream_dataset(edge, ctx.dataset.images[:n], ctx.labels[:n], concurrency=1,
                                                register=False, time_limit_s=args.time_limit)

            return asyncio.run(go()), mode
    finally:
        if proxy is not None:
            proxy.stop()
        if link is not None:
            link.down()


def link_latency(ctx, codec, evaluated, args, server_args: list[str], wire: tuple[float, float, dict]) -> list[Record]:
    """Measured end-to-end latency per emulated link next to the latency model built from measured parts.

    Three predictions per sample, all from parts measured in the same run:
    ``formula`` = head + encode + stream_bytes·8/B + RTT + decode + tail (the link latency model);
    ``wire`` = the same with the HTTP bytes both ways (request headers, JSON answer) in place of the
    stream; ``calibrated`` = ``wire`` + one constant (HTTP stacks, emulator timer slack) fitted at
    100 Mbit/s, where the transfer time is negligible, and applied unchanged to 1 and 10 Mbit/s.
    """
    records = []
    up_b, down_b, _ = wire
    qd = kernel_qdiscs()
    kernel_ok = os.geteuid() == 0 and not args.no_netns and (qd.get("netem") is None or qd.get("tbf") is None)
    runs = []
    for mbit in (100, 10, 1):
        spec = LinkSpec(bandwidth_bps=mbit * 1e6, rtt_ms=args.rtt)
        for kernel in ([False, True] if kernel_ok else [False]):
            rep, mode = _link_run(ctx, codec, spec, kernel, server_args, args)
            infs = [i for i in rep.inferences if i is not None and i.reply.ok]
            measured = np.array([i.total_ms for i in infs])
            parts = np.array([i.timing["head_ms"] + i.timing["encode_ms"] + i.timing["decode_ms"] + i.timing["tail_ms"]
                              for i in infs])
            stream = np.array([i.stream_bytes for i in infs], dtype=float)
            formula = parts + np.array([spec.predict_ms(b) for b in stream])
            wired = parts + np.array([spec.predict_ms(b + up_b - stream.mean(), down_b) for b in stream])
            runs.append((mbit, mode, spec, rep, infs, measured, formula, wired, stream))
    constant = {mode: float(np.mean(m - w)) for mbit, mode, _, _, _, m, _, w, _ in runs if mbit == 100}
    for mbit, mode, spec, rep, infs, measured, formula, wired, stream in sorted(runs, key=lambda r: (r[0], r[1])):
        calibrated = wired + constant[mode]
        err = lambda p: float(100 * (np.mean(p) - np.mean(measured)) / np.mean(measured))  # noqa: E731
        log(f"  {mbit:>3} Mbit/s rtt {args.rtt:g} ms [{mode:>16}]: measured {np.mean(measured):6.2f} ms; predicted "
            f"{np.mean(formula):6.2f} ({err(formula):+5.1f} %), with HTTP bytes {np.mean(wired):6.2f} ({err(wired):+5.1f} %), "
            f"+{constant[mode]:.2f} ms constant {np.mean(calibrated):6.2f} ({err(calibrated):+5.1f} %); {stream.mean():.0f} B stream")
        parts_ms = {k: float(np.mean([i.timing[k] for i in infs])) for k in infs[0].timing}
        records.append(base_record(
            ctx, codec, evaluated, "link", bandwidth_mbit=mbit, rtt_ms=args.rtt, link_mode=mode, samples_sent=len(infs),
            measured_ms=float(np.mean(measured)), measured_p50_ms=float(np.median(measured)),
            measured_p99_ms=float(np.percentile(measured, 99)),
            predicted_ms=float(np.mean(formula)), predicted_error_pct=err(formula),
            predicted_wire_ms=float(np.mean(wired)), predicted_wire_error_pct=err(wired),
            predicted_calibrated_ms=float(np.mean(calibrated)), predicted_calibrated_error_pct=err(calibrated),
            calibration_constant_ms=constant[mode], parts_ms=parts_ms, stream_bytes=float(stream.mean()),
            wire_bytes_up=up_b, wire_bytes_down=down_b, service_top1=rep.top1,
        ))
    return records


def faults(ctx, codec, evaluated, url: str, args) -> Record:
    shape = tuple(ctx.features.shape[1:])
    bad = bad_streams(codec, shape, max_stream_bytes=1 << 22)
    goods = [codec.encode(ctx.features[i : i + 1], config="ref") for i in range(min(200, len(ctx.features)))]
    with torch.inference_mode():
        expect = [ctx.tail(codec.decode(s)) for s in goods]
    rng = np.random.default_rng(0)
    plan = [("good", int(rng.integers(len(goods)))) if rng.random() < 0.5 else ("bad", int(rng.integers(len(bad))))
            for _ in range(args.fault_requests)]
    streams = [goods[i] if kind == "good" else bad[i].data for kind, i in plan]

    async def go():
        async with EdgeClient(url, connections=16) as edge:
            await edge.aregister(codec.get_config())
            rep = await load_test(edge, streams, concurrency=16, time_limit_s=args.time_limit)
            alive = (await edge.ahealth()).ok
            return rep, alive

    rep, alive = asyncio.run(go())
    good_ok = good_wrong = bad_ok = bad_wrong = 0
    wrong: list[str] = []
    for (kind, i), reply in zip(plan, rep.replies):
        if reply is None:
            continue
        if kind == "good":
            ref = expect[i][0]
            right = reply.ok and reply.body["class"] == int(ref.argmax()) and torch.allclose(torch.tensor(reply.body["output"]), ref, atol=1e-4)
            good_ok += right
            good_wrong += not right
        else:
            right = (reply.status, reply.kind) == (bad[i].status, bad[i].error) and bool(reply.detail)
            bad_ok += right
            bad_wrong += not right
            if not right:
                wrong.append(f"{bad[i].kind}: got {reply.status} {reply.kind}")
    log(f"  faults: {rep.completed}/{len(plan)} answered; good {good_ok} right / {good_wrong} wrong; "
        f"bad {bad_ok} refused as owed / {bad_wrong} not; alive {alive}; {rep.kinds}")
    return base_record(
        ctx, codec, evaluated, "faults", requests=len(plan), completed=rep.completed,
        good=good_ok + good_wrong, good_right=good_ok, bad=bad_ok + bad_wrong, bad_refused_as_owed=bad_ok,
        wrong=wrong[:20], answers=rep.kinds, server_alive=alive, wall_s=rep.wall_s,
    )


def overload(ctx, codec, evaluated, server_args: list[str], args) -> Record:
    stream = codec.encode(ctx.features[:1], config="ref")
    with ServerProcess([*server_args, "--port", "0", "--max-queue", "8", "--max-batch", "4"]) as server:
        async def go():
            async with EdgeClient(server.url, connections=256) as edge:
                await edge.aregister(codec.get_config())
                rep = await load_test(edge, [stream] * args.overload_requests, concurrency=256, time_limit_s=args.time_limit)
                after = await edge.asend(stream)
                return rep, after.ok, (await edge.ametrics()).body

        rep, ok_after, m = asyncio.run(go())
        alive = server.alive()
    log(f"  overload (queue 8, 256 in flight): {rep.kinds}; max queue seen {m['max_queue']}; "
        f"answers after: {ok_after}; alive {alive}")
    return base_record(
        ctx, codec, evaluated, "overload", requests=rep.requests, concurrency=256, max_queue=8, answers=rep.kinds,
        max_queue_seen=m["max_queue"], ok_after=ok_after, server_alive=alive, latency_ms=rep.latency_ms,
    )


def short_label(r: Record) -> str:
    """``codec:key=value`` with only the parameters that differ from the codec's defaults."""
    defaults = get_codec(r.codec).params()
    diff = {k: v for k, v in r.params.items() if defaults.get(k) != v}
    return r.codec + (":" + ",".join(f"{k}={v}" for k, v in diff.items()) if diff else "")


def plot(records: list[Record], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, p99, b) = plt.subplots(1, 3, figsize=(17, 4.6))
    codecs = sorted({short_label(r) for r in records})
    colour = {c: plt.cm.tab10(i % 10) for i, c in enumerate(codecs)}
    for dep, marker in (("single", "o"), ("ray-2", "s")):
        rs = [r for r in records if r.extra.get("experiment") == "throughput" and r.extra.get("deployment") == dep]
        for codec in codecs:
            sel = sorted((r for r in rs if short_label(r) == codec), key=lambda r: r.extra["concurrency"])
            if not sel:
                continue
            conc = [r.extra["concurrency"] for r in sel]
            style = dict(marker=marker, color=colour[codec], ls="-" if dep == "single" else "-.")
            a.plot(conc, [r.extra["throughput_rps"] for r in sel], label=f"{dep} {codec}", **style)
            p99.plot(conc, [r.extra["latency_ms"]["p99"] for r in sel], label=f"{dep} {codec} p99", **style)
            p99.plot(conc, [r.extra["latency_ms"]["p50"] for r in sel], marker=marker, color=colour[codec], ls=":",
                     alpha=0.6, label=f"{dep} {codec} p50")
    p99.axhline(50, color="grey", ls=":", label="target p99 50 ms")
    p99.set(xscale="log", yscale="log", xlabel="concurrent requests", ylabel="ms", title="request latency on loopback")
    p99.legend(fontsize=6.5)
    a.axhline(500, color="grey", ls=":", label="target 500 req/s")
    a.set(xscale="log", xlabel="concurrent requests", ylabel="requests/s", title="throughput on loopback")
    a.legend(fontsize=7)
    rs = [r for r in records if r.extra.get("experiment") == "link" and r.extra["link_mode"] == "proxy"]
    if rs:
        x = np.arange(len(rs))
        b.bar(x - 0.2, [r.extra["measured_ms"] for r in rs], 0.4, label="measured (mean)")
        b.bar(x + 0.2, [r.extra["predicted_ms"] for r in rs], 0.4, label="predicted: parts + bytes/B + RTT")
        b.plot(x + 0.2, [r.extra["predicted_calibrated_ms"] for r in rs], "k_", ms=18, label="…with HTTP bytes + constant")
        kern = {(r.extra["bandwidth_mbit"], short_label(r)): r for r in records
                if r.extra.get("experiment") == "link" and r.extra["link_mode"] != "proxy"}
        if kern:
            keys = [(r.extra["bandwidth_mbit"], short_label(r)) for r in rs]
            b.plot(x - 0.2, [kern[k].extra["measured_ms"] if k in kern else np.nan for k in keys],
                   "rv", label=f"measured, {next(iter(kern.values())).extra['link_mode']}")
        b.set_xticks(x, [f"{r.extra['bandwidth_mbit']} Mbit/s\n{short_label(r)}" for r in rs], fontsize=6.5)
        b.set(ylabel="end-to-end ms", title=f"emulated links, RTT {rs[0].extra['rtt_ms']:g} ms (in-process shaper)")
        b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="ref-resnet")
    ap.add_argument("--split", default=None)
    ap.add_argument("--codec", action="append", help="codec spec (one setting each; repeatable)")
    ap.add_argument("--samples", type=int, default=1000, help="test samples (accuracy, streams)")
    ap.add_argument("--requests", type=int, default=3000, help="requests per throughput point (c=8, 64)")
    ap.add_argument("--ray-requests", type=int, default=600, help="requests per Ray Serve throughput point")
    ap.add_argument("--repeats", type=int, default=3, help="runs per throughput point (median reported)")
    ap.add_argument("--link-samples", type=int, default=150)
    ap.add_argument("--rtt", type=float, default=20.0, help="emulated round-trip time, ms")
    ap.add_argument("--fault-requests", type=int, default=1000)
    ap.add_argument("--overload-requests", type=int, default=1000)
    ap.add_argument("--time-limit", type=float, default=120.0, help="no request starts after this (s), per run")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-netns", action="store_true", help="use the in-process shaper even as root")
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    ap.add_argument("--out", default=str(RESULTS / "runtime.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.requests, args.ray_requests, args.link_samples = 200, 400, 200, 30
        args.fault_requests, args.overload_requests, args.repeats = 200, 300, 1
    specs = args.codec or ["uniform:bits=4"]
    torch.set_num_threads(1)
    t_start = time.time()
    meta = run_meta(command="benchmarks/runtime.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                    loadavg_start=loadavg(), cpus=os.cpu_count(), kernel_qdiscs=kernel_qdiscs(), euid=os.geteuid())
    log(f"load average at start: {meta['loadavg_start']}; kernel qdiscs: {meta['kernel_qdiscs']}")
    ctx = prepare(args.model, args.split, samples=args.samples)
    server_args = ["--model", args.model, "--threads", "1"] + (["--split", args.split] if args.split else [])
    records: list[Record] = []
    for spec in specs:
        codec = codec_from_spec(spec)
        evaluated = evaluate_codec(ctx, codec)  # fits codec on the calibration features, as the service's client does
        log(f"{ctx.model_name} @ {ctx.split}, {codec!r}: evaluator top-1 {evaluated.top1:.2f} %, "
            f"{evaluated.bytes_per_sample:.1f} B/sample ({evaluated.bpe:.3f} bpe)")
        streams = [codec.encode(ctx.features[i : i + 1], config="ref") for i in range(len(ctx.features))]
        with ServerProcess([*server_args, "--port", "0"]) as server:
            log(f"single process server at {server.url}")
            records += throughput(ctx, codec, evaluated, server.url, "single", streams, args)
            records.append(accuracy(ctx, codec, evaluated, server.url, args))
            records.append(faults(ctx, codec, evaluated, server.url, args))
            wire = wire_bytes(server.url, ctx, codec)
            assert server.alive(), "the server died"
        records.append(overload(ctx, codec, evaluated, server_args, args))
        records += link_latency(ctx, codec, evaluated, args, server_args, wire)
        if not args.no_ray:
            ray_args = [*server_args, "--port", "0", "--ray", "--replicas", "2", "--ray-cpus", "2"]
            with ServerProcess(ray_args, startup_timeout=300) as server:
                log(f"Ray Serve (2 replicas) at {server.url}")
                ray_args_ns = argparse.Namespace(**{**vars(args), "requests": args.ray_requests})
                records += throughput(ctx, codec, evaluated, server.url, "ray-2", streams, ray_args_ns)
    meta["loadavg_end"] = loadavg()
    meta["wall_s"] = time.time() - t_start
    out = Path(args.out)
    save_records(records, out, meta)
    plot(records, out.with_suffix(".png"))
    log(f"wrote {out}, {out.with_suffix('.csv')}, {out.with_suffix('.png')} in {meta['wall_s']:.0f} s; load {meta['loadavg_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
