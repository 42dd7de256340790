"""The ``export`` command: an edge package (ONNX head, fitted codec config, manifest) for a torch-free device."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from splitcodec.cli.common import app, console
from splitcodec.cli.common import fail as _fail
from splitcodec.errors import SplitcodecError


@app.command("export")
def export_cmd(
    model: str = typer.Option(..., help="registered model name"),
    split: Optional[str] = typer.Option(None, help="split point (default: the model's default split)"),
    codec: str = typer.Option("lightweight:lam=0.2", help="codec spec, one setting"),
    fit: Optional[str] = typer.Option("calibration", help="dataset split whose images fit the codec ('' for none)"),
    calibration: int = typer.Option(64, help="calibration samples for fit()"),
    weights: Optional[Path] = typer.Option(None, help="weights file (torchvision:<arch> models)"),
    out: Path = typer.Option(..., "-o", "--out", help="folder to write the package into"),
) -> None:
    """Write the head as ONNX, the fitted codec config and a manifest: run them with `splitcodec edge --package`."""
    from splitcodec.edge.export import export_package

    try:
        with console.status(f"exporting {model} @ {split or 'default split'} with {codec}…"):
            m = export_package(model, out, split=split, codec=codec, fit=fit or None, calibration_samples=calibration,
                               weights=str(weights) if weights else None)
    except SplitcodecError as exc:
        _fail(exc)
    console.print(f"wrote {out}: {model} @ {m.split}, input {m.input_shape}, features {m.features_shape}, "
                  f"codec {m.codec['id']} (config {m.codec['config_ref']})")
