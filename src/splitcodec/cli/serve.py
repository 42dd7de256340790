"""The ``serve``, ``edge`` and Ray Serve commands: the runtime side of the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from splitcodec.cli.coding import read_configs
from splitcodec.cli.common import app, console, err_console, progress_bar
from splitcodec.cli.common import fail as _fail
from splitcodec.cli.common import fmt as _fmt
from splitcodec.errors import SplitcodecError
from splitcodec.serve.config import Batching, ServeConfig  # light: no torch

_SERVE = ServeConfig()  # the defaults of `serve`, written once in ServeConfig


@app.command("serve")
def serve_cmd(
    model: str = typer.Option(_SERVE.model, help="registered model name or torchvision:<arch>"),
    split: Optional[str] = typer.Option(None, help="split point (default: the model's default split)"),
    weights: Optional[Path] = typer.Option(None, help="weights file for torchvision:<arch> models"),
    host: str = typer.Option(_SERVE.host, help="address to listen on"),
    port: int = typer.Option(_SERVE.port, min=0, max=65535, help="port (0: any free port; the ready line says which)"),
    token: Optional[str] = typer.Option(None, envvar="SPLITCODEC_TOKEN", help="require 'Authorization: Bearer TOKEN'"),
    tls_cert: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="TLS certificate (PEM)"),
    tls_key: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="TLS private key (PEM)"),
    codec_config: list[Path] = typer.Option([], help="codec config JSON file(s) to hold from the start"),
    allow_codec: list[str] = typer.Option([], help="accept only these codec ids (repeatable; default: any)"),
    max_batch: int = typer.Option(_SERVE.batching.max_batch, help="largest batch of requests run through the tail at once"),
    max_wait_ms: float = typer.Option(_SERVE.batching.max_wait_ms, help="wait this long for a batch to fill (0: batch what is waiting)"),
    max_queue: int = typer.Option(_SERVE.batching.max_queue, help="queued requests past which the server answers 503 busy"),
    max_stream_bytes: int = typer.Option(_SERVE.max_stream_bytes, help="largest bitstream accepted (413 past it)"),
    max_connections: int = typer.Option(_SERVE.max_connections, min=1, help="open connections in all"),
    max_connections_per_client: int = typer.Option(
        _SERVE.max_connections_per_client, min=1, help="open connections per client address"
    ),
    head_timeout: float = typer.Option(
        _SERVE.head_timeout_s, min=0.001, help="seconds a connection may wait for a complete request head"
    ),
    body_timeout: float = typer.Option(_SERVE.body_timeout_s, min=0.001, help="seconds reading a request body may take"),
    threads: int = typer.Option(_SERVE.threads, help="torch threads for the tail"),
    ray: bool = typer.Option(False, "--ray", help="deploy on Ray Serve instead of a single process"),
    replicas: int = typer.Option(_SERVE.replicas, help="Ray Serve replicas (with --ray)"),
    ray_address: Optional[str] = typer.Option(None, help="join this Ray cluster (with --ray; default: start one here)"),
    ray_cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray instance (with --ray)"),
    plan: Optional[Path] = typer.Option(None, "--plan", help="take --model/--split from a `splitcodec search` plan"),
) -> None:
    """Serve a split model: receive bitstreams, decode, run the tail, answer predictions (Ctrl-C stops)."""
    from splitcodec.serve.server import READY_LINE

    try:
        model, split, _ = _apply_plan(plan, model, split, None)
    except SplitcodecError as exc:
        _fail(exc)

    def announce(url: str) -> None:
        print(f"{READY_LINE}{url} (model {model}, split {split or 'default'})", flush=True)

    try:
        configs = read_configs(codec_config)
        config = ServeConfig(
            model=model, split=split, weights=str(weights) if weights else None, allowed_codecs=tuple(allow_codec),
            max_stream_bytes=max_stream_bytes, threads=threads, host=host, port=port, token=token,
            tls_cert=str(tls_cert) if tls_cert else None, tls_key=str(tls_key) if tls_key else None,
            batching=Batching(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue),
            replicas=replicas, ray_address=ray_address, ray_cpus=ray_cpus, max_connections=max_connections,
            max_connections_per_client=max_connections_per_client, head_timeout_s=head_timeout,
            body_timeout_s=body_timeout,
        )
        (_serve_ray if ray else _serve_local)(config, configs, announce)
    except SplitcodecError as exc:
        _fail(exc)


def _serve_local(config: ServeConfig, configs: list[dict[str, Any]], announce) -> None:
    """One uvicorn process holding ``configs`` from the start; blocks until SIGTERM/Ctrl-C."""
    import torch

    from splitcodec.serve import FeatureService
    from splitcodec.serve.server import run_server

    torch.set_num_threads(config.threads)
    service = FeatureService.from_config(config)
    for codec_config in configs:
        ref = service.register(codec_config)
        err_console.print(f"holding codec config {ref} ({codec_config.get('id')})")
    run_server(service, config, announce=announce)


def _serve_ray(config: ServeConfig, configs: list[dict[str, Any]], announce) -> None:
    """Ray Serve replicas holding ``configs`` from the start; blocks until SIGTERM/Ctrl-C, then shuts down."""
    import signal
    import time

    from splitcodec.errors import DependencyError

    try:
        from splitcodec.serve import ray_app
    except ImportError as exc:
        raise DependencyError(f"--ray needs Ray Serve ({exc.name} is missing): pip install 'splitcodec[serve]'") from exc
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        with console.status(f"starting Ray Serve with {config.replicas} replica(s)…"):
            url = ray_app.deploy(config)
            ray_app.preload(configs)
        announce(url)
        while not stop:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        ray_app.shutdown()


@app.command("edge")
def edge_cmd(
    url: str = typer.Option("http://127.0.0.1:8000", help="the server"),
    model: str = typer.Option("ref-resnet", help="registered model name (the same as the server's)"),
    split: Optional[str] = typer.Option(None, help="split point (the same as the server's)"),
    codec: str = typer.Option("uniform:bits=8", help="codec spec, one setting; fitted on the calibration split"),
    samples: int = typer.Option(1000, help="test samples to stream"),
    concurrency: int = typer.Option(8, help="samples in flight at once"),
    calibration: int = typer.Option(64, help="calibration samples for fit()"),
    link: Optional[str] = typer.Option(None, help="emulate a link in-process, e.g. '10mbit,rtt=20ms,loss=0.1%'"),
    token: Optional[str] = typer.Option(None, envvar="SPLITCODEC_TOKEN", help="bearer token for the server"),
    cafile: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="trust this CA/cert for https"),
    time_limit: float = typer.Option(300.0, help="start no request after this many seconds"),
    out: Optional[Path] = typer.Option(None, help="write the report as JSON here"),
    plan: Optional[Path] = typer.Option(None, "--plan", help="take --model/--split/--codec from a `splitcodec search` plan"),
    package: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                           help="an exported edge package (onnxruntime head, no torch) "
                                                "instead of --model/--split/--codec"),
) -> None:
    """Stream a dataset through head → encode → server: throughput, latency, bytes sent, accuracy."""
    from splitcodec.data import load_dataset
    from splitcodec.models import get_model_cfg
    from splitcodec.serve.client import EdgeClient
    from splitcodec.testing.link import LinkSpec

    try:
        model, split, codec = _apply_plan(plan, model, split, codec)
        if out is not None and out.suffix.lower() != ".json":
            raise SplitcodecError(f"--out {out}: give a path ending in .json")
        spec = LinkSpec.parse(link) if link else None
        if package is not None:
            from splitcodec.edge.manifest import read_manifest

            manifest = read_manifest(package)
            model, split, codec = manifest.model, manifest.split, f"{manifest.codec['id']} (package {package})"
        cfg = get_model_cfg(model)
        if cfg.dataset is None:
            raise SplitcodecError(f"model {model!r} names no dataset to stream")
        data = load_dataset(cfg.dataset, "test").subset(samples)
        with console.status(f"loading {package}…" if package else f"cutting {model} and fitting {codec}…"):
            common = dict(token=token, cafile=str(cafile) if cafile else None, connections=max(concurrency, 1))
            client = (EdgeClient.for_package(url, str(package), **common) if package is not None
                      else EdgeClient.for_model(url, model, split, codec, calibration_samples=calibration, **common))
        report = _stream(client, data, url, spec, concurrency, time_limit)
    except SplitcodecError as exc:
        _fail(exc)
    title = (f"edge → {url}: {model} @ {split or cfg.default_split}, {codec}, concurrency {concurrency}"
             + (f", link {spec.label}" if spec else ""))
    console.print(_edge_table(report, title, concurrency))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"url": url, "model": model, "split": split, "codec": codec,
                                   "link": spec.label if spec else None, **report.summary()}, indent=1) + "\n")
        console.print(f"wrote {out}")
    if report.ok < report.samples:
        raise typer.Exit(code=1)


def _stream(client, data, url: str, spec, concurrency: int, time_limit: float):
    """Stream ``data`` through ``client`` (through an in-process link shaper when ``spec``), with a progress bar."""
    import asyncio
    from contextlib import nullcontext
    from urllib.parse import urlsplit

    from splitcodec.serve.streaming import stream_dataset
    from splitcodec.testing.link import ShapingProxy

    parts = urlsplit(url)
    proxy = ShapingProxy(spec, (parts.hostname or "127.0.0.1", parts.port or 80)) if spec else nullcontext()
    with proxy as p, progress_bar() as bar:
        if p is not None:
            client.url = p.url(url)
        task = bar.add_task(f"streaming {len(data)} samples", total=len(data))

        async def go():
            async with client:
                return await stream_dataset(
                    client, data.images, data.labels, concurrency=concurrency, time_limit_s=time_limit,
                    progress=lambda done, total: bar.update(task, completed=done))

        return asyncio.run(go())


def _edge_table(report, title: str, concurrency: int = 1) -> Table:
    """The `edge` report (an EdgeReport) as a two-column table."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    lat = report.latency_ms
    rows = [
        ("samples answered", f"{report.ok} / {report.samples}"),
        ("throughput (samples/s)", _fmt(report.throughput_sps, 1)),
        ("latency p50 / p90 / p99 (ms)", " / ".join(_fmt(lat[k]) for k in ("p50", "p90", "p99"))),
        ("bytes sent (bitstreams)", str(report.bytes_sent)),
        ("bytes per sample", _fmt(report.mean_stream_bytes, 1)),
        ("top-1 %", _fmt(report.top1)),
        ("answers", ", ".join(f"{k}: {v}" for k, v in sorted(report.kinds.items()))),
    ]
    rows += [(f"mean {k.replace('_ms', '')} ms", _fmt(v, 3)) for k, v in report.parts_ms.items()]
    parts = report.parts_ms
    if parts:
        work = sum(parts.get(k, 0.0) for k in ("head_ms", "encode_ms", "network_ms", "server_ms"))
        rows.append(("mean waiting ms (total − parts)", _fmt(parts.get("total_ms", 0.0) - work, 3)))
    for name, value in rows:
        table.add_row(name, value)
    table.caption = (f"total = one sample's time from start to answer with {concurrency} in flight: head + encode "
                     "+ network + server (queue, decode, tail) + waiting for the edge's one compute thread, which "
                     "works on one sample at a time; lower --concurrency to see less waiting.")
    return table


def _apply_plan(plan: Path | None, model: str, split: str | None, codec: str | None) -> tuple[str, str | None, str | None]:
    """``(model, split, codec spec)`` from ``--plan`` (a ``splitcodec search`` plan), else the options as given."""
    if plan is None:
        return model, split, codec
    from splitcodec.search import Plan

    model, split, spec = Plan.load(plan).target()
    if split is None:
        raise SplitcodecError(f"--plan {plan} is edge-only: the whole model runs on the device, no server is needed")
    if split == "input":
        raise SplitcodecError(
            f"--plan {plan} is cloud-only (send the picture): `serve`/`edge` carry features; run the whole model on the server"
        )
    return model, split, spec
