"""Commands on files: ``encode`` a tensor file, ``decode`` a bitstream file, ``info`` on its header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from splitcodec.cli import common as ui
from splitcodec.cli.common import app, load_tensor, save_tensor
from splitcodec.errors import SplitcodecError


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
    from splitcodec.pipeline import codec_from_spec

    try:
        c = codec_from_spec(codec)
        x = load_tensor(tensor)
        if fit is not None:
            c.fit(load_tensor(fit))
        data = c.encode(x, config="ref" if config_out else "inline")
    except SplitcodecError as exc:
        ui.fail(exc)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    if config_out:
        config_out.parent.mkdir(parents=True, exist_ok=True)
        config_out.write_text(json.dumps(c.get_config()) + "\n")
    bpe = len(data) * 8 / max(1, x.numel())
    ui.console.print(f"{tensor} {tuple(x.shape)} → {output}: {len(data)} bytes, {bpe:.4f} bits/element ({c!r})")


def read_configs(paths: list[Path]) -> list[dict]:
    """The codec configs (JSON) in ``paths``; an unreadable file is a :class:`SplitcodecError`."""
    configs = []
    for path in paths:
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise SplitcodecError(f"cannot read codec config {path}: {exc}") from exc
        if not isinstance(config, dict) or not isinstance(config.get("id"), str):
            raise SplitcodecError(
                f"{path} is not a codec config: expected a JSON object with an \"id\", as written by "
                "`splitcodec encode --config-out codec.json`"
            )
        configs.append(config)
    return configs


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
        for cfg in read_configs(config):
            store.add(cfg)
        x = decode(stream.read_bytes(), store)
    except SplitcodecError as exc:
        ui.fail(exc)
    save_tensor(x, output)
    ui.console.print(f"{stream} → {output}: {tuple(x.shape)} {x.dtype}")


@app.command("info")
def info_cmd(stream: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Show the container header of a bitstream file."""
    from splitcodec.bitstream import unpack

    try:
        frame = unpack(stream.read_bytes())
    except SplitcodecError as exc:
        ui.fail(exc)
    codec = frame.config if frame.config is not None else f"by reference {frame.config_ref.hex()}"
    ui.console.print(f"codec:   {codec}")
    ui.console.print(f"tensor:  {frame.shape} {frame.dtype} ({frame.numel} elements)")
    ui.console.print(f"bytes:   {frame.header_bytes} container + {len(frame.payload)} payload")
