"""``run experiment.toml`` and what ``eval`` shares with it: run an :class:`~splitcodec.experiment.Experiment`,
render its records in a table that fits 100 columns, write the result files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.table import Table

from splitcodec.cli import common as ui
from splitcodec.cli.common import app
from splitcodec.errors import SplitcodecError

__all__ = ["run_and_render", "compact_table", "param_diff"]


@lru_cache(maxsize=None)
def _defaults(codec_id: str) -> dict[str, Any] | None:
    from splitcodec.codecs import get_codec

    try:
        return get_codec(codec_id).params()
    except SplitcodecError:
        return None


def param_diff(codec_id: str, params: dict[str, Any]) -> str:
    """The parameters that differ from the codec's defaults, ``k=v,…`` (``defaults`` when none do)."""
    base = _defaults(codec_id)
    diff = params if base is None else {k: v for k, v in params.items() if base.get(k, object()) != v}
    return ",".join(f"{k}={v}" for k, v in diff.items()) or "defaults"


def _interval(r) -> str:
    loss = r.top1_loss if r.top1_loss is not None else r.score_loss
    if loss is None:
        return "–"
    if getattr(r, "loss_low", None) is None:
        return f"{loss:.2f}"
    return f"{loss:.2f} [{r.loss_low:.1f},{r.loss_high:.1f}]"


def compact_table(records, title: str) -> Table:
    """One row per record in at most 100 columns: parameters shown as the change from the codec's defaults,
    the task's score (top-1, or mAP@0.5 for detection) and its loss (for top-1 with the 95 % paired interval
    and the count of changed predictions)."""
    records = list(records)
    score = "mAP@0.5" if any(r.task == "detection" for r in records) else "top-1"
    splits = sorted({r.split for r in records if r.split != "input"})  # input-picture codecs say so by name
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title_justify="left",
                  caption_justify="left",
                  caption="Δ params: the settings that differ from the codec's defaults; loss: top-1 points lost, with "
                  "its paired 95 % interval; chg: images whose predicted class changed")
    cols = (["split"] if len(splits) > 1 else []) + [
        "codec", "Δ params", "bpe", "B/img", score, "loss pp [95 %]", "chg", "cosine", "enc ms", "dec ms"]
    for col in cols:
        left = col in ("split", "codec", "Δ params")
        table.add_column(col, justify="left" if left else "right", overflow="fold", max_width=24 if left else None)
    for r in records:
        cells = [r.split] if len(splits) > 1 else []
        cells += [
            r.codec, param_diff(r.codec, r.params), ui.fmt(r.bpe, 3), ui.fmt(r.bytes_per_sample, 0),
            ui.fmt(r.top1 if r.top1 is not None else r.score), _interval(r), ui.fmt(getattr(r, "changed", None)), ui.fmt(r.cosine, 4),
            ui.fmt(r.encode_ms, 1), ui.fmt(r.decode_ms, 1),
        ]
        table.add_row(*cells)
    return table


def _settings(specs: list[str]):
    from splitcodec.cli.evaluation import expand_all
    from splitcodec.eval.evaluator import settings_from_specs

    return settings_from_specs(expand_all(specs))


def run_and_render(exp, command: str) -> None:
    """Run ``exp`` with a progress bar, print the table (and where calibration came from), write --out."""
    from splitcodec.eval import plot_rate_accuracy, run_meta, save_records
    from splitcodec.experiment import run_experiment

    try:
        settings = _settings(exp.codec)
        with ui.progress_bar() as progress:
            from splitcodec.experiment import setting_domain

            per_split = sum(setting_domain(s) != "image" for s in settings)
            total = len(settings) + per_split * (max(1, len(exp.split)) - 1)
            task = progress.add_task("codec settings", total=total)
            sample_task = progress.add_task("", total=1)

            def tick(desc: str, done: int, total: int) -> None:
                progress.update(sample_task, description=desc, completed=done, total=total)
                if done == total:
                    progress.advance(task)

            def status(text: str) -> None:
                progress.update(sample_task, description=text, completed=0, total=1)

            run = run_experiment(exp, settings=settings, progress=tick, status=status)
    except SplitcodecError as exc:
        ui.fail(exc)
    for ctx in run.contexts:
        recs = [r for r in run.records if r.split in (ctx.split, "input")]
        title = f"{ctx.model_name} @ {ctx.split}: {len(ctx.features)} test images, {ui.uncut_summary(recs)}"
        ui.console.print(compact_table(recs if len(run.contexts) > 1 else run.records, title))
        if ctx.data_note:
            ui.console.print(f"[dim]{ctx.data_note}[/]")
    if exp.out is not None:
        meta = run_meta(command=command, samples=exp.samples, model=exp.model, dataset=exp.dataset)
        json_path, csv_path = save_records(run.records, exp.out, meta)
        ui.console.print(f"wrote {json_path} and {csv_path}")
        if exp.plot:
            png = plot_rate_accuracy(run.records, Path(exp.out).with_suffix(".png"))
            ui.console.print(f"wrote {png}")


@app.command("run")
def run_cmd(
    experiment: Path = typer.Argument(..., help="an experiment file (.toml): the eval flags as keys"),
    out: Path = typer.Option(None, help="override the file's out"),
    samples: int = typer.Option(None, help="override the file's samples"),
) -> None:
    """Run an experiment file: model, weights, split(s), dataset, codecs and sweeps, samples, output."""
    from splitcodec.experiment import load_experiment

    try:
        exp = load_experiment(experiment)
        exp.out = str(out) if out is not None else exp.out
        exp.samples = samples if samples is not None else exp.samples
        exp.__post_init__()
    except SplitcodecError as exc:
        ui.fail(exc)
    run_and_render(exp, command=f"run {experiment}")
