"""Rate–accuracy plots of result records (one panel per model/split, one line per codec)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable

from splitcodec.eval.records import Record

__all__ = ["plot_rate_accuracy", "codec_colour", "CODEC_COLOURS"]

#: One colour per codec id in every figure (matplotlib's tab10/tab20 colours); other ids get a stable hash.
CODEC_COLOURS = {
    "hevc": "#1f77b4", "av1": "#ff7f0e", "lightweight": "#2ca02c", "uniform": "#d62728", "nearlossless": "#9467bd",
    "raw": "#8c564b", "ffv1": "#e377c2", "png": "#7f7f7f", "webp": "#bcbd22", "jpegxl": "#17becf",
    "image-hevc": "#aec7e8", "image-jpeg": "#ffbb78", "image-webp": "#98df8a",
}


def codec_colour(codec: str) -> str:
    """The codec's colour, the same in every figure."""
    if codec in CODEC_COLOURS:
        return CODEC_COLOURS[codec]
    import zlib

    import matplotlib

    return matplotlib.colors.to_hex(matplotlib.colormaps["tab20"](zlib.crc32(codec.encode()) % 20))


METRIC_LABELS = {"top1": "top-1 accuracy (%)", "map_50": "mAP@0.5 (%)"}


def _metric(r: Record) -> tuple[float | None, str]:
    if r.score is not None:
        return r.score, METRIC_LABELS.get(r.metric or "", f"{r.metric} (%)")
    if r.top1 is not None:
        return r.top1, "top-1 accuracy (%)"
    return r.cosine, "output cosine similarity"


def _yerr(r: Record) -> tuple[float, float] | None:
    """(below, above) of top-1 from the loss interval: top-1 = top1_ref − loss."""
    if r.top1 is None or getattr(r, "loss_low", None) is None or r.top1_ref is None:
        return None
    return max(0.0, r.top1 - (r.top1_ref - r.loss_high)), max(0.0, (r.top1_ref - r.loss_low) - r.top1)


def log_rate_axis(ax) -> None:
    """Log x axis with 1-2-5 ticks and plain labels (matplotlib's default minor labels overlap on
    curves spanning less than a decade)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_rate_accuracy(records: Iterable[Record], path: str | Path, title: str | None = None) -> Path:
    """Write a PNG: bits per element (log) vs the task score (top-1, mAP@0.5; cosine similarity without one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    panels: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        panels[(r.model, r.split)].append(r)
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    for ax, ((model, split), recs) in zip(axes.flat, sorted(panels.items())):
        by_codec: dict[str, list[Record]] = defaultdict(list)
        for r in recs:
            by_codec[r.codec].append(r)
        ylabel = "top-1 accuracy (%)"
        for i, (codec, rs) in enumerate(sorted(by_codec.items())):
            pts = sorted((r.bpe, _metric(r)[0], _yerr(r)) for r in rs if _metric(r)[0] is not None and r.bpe > 0)
            ylabel = _metric(rs[0])[1]
            if pts:
                xs, ys, errs = zip(*pts)
                style = dict(color=codec_colour(codec), marker="osD^v<>p*h"[i % 10])
                ax.plot(xs, ys, ms=3.5, lw=1.3, label=codec, **style)
                if all(e is not None for e in errs):  # the paired 95 % interval of the loss, drawn on top-1
                    ax.errorbar(xs, ys, yerr=list(zip(*errs)), fmt="none", ecolor=style["color"], lw=0.7, alpha=0.6)
        ref = next((v for r in recs for v in (r.score_ref, r.top1_ref) if v is not None), None)
        if ref is not None:
            ax.axhline(ref, color="k", ls="--", lw=0.8, label="uncut model")
            ax.axhline(ref - 1.0, color="gray", ls=":", lw=0.8, label="−1 point loss")
        log_rate_axis(ax)
        ax.set_xlabel("bits per element (headers included)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{model} @ {split}", fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
