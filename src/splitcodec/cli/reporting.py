"""Result-file commands: ``report`` (one HTML page), ``plot`` (re-plot a result file), ``export`` (CompressAI JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from splitcodec.cli import common as ui
from splitcodec.cli.common import app
from splitcodec.errors import SplitcodecError


def _json_path(path: Path, flag: str) -> None:
    if path.suffix.lower() != ".json":
        raise SplitcodecError(f"{flag} {path}: give a result file ending in .json (written by eval, run or a benchmark)")


@app.command("report")
def report_cmd(
    results: Path = typer.Argument(Path("benchmarks/results"), help="folder of result files (.json)"),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="the HTML page to write"),
    title: str = typer.Option("splitcodec results", help="page title"),
) -> None:
    """One self-contained HTML page: leaderboards (bpe at 0.5/1/2 % loss, BD-rate vs x265, speed), plots, pictures."""
    from splitcodec.eval.report import build_report

    try:
        if out.suffix.lower() not in (".html", ".htm"):
            raise SplitcodecError(f"--out {out}: give a path ending in .html")
        with ui.console.status(f"building {out} from {results} …"):
            path = build_report(results, out, title=title)
    except SplitcodecError as exc:
        ui.fail(exc)
    ui.console.print(f"wrote {path} ({path.stat().st_size // 1024} KiB, self-contained)")


@app.command("plot")
def plot_cmd(
    result: Path = typer.Argument(..., help="a result file (.json)"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="the PNG to write (default: beside the result file)"),
    model: Optional[str] = typer.Option(None, help="only this model's records"),
    codec: list[str] = typer.Option([], help="only these codec ids (repeatable)"),
) -> None:
    """Re-plot a result file: bits per element vs top-1 (with paired 95 % intervals where recorded)."""
    from splitcodec.eval import load_records, plot_rate_accuracy

    try:
        _json_path(result, "plot")
        records = [r for r in load_records(result)
                   if (model is None or r.model == model) and (not codec or r.codec in codec)]
        if not records:
            raise SplitcodecError(f"{result}: no records match --model/--codec")
        target = out or result.with_suffix(".png")
        if target.suffix.lower() != ".png":
            raise SplitcodecError(f"--out {target}: give a path ending in .png")
        path = plot_rate_accuracy(records, target)
    except SplitcodecError as exc:
        ui.fail(exc)
    ui.console.print(f"wrote {path}")


@app.command("export")
def export_cmd(
    result: Path = typer.Argument(..., help="a result file (.json)"),
    out: Path = typer.Option(..., "-o", "--out", help="folder for the curves, one CompressAI-style JSON file each"),
) -> None:
    """Export each (model, split, codec) curve as CompressAI's result JSON: {"name", "results": {"bpp": [...]}}."""
    from splitcodec.eval import load_records
    from splitcodec.eval.report import write_compressai

    try:
        _json_path(result, "export")
        paths = write_compressai(load_records(result), out)
    except SplitcodecError as exc:
        ui.fail(exc)
    ui.console.print(f"wrote {len(paths)} curves to {out}/")
