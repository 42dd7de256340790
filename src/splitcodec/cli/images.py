"""The ``reconstruct`` command: input images rebuilt from (coded) features by the trained decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from splitcodec.cli import common as ui
from splitcodec.cli.common import app
from splitcodec.errors import SplitcodecError


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

    from splitcodec.reconstruct import image_grid, reconstruct_images, reconstruct_streams, save_png

    try:
        out.mkdir(parents=True, exist_ok=True)
        if stream:
            batches = reconstruct_streams(model, split, [p.read_bytes() for p in stream], weights=weights)
            for path, images in zip(stream, batches):
                for i, img in enumerate(images):
                    target = out / (f"{path.stem}.png" if len(images) == 1 else f"{path.stem}_{i}.png")
                    save_png(img, target)
                    ui.console.print(f"wrote {target}")
            return
        with ui.console.status(f"preparing {model} (split, features)…"):
            rec = reconstruct_images(model, split, None if codec.lower() == "none" else codec, samples=samples, weights=weights)
        for i, img in enumerate(list(rec.columns.values())[-1]):
            save_png(img, out / f"{i:04d}.png")
        grid = image_grid(list(rec.columns.values()), scale=max(1, 96 // rec.original.shape[-1]))
        Image.fromarray(grid).save(out / "grid.png")
    except SplitcodecError as exc:
        ui.fail(exc)
    ui.console.print(_table(rec, out))


def _table(rec, out: Path) -> Table:
    from splitcodec.reconstruct import psnr, ssim

    table = Table(title=f"{rec.model} @ {rec.split}: {len(rec.original)} test images → {out}/ (grid: {' | '.join(rec.columns)})")
    for col in ("reconstructed from", "bpe", "PSNR dB", "SSIM"):
        table.add_column(col, justify="left" if col == "reconstructed from" else "right")
    for label, imgs in list(rec.columns.items())[1:]:
        table.add_row(label, ui.fmt(rec.bpe[label], 3), ui.fmt(psnr(rec.original, imgs)), ui.fmt(ssim(rec.original, imgs), 4))
    return table
