"""Measuring commands: ``eval`` (rate–accuracy records), ``compare`` (BD figures), ``fit-model``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from splitcodec.cli import common as ui
from splitcodec.cli.common import app, load_tensor
from splitcodec.errors import SplitcodecError


def expand_all(specs: list[str]) -> list[str]:
    """Replace ``all`` by every codec available here (naming the others on stderr)."""
    from splitcodec.codecs import available_codecs

    out: list[str] = []
    for spec in specs:
        if spec != "all":
            out.append(spec)
            continue
        for name, why_not in available_codecs().items():
            if why_not is None:
                out.append(name)
            else:
                ui.err_console.print(f"[yellow]skipping codec {name}: {why_not}[/]")
    return out


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("ref-resnet", help="registered name, torchvision:<arch>, or path/to/file.py:Class"),
    weights: Optional[str] = typer.Option(None, help="state-dict file loaded into --model"),
    split: list[str] = typer.Option([], help="split point(s) (repeatable; default: the model's default split)"),
    dataset: Optional[str] = typer.Option(None, help="registered dataset, ImageFolder dir, or .pt/.npz file "
                                         "(default: the model's dataset)"),
    calibration_data: Optional[str] = typer.Option(None, help="separate calibration images (same kinds as --dataset)"),
    codec: list[str] = typer.Option(["all"], help="codec spec(s): id, id:key=v1,v2 or 'all' (repeatable)"),
    samples: Optional[int] = typer.Option(None, min=1, help="test images (default: the whole test set)"),
    calibration: int = typer.Option(64, min=1, help="calibration images for fit()"),
    image_size: Optional[int] = typer.Option(None, help="resize + centre-crop folder pictures to this size"),
    out: Optional[Path] = typer.Option(None, help="write records to this .json (+ .csv and .png beside it)"),
    plot: bool = typer.Option(True, help="write the rate–accuracy plot beside --out"),
) -> None:
    """Evaluate codecs at a split: rate from real bytes, accuracy vs the uncut model with paired 95 % intervals."""
    from splitcodec.cli.experiments import run_and_render
    from splitcodec.experiment import Experiment

    try:
        exp = Experiment(model=model, weights=weights, split=split, dataset=dataset, calibration_data=calibration_data,
                         codec=codec, samples=samples, calibration=calibration, image_size=image_size,
                         out=None if out is None else str(out), plot=plot)
    except SplitcodecError as exc:
        ui.fail(exc)
    run_and_render(exp, command="eval")


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
    from splitcodec.codecs import get_codec
    from splitcodec.eval.fitcheck import fit_check
    from splitcodec.split import Activation

    act = None
    try:
        if model is not None:
            from splitcodec.eval import prepare

            with ui.console.status(f"preparing {model} …"):
                ctx = prepare(model, split, samples=1000, calibration_samples=64)
            calib, held_out, act = ctx.calib_features, ctx.features, ctx.activation
        elif calibration is not None:
            calib = load_tensor(calibration)
            held_out = load_tensor(test) if test is not None else None
        else:
            raise SplitcodecError("give calibration features (`splitcodec fit-model calib.pt`) or a model (--model ref-resnet)")
        if activation is not None:
            act = Activation(activation, slope if activation == "leaky_relu" else None)
        plain = {"channel_tables": False, "channel_levels": False, "context": False}
        codec = get_codec("lightweight", lam=lam, family=family, **plain).fit(calib, activation=act)
        sets = [("calibration", calib)] + ([("held-out", held_out)] if held_out is not None else [])
        check = fit_check(codec, sets)
    except SplitcodecError as exc:
        ui.fail(exc)
    ui.console.print(_fit_table(check, lam))


def _fit_table(check, lam: float) -> Table:
    table = Table(title=f"lightweight error model (λ = {lam})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    slope = f" (slope {check.slope})" if check.activation == "leaky_relu" else ""
    table.add_row("activation", f"{check.activation}{slope}")
    fm = check.model
    if fm is None:
        table.add_row("model", "none: the features are constant")
        return table
    shape = f", shape β = {fm.shape:.3f}" if fm.family == "gengauss" else ""
    table.add_row("pre-activation model", f"{fm.family}: loc {fm.loc:.4g}, scale {fm.scale:.4g}{shape}")
    for name, rep in check.fits.items():
        zero = f"; zero fraction data {rep['zero_frac_data']:.3f} vs model {rep['zero_frac_model']:.3f}" if "zero_frac_data" in rep else ""
        table.add_row(f"fit on {name}", f"KS {rep['ks']:.4f}, histogram TV {rep['tv']:.4f}{zero}")
    table.add_row("quantizer", f"{len(check.levels)} levels, clip [{check.clip[0]:.4g}, {check.clip[1]:.4g}]: "
                  + ", ".join(f"{v:.3g}" for v in check.levels))
    on = check.measured_on
    table.add_row("MSE", f"model {check.model_mse:.4g}, measured on {on} {check.measured_mse:.4g}")
    table.add_row("index entropy (bits)", f"model {check.model_bits:.4f}, measured on {on} {check.measured_bits:.4f}")
    return table


@app.command("compare")
def compare_cmd(
    results: list[Path] = typer.Argument(..., help="A.json [B.json]: anchor records, and test records (default: A's)"),
    anchor: str = typer.Option("hevc", help="anchor codec id (its curve in A is the reference)"),
    codec: list[str] = typer.Option([], help="compare only these codec ids (repeatable; default: all in B)"),
    metric: str = typer.Option("auto", help="accuracy axis: auto (score, else top1, else cosine), score, top1, agreement or cosine"),
) -> None:
    """BD-rate and BD-accuracy of codec curves against an anchor codec, per (model, split) in both files."""
    from splitcodec.eval import load_records
    from splitcodec.eval.compare import compare_records

    if not 1 <= len(results) <= 2:
        ui.fail(SplitcodecError(f"give one or two result files, got {len(results)}"))
    try:
        a = load_records(results[0])
        b = load_records(results[1]) if len(results) == 2 else None
        rows = compare_records(a, b, anchor=anchor, codecs=codec or None, metric=metric)
    except SplitcodecError as exc:
        ui.fail(exc)
    if not rows:
        ui.fail(SplitcodecError(f"no (model, split) has both an {anchor!r} curve and another codec's"))
    source = " vs ".join(str(p) for p in results)
    table = Table(title=f"BD figures against {anchor} ({source})", box=box.SIMPLE_HEAD, pad_edge=False,
                  title_justify="left", caption="rate = bytes per sample, headers included", caption_justify="left")
    for col in ("model @ split", "codec", "metric", "pts", "BD-rate %", "BD-acc.", "note"):
        numeric = col in ("pts", "BD-rate %", "BD-acc.")
        table.add_column(col, justify="right" if numeric else "left", overflow="fold",
                         max_width={"model @ split": 22, "note": 22}.get(col))
    for r in rows:
        note = "; ".join(n for n in (f"anchor at {r.anchor_split}" if r.anchor_split != r.split else "", r.note) if n)
        table.add_row(
            f"{r.model} @ {r.split}", r.codec, r.metric, f"{r.points}/{r.anchor_points}",
            ui.fmt(r.bd_rate, 2), ui.fmt(r.bd_accuracy, 4 if r.metric == "cosine" else 2), note,
        )
    ui.console.print(table)
    ui.console.print("BD-rate < 0: fewer bytes than the anchor at equal accuracy; BD-acc. > 0: more accurate at equal rate.")
