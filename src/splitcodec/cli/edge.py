"""``splitcodec export --model …``: an edge package (ONNX head, fitted codec config, manifest) for a
torch-free device; the ``export`` command itself lives in :mod:`splitcodec.cli.reporting`."""

from __future__ import annotations

from pathlib import Path

from splitcodec.cli.common import console
from splitcodec.cli.common import fail as _fail
from splitcodec.errors import SplitcodecError


def export_package_cmd(model: str, split: str | None, codec: str, fit: str | None, calibration: int,
                       weights: Path | None, out: Path) -> None:
    """Write the package and print what it holds; run it with `splitcodec edge --package OUT`."""
    from splitcodec.edge.export import export_package

    try:
        with console.status(f"exporting {model} @ {split or 'default split'} with {codec}…"):
            m = export_package(model, out, split=split, codec=codec, fit=fit or None, calibration_samples=calibration,
                               weights=str(weights) if weights else None)
    except SplitcodecError as exc:
        _fail(exc)
    console.print(f"wrote {out}: {model} @ {m.split}, input {m.input_shape}, features {m.features_shape}, "
                  f"codec {m.codec['id']} (config {m.codec['config_ref']})")
