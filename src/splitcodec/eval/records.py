"""One result record per (model, split, codec, setting), written identically by every benchmark.

JSON files hold ``{"meta": {...}, "records": [...]}``; CSV files hold one row per record with the
same columns (``params`` and ``extra`` as JSON text).  Top-1 and task scores are in percent, times are
milliseconds per sample, rates count every byte of every stream (container headers included).
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from splitcodec.errors import SplitcodecError

__all__ = ["Record", "save_records", "load_records", "run_meta"]


@dataclass
class Record:
    model: str
    split: str
    codec: str
    params: dict[str, Any]
    samples: int
    bpe: float  # bits per feature element, per sample, headers included
    bytes_per_sample: float
    top1: float | None  # % with coded features; None without labels
    top1_ref: float | None  # % of the uncut model on the same samples
    top1_loss: float | None  # top1_ref - top1, percentage points
    agreement: float | None  # % of samples whose top-1 matches the uncut model's; None without logits
    encode_ms: float
    decode_ms: float
    bpp: float | None = None  # bits per input pixel (H*W of the input image)
    cosine: float | None = None  # mean cosine similarity of the model output vs the uncut model
    elements: int = 0  # feature elements per sample
    header_bytes: float = 0.0  # container bytes per sample (included in bpe)
    config_bytes: int = 0  # one-time size of the codec config sent to the receiver (not in bpe)
    extra: dict[str, Any] = field(default_factory=dict)
    # Paired statistics (splitcodec.eval.stats); None in result files written before they existed.
    loss_low: float | None = None  # 95 % interval of top1_loss (pp), same images uncut vs coded
    loss_high: float | None = None
    changed: int | None = None  # images whose top-1 class differs from the uncut model's
    # The task's figures (splitcodec.eval.tasks); None in files written before tasks existed.
    task: str | None = None  # "classification" or "detection"
    metric: str | None = None  # what score is: "top1" (%) or "map_50" (COCO mAP@0.5, %)
    score: float | None = None  # the metric with coded features
    score_ref: float | None = None  # the metric of the uncut model on the same samples
    score_loss: float | None = None  # score_ref - score, points

    @property
    def label(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.codec}({args})"


COLUMNS = [f.name for f in fields(Record)]


def run_meta(**more: Any) -> dict[str, Any]:
    """Provenance written beside records: when, where, with which versions."""
    import numpy
    import torch

    import splitcodec

    return {
        "splitcodec": splitcodec.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **more,
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def save_records(records: Iterable[Record], path: str | Path, meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``path`` (.json) and the same records as ``path`` with suffix .csv; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [_clean(asdict(r)) for r in records]
    doc = {"meta": meta or run_meta(), "records": rows}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    csv_path = path.with_suffix(".csv")
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return path, csv_path


def load_records(path: str | Path) -> list[Record]:
    """Read records back from a JSON result file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        rows = doc["records"] if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise TypeError("expected records as written by `splitcodec eval --out results.json`")
        known = set(COLUMNS)
        return [Record(**{k: v for k, v in row.items() if k in known}) for row in rows]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SplitcodecError(f"cannot read result records from {path}: {exc}") from exc
