"""Listing commands: ``models``, ``splits``, ``codecs``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from splitcodec.cli import common as ui
from splitcodec.cli.common import app
from splitcodec.errors import SplitcodecError


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
            ui.fmt(cfg.num_classes),
            ui.fmt(cfg.test_top1),
            cfg.default_split or "–",
            cfg.description,
        )
    ui.console.print(table)
    ui.console.print("Also: [bold]torchvision:<arch>[/] with --weights FILE (e.g. torchvision:resnet50).")


@app.command("splits")
def splits_cmd(
    model: str = typer.Argument(..., help="registered name, torchvision:<arch> or path/to/file.py:Class"),
    weights: Optional[Path] = typer.Option(None, help="state-dict file loaded into the model"),
    size: Optional[int] = typer.Option(None, help="input height = width (default: the model's input size)"),
) -> None:
    """List every point where the model can be cut (exactly one tensor crosses)."""
    import torch

    from splitcodec.models.user import resolve_model
    from splitcodec.split import list_split_points

    try:
        net = resolve_model(model, weights)
        cfg = getattr(net, "splitcodec_cfg", None)
        if cfg is None and not size:
            raise SplitcodecError(f"{model} does not say its input size: add --size H (input H×H)")
        c, h, w = cfg.input_size if cfg is not None else (_in_channels(net), size, size)
        if size:
            h = w = size
        points = list_split_points(net, torch.zeros(1, c, h, w))
    except SplitcodecError as exc:
        ui.fail(exc)
    default = cfg.default_split if cfg is not None else None
    table = Table(title=f"split points of {model} (input 1×{c}×{h}×{w})")
    for col in ("#", "name", "aliases", "shape", "elements", "activation"):
        table.add_column(col, justify="right" if col in ("#", "elements") else "left")
    for i, p in enumerate(points):
        act = p.activation + (f"({p.negative_slope:g})" if p.negative_slope is not None else "")
        mark = " [bold green]← default[/]" if default in (p.name, *p.aliases) else ""
        table.add_row(str(i), p.name + mark, ", ".join(p.aliases), "×".join(map(str, p.shape)), str(p.numel), act)
    ui.console.print(table)


def _in_channels(net) -> int:
    """Input channels of the first convolution (3 when there is none)."""
    import torch

    conv = next((m for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)), None)
    return conv.in_channels if conv is not None else 3


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
    ui.console.print(table)
