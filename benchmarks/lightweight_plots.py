"""Plots of ``benchmarks/lightweight.py``: rate–accuracy curves per split, the fitted model vs the histogram.

The curve marked by the label ``DEFAULT`` (the codec's default configuration) is drawn thicker.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from splitcodec.eval import Record
from splitcodec.eval.plot import log_rate_axis
from splitcodec.codecs.lightweight import FeatureModel

DEFAULT = "lightweight (default: ECSQ, model clip, channel tables + levels, context)"


def group_curves(records: list[Record]) -> dict[tuple[str, str], dict[str, list[Record]]]:
    """Records by (model, split), then by curve label (``extra.variant``, else the codec id)."""
    out: dict[tuple[str, str], dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        out[(r.model, r.split)][r.extra.get("variant", r.codec)].append(r)
    return out


def plot(records: list[Record], labels: list[str], path: Path, *, metric: str, title: str, zoom: float | None = None,
         part: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = group_curves([r for r in records if part is None or r.extra.get("part") == part])
    keys = sorted(
        k for k in curves
        if any(getattr(r, metric) is not None for lbl in labels for r in curves[k].get(lbl, []))
    )
    if not keys:
        return
    cols = min(len(keys), 2 if len(keys) == 4 else 3)
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 4.4 * rows), squeeze=False)
    legend: dict[str, Any] = {}
    for ax, key in zip(axes.flat, keys):
        ref = None
        for i, label in enumerate(labels):
            rs = curves[key].get(label)
            if not rs:
                continue
            pts = sorted((r.bpe, getattr(r, metric)) for r in rs if getattr(r, metric) is not None)
            if not pts:
                continue
            xs, ys = zip(*pts)
            style = {"lw": 2.2} if label == DEFAULT else {"lw": 1.2}
            style.update(color=plt.cm.tab20(i % 20), marker="osD^v<>p*hX"[i % 11])
            ax.plot(xs, ys, ms=3.5, label=label, **style)
            ref = rs[0].top1_ref if ref is None else ref
        if metric == "top1" and ref is not None:
            ax.axhline(ref, color="k", ls="--", lw=0.8, label="uncut model")
            ax.axhline(ref - 1, color="gray", ls=":", lw=0.8, label="−1 % top-1")
            if zoom is not None:
                ax.set_ylim(ref - zoom, ref + 0.8)
        if metric == "cosine":
            ax.axhline(0.99, color="gray", ls=":", lw=0.8, label="cosine 0.99")
            if zoom is not None:
                ax.set_ylim(1 - zoom, 1.0005)
        log_rate_axis(ax)
        ax.set_xlabel("bits per element (per-sample stream, headers included)")
        ax.set_ylabel("top-1 accuracy (%)" if metric == "top1" else "embedding cosine similarity")
        ax.set_title(f"{key[0]} @ {key[1]} ({rs[0].elements if rs else '?'} elements)", fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title)
    # one legend below the panels: inside them it hid the low-rate ends of the curves
    ncol = 3
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=ncol, fontsize=7.5, frameon=False)
    bottom = (math.ceil(len(legend) / ncol) * 0.16 + 0.1) / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fit(meta_fit: dict[str, Any], path: Path) -> None:
    """Model CDF vs empirical CDF of the test features (what KS measures), one panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(meta_fit)
    cols = 4 if len(keys) > 4 else len(keys)
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        info = meta_fit[key]
        samples = info.get("_hist")
        if not samples:
            ax.axis("off")
            continue
        edges, dens = np.asarray(samples["edges"]), np.asarray(samples["density"])
        ax.stairs(dens, edges, fill=True, alpha=0.35, label="test features")
        ax.plot(samples["x"], samples["model_density"], "r-", lw=1.2, label=f"model ({info['model'][0]})")
        ax.set_yscale("log")
        ax.set_title(f"{key}\nKS {info['fit_test']['ks']:.3f}, TV {info['fit_test']['tv']:.3f}", fontsize=9)
        ax.set_xlabel("feature value (ReLU cuts: positive part)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def histogram(model: FeatureModel, feats: np.ndarray) -> dict[str, list[float]]:
    """Density of the test features (the zero mass of ReLU cuts left out) next to the model's density."""
    y = feats.ravel().astype(np.float64)
    body = y[y > 0] if model.activation in ("relu", "relu6") else y
    hi = float(np.quantile(body, 0.9995))
    lo = float(min(0.0, np.quantile(body, 0.0005)))
    edges = np.linspace(lo, hi, 81)
    if model.activation in ("relu", "relu6"):
        edges[0] = 1e-9 * (hi - lo)  # leave the point mass at 0 out of the first bin
    counts, _ = np.histogram(y, bins=edges)
    density = counts / y.size / np.diff(edges)
    xs = np.linspace(edges[0], hi, 400)
    eps = (hi - lo) * 1e-4
    model_density = (model.y_cdf(xs + eps, left=True) - model.y_cdf(xs - eps)) / (2 * eps)
    return {"edges": edges.tolist(), "density": density.tolist(), "x": xs.tolist(), "model_density": model_density.tolist()}
