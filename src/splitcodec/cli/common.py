"""What every command module shares: the typer app, the consoles, error exit, number format, tensor files."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rich.markup import escape

from splitcodec.errors import (
    BitstreamError,
    CodecError,
    ConfigError,
    DependencyError,
    NotFittedError,
    SplitcodecError,
    SplitError,
    UnknownCodecError,
    UnknownConfigError,
    UnknownModelError,
)

__all__ = [
    "app", "console", "err_console", "fail", "hint", "report", "TensorFileError", "fmt", "load_tensor", "save_tensor",
    "progress_bar", "records_table", "uncut_summary",
]

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


class TensorFileError(SplitcodecError, ValueError):
    """A file given as a tensor is missing, empty, or holds something other than a tensor."""


#: What to do about an error, by its type (the first matching entry), in command-line terms; None where
#: the message itself already names the flag (a missing config: decode --config; unfitted: encode --fit).
HINTS: tuple[tuple[type[Exception], str | None], ...] = (
    (UnknownConfigError, None),
    (ConfigError, "the stream's inline codec config is malformed: re-encode it with `splitcodec encode`"),
    (BitstreamError, "the file is not an intact splitcodec stream: make one with `splitcodec encode x.pt out.scb`"),
    (NotFittedError, None),
    (UnknownCodecError, "`splitcodec codecs` lists the codecs; give one as --codec id[:key=value...]"),
    (UnknownModelError, "`splitcodec models` lists the models"),
    (SplitError, "`splitcodec splits MODEL` lists a model's split points; pass one with --split"),
    (DependencyError, "install what is named, or pick another --codec (`splitcodec codecs` says what each needs)"),
    (CodecError, "`splitcodec codecs` lists the codecs; give one setting as --codec id:key=value[:key=value...]"),
    (TensorFileError, "save the tensor with torch.save(tensor, 'x.pt') or numpy.save('x.npy', array)"),
)


def hint(exc: BaseException) -> str | None:
    """What the user can do about ``exc`` (None when nothing specific)."""
    return next((text for kind, text in HINTS if isinstance(exc, kind)), None)


def report(exc: BaseException) -> None:
    """Print ``exc`` as an error line on stderr, and a hint line when there is one."""
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
    text = hint(exc)
    if text:
        err_console.print(f"[bold]hint:[/] {escape(text)}")


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` (and what to do about it) as an error and exit with status 2."""
    report(exc)
    raise typer.Exit(code=2)


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats to ``digits`` decimals, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def load_tensor(path: Path):
    """Read a tensor from ``.pt`` (torch.save of a tensor) or ``.npy``."""
    import numpy as np
    import torch

    if path.is_file() and path.stat().st_size == 0:
        raise TensorFileError(f"{path} is empty, not a tensor file")
    try:
        if path.suffix == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        with warnings.catch_warnings():  # the unpickler warns about foreign pickles before refusing them
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise TensorFileError(f"cannot read a tensor from {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # noqa: BLE001  (an unpickler fed text or a foreign object raises anything)
        raise TensorFileError(f"{path} is not a tensor file ({type(exc).__name__})") from exc
    if not isinstance(obj, torch.Tensor):
        raise TensorFileError(f"{path} holds a {type(obj).__name__}, not a tensor")
    return obj


def save_tensor(tensor, path: Path) -> None:
    """Write a tensor as ``.npy`` (bfloat16 widened to float32) or, for any other suffix, ``torch.save``."""
    import numpy as np
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy())
    else:
        torch.save(tensor, path)


def progress_bar() -> Progress:
    """A transient progress display on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def uncut_summary(records) -> str:
    """The uncut model's figures on the evaluated samples, from the records (e.g. ``uncut top-1 91.20 %``)."""
    r = records[0] if records else None
    if r is not None and r.task == "detection":
        return f"uncut mAP@0.5 {fmt(r.score_ref)} %, mAP@[.5:.95] {fmt(r.extra.get('map_ref'))} %"
    return f"uncut top-1 {fmt(r.top1_ref if r is not None else None)} %"


def records_table(records, title: str) -> Table:
    """One row per :class:`~splitcodec.eval.Record`: rate, task score (top-1 or mAP), fidelity, timing."""
    detection = any(r.task == "detection" for r in records)
    scores = ("mAP@0.5 %", "loss pp", "mAP@[.5:.95] %") if detection else ("top-1 %", "loss pp", "agree %")
    table = Table(title=title)
    for col in ("model", "split", "codec", "params", "bpe", "bytes/sample", *scores, "cosine", "enc ms", "dec ms"):
        table.add_column(col, justify="left" if col in ("model", "split", "codec", "params") else "right")
    for r in records:
        params = ",".join(f"{k}={v}" for k, v in r.params.items())
        if detection:
            values = (fmt(r.score), fmt(r.score_loss), fmt(r.extra.get("map")))
        else:
            values = (fmt(r.top1), fmt(r.top1_loss), fmt(r.agreement))
        table.add_row(
            r.model, r.split, r.codec, params, fmt(r.bpe, 3), fmt(r.bytes_per_sample, 1), *values,
            fmt(r.cosine, 4), fmt(r.encode_ms, 3), fmt(r.decode_ms, 3),
        )
    return table
