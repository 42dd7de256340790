"""The ``splitcodec`` command line: list models, split points and codecs; code tensors; evaluate.

Every command is also callable in-process: ``splitcodec.cli.main(["codecs"])``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from splitcodec.errors import SplitcodecError

app = typer.Typer(
    name="splitcodec",
    help="Compress the intermediate features of a split neural network, and measure what it costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Off a terminal (pipes, CI logs) rich would wrap tables at 80 columns: render them wide instead.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# --- tensors on disk -----------------------------------------------------------------------------------


def load_tensor(path: Path):
    """Read a tensor from ``.pt`` (torch.save of a tensor) or ``.npy``."""
    import numpy as np
    import torch

    try:
        if path.suffix == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise SplitcodecError(f"cannot read a tensor from {path}: {exc}") from exc
    if not isinstance(obj, torch.Tensor):
        raise SplitcodecError(f"{path} holds a {type(obj).__name__}, not a tensor")
    return obj


def save_tensor(tensor, path: Path) -> None:
    import numpy as np
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy())
    else:
        torch.save(tensor, path)


# --- listing commands ----------------------------------------------------------------------------------


@app.command("models")
def models_cmd() -> None:
    """List the registered models."""
    from splitcodec.models import get_model_cfg, list_models

    table = Table(title="splitcodec models")
    for col in ("name", "dataset", "input", "classes", "test top-1 %", "default split", "description"):
        table.add_column(col)
    for name in list_models():
        cfg = get_model_cfg(name)
        table.add_row(
            name,
            cfg.dataset or "–",
            "×".join(map(str, cfg.input_size)),
            _fmt(cfg.num_classes),
            _fmt(cfg.test_top1),
            cfg.default_split or "–",
            cfg.description,
        )
    console.print(table)
    console.print("Also: [bold]torchvision:<arch>[/] with --weights FILE (e.g. torchvision:resnet50).")


@app.command("splits")
def splits_cmd(
    model: str = typer.Argument(..., help="registered model name or torchvision:<arch>"),
    weights: Optional[Path] = typer.Option(None, help="weights file for torchvision:<arch> models"),
    size: Optional[int] = typer.Option(None, help="input height = width (default: the model's input size)"),
) -> None:
    """List every point where the model can be cut (exactly one tensor crosses)."""
    import torch

    from splitcodec.models import load
    from splitcodec.split import list_split_points

    try:
        net = load(model, weights=weights)
        c, h, w = net.splitcodec_cfg.input_size
        if size:
            h = w = size
        points = list_split_points(net, torch.zeros(1, c, h, w))
    except SplitcodecError as exc:
        _fail(exc)
    default = net.splitcodec_cfg.default_split
    table = Table(title=f"split points of {model} (input 1×{c}×{h}×{w})")
    for col in ("#", "name", "aliases", "shape", "elements", "activation"):
        table.add_column(col, justify="right" if col in ("#", "elements") else "left")
    for i, p in enumerate(points):
        act = p.activation + (f"({p.negative_slope:g})" if p.negative_slope is not None else "")
        mark = " [bold green]← default[/]" if default in (p.name, *p.aliases) else ""
        table.add_row(str(i), p.name + mark, ", ".join(p.aliases), "×".join(map(str, p.shape)), str(p.numel), act)
    console.print(table)


@app.command("codecs")
def codecs_cmd() -> None:
    """List the registered codecs, their default sweeps and whether they can run here."""
    from splitcodec.codecs import available_codecs, codec_class

    table = Table(title="splitcodec codecs")
    for col in ("id", "domain", "needs fit", "default sweep", "available", "description"):
        table.add_column(col)
    for name, why_not in available_codecs().items():
        cls = codec_class(name)
        sweep = "; ".join(",".join(f"{k}={v}" for k, v in s.items()) or "(defaults)" for s in cls.sweep)
        table.add_row(
            name,
            cls.domain,
            "yes" if cls.needs_fit else "no",
            sweep,
            "[green]yes[/]" if why_not is None else f"[red]no[/]: {why_not}",
            cls.description,
        )
    console.print(table)


# --- coding a tensor file ------------------------------------------------------------------------------


@app.command("encode")
def encode_cmd(
    tensor: Path = typer.Argument(..., help="input tensor (.pt or .npy)", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="output bitstream file"),
    codec: str = typer.Option("uniform:bits=8", help="codec spec: id[:key=value...] (one setting)"),
    fit: Optional[Path] = typer.Option(None, help="calibration features (.pt/.npy, N samples on dim 0) to fit on"),
    config_out: Optional[Path] = typer.Option(
        None, help="write the codec config here and only its 4-byte reference into the stream"
    ),
) -> None:
    """Code a tensor file into a splitcodec bitstream file."""
    from splitcodec.codecs import get_codec
    from splitcodec.codecs.registry import parse_codec_spec

    try:
        settings = parse_codec_spec(codec)
        if len(settings) != 1:
            raise SplitcodecError(f"--codec {codec!r} expands to {len(settings)} settings; give exactly one")
        c = get_codec(settings[0][0], **settings[0][1])
        x = load_tensor(tensor)
        if fit is not None:
            c.fit(load_tensor(fit))
        mode = "ref" if config_out else "inline"
        data = c.encode(x, config=mode)
    except SplitcodecError as exc:
        _fail(exc)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    if config_out:
        config_out.write_text(json.dumps(c.get_config()) + "\n")
    bpe = len(data) * 8 / max(1, x.numel())
    console.print(f"{tensor} {tuple(x.shape)} → {output}: {len(data)} bytes, {bpe:.4f} bits/element ({c!r})")


@app.command("decode")
def decode_cmd(
    stream: Path = typer.Argument(..., help="bitstream file", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="output tensor (.pt or .npy)"),
    config: list[Path] = typer.Option([], help="codec config JSON file(s) for streams that carry a reference"),
) -> None:
    """Decode a splitcodec bitstream file back into a tensor file."""
    from splitcodec.codecs import ConfigStore, decode

    try:
        store = ConfigStore()
        for path in config:
            try:
                store.add(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise SplitcodecError(f"cannot read codec config {path}: {exc}") from exc
        x = decode(stream.read_bytes(), store)
    except SplitcodecError as exc:
        _fail(exc)
    save_tensor(x, output)
    console.print(f"{stream} → {output}: {tuple(x.shape)} {x.dtype}")


@app.command("info")
def info_cmd(stream: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Show the container header of a bitstream file."""
    from splitcodec.bitstream import unpack

    try:
        frame = unpack(stream.read_bytes())
    except SplitcodecError as exc:
        _fail(exc)
    codec = frame.config if frame.config is not None else f"by reference {frame.config_ref.hex()}"
    console.print(f"codec:   {codec}")
    console.print(f"tensor:  {frame.shape} {frame.dtype} ({frame.numel} elements)")
    console.print(f"bytes:   {frame.header_bytes} container + {len(frame.payload)} payload")


# --- evaluation ----------------------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def records_table(records, title: str) -> Table:
    table = Table(title=title)
    for col in ("model", "split", "codec", "params", "bpe", "bytes/sample", "top-1 %", "loss pp", "agree %", "cosine", "enc ms", "dec ms"):
        table.add_column(col, justify="left" if col in ("model", "split", "codec", "params") else "right")
    for r in records:
        params = ",".join(f"{k}={v}" for k, v in r.params.items())
        table.add_row(
            r.model, r.split, r.codec, params,
            _fmt(r.bpe, 3), _fmt(r.bytes_per_sample, 1), _fmt(r.top1), _fmt(r.top1_loss),
            _fmt(r.agreement), _fmt(r.cosine, 4), _fmt(r.encode_ms, 3), _fmt(r.decode_ms, 3),
        )
    return table


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("ref-resnet", help="registered model name or torchvision:<arch>"),
    split: Optional[str] = typer.Option(None, help="split point (default: the model's default split)"),
    codec: list[str] = typer.Option(["all"], help="codec spec(s): id, id:key=v1,v2 or 'all' (repeatable)"),
    samples: int = typer.Option(1000, help="test samples"),
    calibration: int = typer.Option(64, help="calibration samples for fit()"),
    out: Optional[Path] = typer.Option(None, help="write records to this .json (+ .csv and .png beside it)"),
    plot: bool = typer.Option(True, help="write the rate–accuracy plot beside --out"),
) -> None:
    """Evaluate codecs at a split: rate from real bytes, accuracy vs the uncut model; table + JSON/CSV/PNG."""
    from splitcodec.codecs import available_codecs
    from splitcodec.eval import evaluate_codec, plot_rate_accuracy, prepare, run_meta, save_records
    from splitcodec.eval.evaluator import settings_from_specs
    from splitcodec.codecs import get_codec

    specs: list[str] = []
    for spec in codec:
        if spec == "all":
            for name, why_not in available_codecs().items():
                if why_not is None:
                    specs.append(name)
                else:
                    err_console.print(f"[yellow]skipping codec {name}: {why_not}[/]")
        else:
            specs.append(spec)
    try:
        settings = settings_from_specs(specs)
        with console.status(f"preparing {model} (split, features, reference outputs)…"):
            ctx = prepare(model, split, samples=samples, calibration_samples=calibration)
        records = []
        with _progress() as progress:
            task = progress.add_task("codecs", total=len(settings))
            sample_task = progress.add_task("", total=len(ctx.features))

            def tick(desc: str, done: int, total: int) -> None:
                progress.update(sample_task, description=desc, completed=done, total=total)

            for name, params in settings:
                records.append(evaluate_codec(ctx, get_codec(name, **params), progress=tick))
                progress.advance(task)
    except SplitcodecError as exc:
        _fail(exc)
    console.print(records_table(records, f"{ctx.model_name} @ {ctx.split}: {len(ctx.features)} test samples, "
                                         f"uncut top-1 {_fmt(ctx.top1_ref)} %"))
    if out is not None:
        json_path, csv_path = save_records(records, out, run_meta(command="eval", samples=samples))
        console.print(f"wrote {json_path} and {csv_path}")
        if plot:
            png = plot_rate_accuracy(records, out.with_suffix(".png"), title=f"{ctx.model_name} @ {ctx.split}")
            console.print(f"wrote {png}")


@app.command("fit-model")
def fit_model_cmd(
    calibration: Optional[Path] = typer.Argument(None, help="calibration features (.pt/.npy, N samples on dim 0)"),
    test: Optional[Path] = typer.Option(None, help="held-out features to check the model against"),
    model: Optional[str] = typer.Option(None, help="take the features from this model instead of files"),
    split: Optional[str] = typer.Option(None, help="with --model: the split point (default: the model's)"),
    activation: Optional[str] = typer.Option(None, help="relu, relu6, leaky_relu or other (default: from --model, else guessed)"),
    slope: float = typer.Option(0.1, help="leaky-ReLU negative slope (with --activation leaky_relu)"),
    lam: float = typer.Option(0.2, help="the lightweight codec's rate knob λ"),
    family: str = typer.Option("auto", help="auto, gaussian, laplace or gengauss"),
) -> None:
    """Fit the lightweight codec's pre-activation model and show how well it matches the features."""
    import numpy as np

    from splitcodec.codecs import get_codec
    from splitcodec.quantization import FeatureModel, fit_report

    point: Any = None
    try:
        if model is not None:
            from splitcodec.eval import prepare

            with console.status(f"preparing {model} …"):
                ctx = prepare(model, split, samples=1000, calibration_samples=64)
            calib, held_out, point = ctx.calib_features, ctx.features, ctx.split_point
        elif calibration is not None:
            calib = load_tensor(calibration)
            held_out = load_tensor(test) if test is not None else None
        else:
            raise SplitcodecError("give calibration features (a file) or --model")
        if activation is not None:
            from types import SimpleNamespace

            point = SimpleNamespace(activation=activation, negative_slope=slope)
        plain = {"channel_tables": False, "channel_levels": False, "context": False}
        codec = get_codec("lightweight", lam=lam, family=family, **plain).fit(calib, activation=point.act if point else None)
    except SplitcodecError as exc:
        _fail(exc)
    d = codec.describe()
    table = Table(title=f"lightweight error model (λ = {lam})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("activation", f"{d['activation']}" + (f" (slope {d['slope']})" if d["activation"] == "leaky_relu" else ""))
    if "model" not in d:
        table.add_row("model", "none: the features are constant")
        console.print(table)
        return
    fm = FeatureModel.from_json(d["model"], d["activation"], d["slope"])
    shape = f", shape β = {fm.shape:.3f}" if fm.family == "gengauss" else ""
    table.add_row("pre-activation model", f"{fm.family}: loc {fm.loc:.4g}, scale {fm.scale:.4g}{shape}")
    sets = [("calibration", calib)] + ([("held-out", held_out)] if held_out is not None else [])
    for name, feats in sets:
        arr = feats.detach().float().numpy()
        rep = fit_report(fm, arr)
        zero = f"; zero fraction data {rep['zero_frac_data']:.3f} vs model {rep['zero_frac_model']:.3f}" if "zero_frac_data" in rep else ""
        table.add_row(f"fit on {name}", f"KS {rep['ks']:.4f}, histogram TV {rep['tv']:.4f}{zero}")
    table.add_row("quantizer", f"{len(d['levels'])} levels, clip [{d['clip'][0]:.4g}, {d['clip'][1]:.4g}]: "
                  + ", ".join(f"{v:.3g}" for v in d["levels"]))
    name, feats = sets[-1]
    arr = feats.detach().float().numpy()
    x_hat = codec.decode(codec.encode(feats)).float().numpy()
    idx = np.searchsorted(np.float32(d["thresholds"]), arr, side="right")
    p = np.bincount(idx.ravel(), minlength=len(d["levels"])) / idx.size
    entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    table.add_row("MSE", f"model {d['model_mse']:.4g}, measured on {name} {float(np.mean((x_hat - arr) ** 2)):.4g}")
    table.add_row("index entropy (bits)", f"model {d['model_bits']:.4f}, measured on {name} {entropy:.4f}")
    console.print(table)


@app.command("compare")
def compare_cmd(
    results: list[Path] = typer.Argument(..., help="A.json [B.json]: anchor records, and test records (default: A's)"),
    anchor: str = typer.Option("hevc", help="anchor codec id (its curve in A is the reference)"),
    codec: list[str] = typer.Option([], help="compare only these codec ids (repeatable; default: all in B)"),
    metric: str = typer.Option("auto", help="accuracy axis: auto (top1, else cosine), top1, agreement or cosine"),
) -> None:
    """BD-rate and BD-accuracy of codec curves against an anchor codec, per (model, split) in both files."""
    from splitcodec.eval import load_records
    from splitcodec.eval.compare import compare_records

    if not 1 <= len(results) <= 2:
        _fail(SplitcodecError(f"give one or two result files, got {len(results)}"))
    try:
        a = load_records(results[0])
        b = load_records(results[1]) if len(results) == 2 else None
        rows = compare_records(a, b, anchor=anchor, codecs=codec or None, metric=metric)
    except SplitcodecError as exc:
        _fail(exc)
    if not rows:
        _fail(SplitcodecError(f"no (model, split) has both an {anchor!r} curve and another codec's"))
    source = " vs ".join(str(p) for p in results)
    table = Table(title=f"BD figures against {anchor} ({source}); rate = bytes/sample, headers included")
    for col in ("model", "split", "codec", "anchor at", "metric", "points", "BD-rate %", "BD-accuracy", "note"):
        numeric = col in ("points", "BD-rate %", "BD-accuracy")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=col != "note", overflow="fold")
    for r in rows:
        table.add_row(
            r.model, r.split, r.codec, r.anchor_split, r.metric, f"{r.points}/{r.anchor_points}",
            _fmt(r.bd_rate, 2), _fmt(r.bd_accuracy, 4 if r.metric == "cosine" else 2), r.note,
        )
    console.print(table)
    console.print("BD-rate < 0: fewer bytes than the anchor at equal accuracy; BD-accuracy > 0: more accurate at equal rate.")


@app.command("reconstruct")
def reconstruct_cmd(
    model: str = typer.Option("ref-resnet", help="registered model name"),
    split: Optional[str] = typer.Option(None, help="split point (default: the model's default split)"),
    codec: str = typer.Option("nearlossless:bits=8", help="codec the features pass through first; 'none' = uncompressed"),
    samples: int = typer.Option(16, help="test images to reconstruct"),
    stream: list[Path] = typer.Option([], help="reconstruct from these feature streams (.scb, inline config) instead"),
    out: Path = typer.Option(Path("reconstructions"), help="output folder for the PNGs"),
    weights: Optional[Path] = typer.Option(None, help="decoder weights (default: the committed ones)"),
) -> None:
    """Reconstruct input images from (coded) features with the trained decoder: PNGs, a grid, PSNR/SSIM."""
    from PIL import Image

    from splitcodec.codecs import decode, get_codec, parse_codec_spec
    from splitcodec.reconstruct import image_grid, load_reconstructor, psnr, ssim, to_uint8

    def write_png(img, path: Path) -> None:  # uint8 C×H×W
        arr = img.numpy().transpose(1, 2, 0)
        Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(path)

    try:
        import torch

        out.mkdir(parents=True, exist_ok=True)
        if stream:
            decoder = load_reconstructor(model, split, path=weights)
            for path in stream:
                features = decode(path.read_bytes()).float()
                if features.ndim == len(decoder.feature_shape):
                    features = features[None]
                with torch.no_grad():
                    images = to_uint8(decoder(features))
                for i, img in enumerate(images):
                    target = out / (f"{path.stem}.png" if len(images) == 1 else f"{path.stem}_{i}.png")
                    write_png(img, target)
                    console.print(f"wrote {target}")
            return
        from splitcodec.eval import prepare

        with console.status(f"preparing {model} (split, features)…"):
            ctx = prepare(model, split, samples=samples, calibration_samples=64)
        decoder = load_reconstructor(ctx.model_name, ctx.split, path=weights)
        columns = {"original": ctx.dataset.raw}
        with torch.no_grad():
            columns["uncompressed features"] = to_uint8(decoder(ctx.features))
        rates = {"uncompressed features": 32.0}
        if codec.lower() != "none":
            (name, params), *more = parse_codec_spec(codec)
            if more:
                raise SplitcodecError(f"--codec takes one setting, {codec!r} gives {len(more) + 1}")
            c = get_codec(name, **params).fit(ctx.calib_features, activation=ctx.activation)
            streams = [c.encode(ctx.features[i : i + 1], config="ref") for i in range(len(ctx.features))]
            coded = torch.cat([c.decode(s) for s in streams]).float()
            label = f"{name} features"
            with torch.no_grad():
                columns[label] = to_uint8(decoder(coded))
            rates[label] = 8 * sum(map(len, streams)) / ctx.features.numel()
        last = list(columns)[-1]
        for i, img in enumerate(columns[last]):
            write_png(img, out / f"{i:04d}.png")
        grid = image_grid(list(columns.values()), scale=max(1, 96 // ctx.dataset.raw.shape[-1]))
        Image.fromarray(grid).save(out / "grid.png")
    except SplitcodecError as exc:
        _fail(exc)
    table = Table(title=f"{ctx.model_name} @ {ctx.split}: {len(ctx.features)} test images → {out}/ (grid: {' | '.join(columns)})")
    for col in ("reconstructed from", "bpe", "PSNR dB", "SSIM"):
        table.add_column(col, justify="left" if col == "reconstructed from" else "right")
    for label, imgs in list(columns.items())[1:]:
        table.add_row(label, _fmt(rates[label], 3), _fmt(psnr(ctx.dataset.raw, imgs)), _fmt(ssim(ctx.dataset.raw, imgs), 4))
    console.print(table)


# --- runtime: server and edge --------------------------------------------------------------------------


@app.command("serve")
def serve_cmd(
    model: str = typer.Option("ref-resnet", help="registered model name or torchvision:<arch>"),
    split: Optional[str] = typer.Option(None, help="split point (default: the model's default split)"),
    weights: Optional[Path] = typer.Option(None, help="weights file for torchvision:<arch> models"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port (0: any free port; the ready line says which)"),
    token: Optional[str] = typer.Option(None, envvar="SPLITCODEC_TOKEN", help="require 'Authorization: Bearer TOKEN'"),
    tls_cert: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="TLS certificate (PEM)"),
    tls_key: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="TLS private key (PEM)"),
    codec_config: list[Path] = typer.Option([], help="codec config JSON file(s) to hold from the start"),
    allow_codec: list[str] = typer.Option([], help="accept only these codec ids (repeatable; default: any)"),
    max_batch: int = typer.Option(32, help="largest batch of requests run through the tail at once"),
    max_wait_ms: float = typer.Option(0.0, help="wait this long for a batch to fill (0: batch what is waiting)"),
    max_queue: int = typer.Option(256, help="queued requests past which the server answers 503 busy"),
    max_stream_bytes: int = typer.Option(1 << 22, help="largest bitstream accepted (413 past it)"),
    threads: int = typer.Option(1, help="torch threads for the tail"),
    ray: bool = typer.Option(False, "--ray", help="deploy on Ray Serve instead of a single process"),
    replicas: int = typer.Option(2, help="Ray Serve replicas (with --ray)"),
    ray_address: Optional[str] = typer.Option(None, help="join this Ray cluster (with --ray; default: start one here)"),
    ray_cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray instance (with --ray)"),
) -> None:
    """Serve a split model: receive bitstreams, decode, run the tail, answer predictions (Ctrl-C stops)."""
    import torch

    from splitcodec.serve.server import READY_LINE

    def announce(url: str) -> None:
        print(f"{READY_LINE}{url} (model {model}, split {split or 'default'})", flush=True)

    try:
        configs = []
        for path in codec_config:
            try:
                configs.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise SplitcodecError(f"cannot read codec config {path}: {exc}") from exc
        if ray:
            _serve_ray(model, split, weights, host, port, token, tls_cert, tls_key, configs, max_batch, max_wait_ms,
                       max_queue, threads, replicas, ray_address, ray_cpus, announce, max_stream_bytes, allow_codec)
            return
        from splitcodec.serve import FeatureService
        from splitcodec.serve.server import ServerOptions, run_server

        torch.set_num_threads(threads)
        service = FeatureService.from_model(
            model, split, weights=str(weights) if weights else None, max_stream_bytes=max_stream_bytes,
            allowed_codecs=set(allow_codec) or None,
        )
        for config in configs:
            ref = service.register(config)
            err_console.print(f"holding codec config {ref} ({config.get('id')})")
        opts = ServerOptions(
            host=host, port=port, token=token, tls_cert=str(tls_cert) if tls_cert else None,
            tls_key=str(tls_key) if tls_key else None, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
        )
        run_server(service, opts, announce=announce)
    except SplitcodecError as exc:
        _fail(exc)


def _serve_ray(model, split, weights, host, port, token, tls_cert, tls_key, configs, max_batch, max_wait_ms,
               max_queue, threads, replicas, ray_address, ray_cpus, announce, max_stream_bytes, allow_codec) -> None:
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
        with console.status(f"starting Ray Serve with {replicas} replica(s)…"):
            url = ray_app.deploy(
                model, split, replicas=replicas, host=host, port=port, address=ray_address, num_cpus=ray_cpus,
                token=token, tls_cert=str(tls_cert) if tls_cert else None, tls_key=str(tls_key) if tls_key else None,
                max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, threads=threads,
                weights=str(weights) if weights else None, max_stream_bytes=max_stream_bytes,
                allowed_codecs=list(allow_codec) or None,
            )
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
) -> None:
    """Stream a dataset through head → encode → server: throughput, latency, bytes sent, accuracy."""
    import asyncio
    from contextlib import nullcontext
    from urllib.parse import urlsplit

    from splitcodec.data import load_dataset
    from splitcodec.models import get_model_cfg
    from splitcodec.serve.client import EdgeClient, stream_dataset
    from splitcodec.serve.link import LinkSpec, ShapingProxy

    try:
        spec = LinkSpec.parse(link) if link else None
        cfg = get_model_cfg(model)
        if cfg.dataset is None:
            raise SplitcodecError(f"model {model!r} names no dataset to stream")
        data = load_dataset(cfg.dataset, "test").subset(samples)
        with console.status(f"cutting {model} and fitting {codec}…"):
            client = EdgeClient.for_model(url, model, split, codec, calibration_samples=calibration, token=token,
                                          cafile=str(cafile) if cafile else None, connections=max(concurrency, 1))
        parts = urlsplit(url)
        proxy = ShapingProxy(spec, (parts.hostname or "127.0.0.1", parts.port or 80)) if spec else nullcontext()
        with proxy as p:
            if p is not None:
                client.url = p.url(url)

            async def go():
                async with client:
                    return await stream_dataset(client, data.images, data.labels, concurrency=concurrency,
                                                time_limit_s=time_limit)

            report = asyncio.run(go())
    except SplitcodecError as exc:
        _fail(exc)
    table = Table(title=f"edge → {url}: {model} @ {split or cfg.default_split}, {codec}, concurrency {concurrency}"
                        + (f", link {spec.label}" if spec else ""))
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
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"url": url, "model": model, "split": split, "codec": codec,
                                   "link": spec.label if spec else None, **report.summary()}, indent=1) + "\n")
        console.print(f"wrote {out}")
    if report.ok < report.samples:
        raise typer.Exit(code=1)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI (``argv`` defaults to ``sys.argv[1:]``); returns the exit code instead of exiting."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SplitcodecError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return 2
    return 0


# --- partition search (logic in splitcodec.search; this only parses and renders) ----------------------


@app.command("search")
def search_cmd(
    model: str = typer.Option("ref-resnet", help="registered model name"),
    bandwidth: str = typer.Option("1,10,100", help="link bandwidths to plan for, Mbit/s, comma-separated"),
    rtt: float = typer.Option(20.0, help="round-trip time, ms"),
    loss: float = typer.Option(0.0, help="packet (segment) loss rate, 0 <= loss < 1"),
    queue_ms: float = typer.Option(0.0, "--queue-ms", help="expected wait in the server's queue, ms"),
    max_loss: float = typer.Option(1.0, "--max-loss", help="largest top-1 loss allowed, percentage points"),
    edge: str = typer.Option("local", help="edge device: local, x<slowdown> (e.g. x20) or a device profile JSON"),
    cloud: str = typer.Option("local", help="server: local, x<slowdown> or a device profile JSON"),
    profile: Optional[Path] = typer.Option(None, help="a saved model profile (else measured now)"),
    split: list[str] = typer.Option([], help="split points to profile (default: every ReLU/leaky cut; repeatable)"),
    samples: int = typer.Option(1000, help="test samples for accuracy when profiling"),
    http: bool = typer.Option(True, help="count the HTTP request/answer bytes and fixed time of the splitcodec server"),
    method: str = typer.Option("pruned", help="pruned (dominance pruning) or exhaustive"),
    out: Path = typer.Option(Path("search.json"), help="results JSON (+ .png and one .plan-<B>mbit.json per bandwidth)"),
    save_profile: Optional[Path] = typer.Option(None, help="also write the measured profile here"),
) -> None:
    """Pick split × codec × setting with the lowest predicted latency within an accuracy-loss budget."""
    from splitcodec.search import ModelProfile, Network, Transport, device_profile, profile_model, run_search, write_search

    try:
        bws = [float(b) for b in bandwidth.split(",") if b.strip()]
    except ValueError:
        _fail(SplitcodecError(f"bad --bandwidth {bandwidth!r}: use Mbit/s values such as 1,10,100"))
    try:
        edge_dev, cloud_dev = device_profile(edge), device_profile(cloud)
        if profile is not None:
            prof = ModelProfile.load(profile)
        else:
            with console.status(f"profiling {model} (splits, codecs, {samples} samples)…"):
                prof = profile_model(model, split or None, samples=samples)
            if save_profile is not None:
                console.print(f"wrote {prof.save(save_profile)}")
        transport = Transport.http() if http else Transport.none()
        results = run_search(prof, [Network(b, rtt, loss) for b in bws], edge=edge_dev, cloud=cloud_dev,
                             max_loss=max_loss, transport=transport, method=method, queue_ms=queue_ms)
        paths = write_search(prof, results, out, edge=edge_dev.name, cloud=cloud_dev.name, transport=transport)
    except SplitcodecError as exc:
        _fail(exc)
    table = Table(title=f"{prof.model}: lowest predicted latency within {max_loss:g} pp top-1 loss "
                        f"(edge {edge_dev.name}, RTT {rtt:g} ms)")
    energy = edge_dev.power is not None
    for col in ("link", "plan", "loss pp", "bytes", "predicted ms", "edge-only", "cloud-only", "uncompressed", "scored",
                *(("edge J",) if energy else ())):
        table.add_column(col, justify="left" if col in ("link", "plan") else "right")
    for r in results:
        c = r.choice.candidate
        ms = lambda s: _fmt(None if s is None else s.total_ms)  # noqa: E731
        table.add_row(f"{r.network.bandwidth_mbit:g} Mbit/s", c.label, _fmt(c.top1_loss), _fmt(c.bytes_per_sample, 0),
                      _fmt(r.choice.total_ms), ms(r.edge_only), ms(r.cloud_only), ms(r.best_uncompressed), str(r.evaluated),
                      *((_fmt(r.choice.breakdown.energy_j, 4),) if energy else ()))
    console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    raise SystemExit(main())
