"""Detections drawn on a few ``fashion-detect`` test canvases, one row per source, side by side.

Rows: the ground truth, the uncut ``ref-yolo``, and ``ref-yolo`` cut at ``--split`` with its features coded
by the ``lightweight`` codec at three rates (``--lam``; fitted on the 64 calibration canvases, each canvas
coded alone).  Row titles give the rate (bits per element, bytes per canvas) and the mAP@0.5 on the
drawn canvases.

    PYTHONPATH=src python benchmarks/detection_picture.py        # writes benchmarks/results/detection_examples.png
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from splitcodec.codecs import get_codec  # noqa: E402
from splitcodec.data.fashion_detect import CLASS_NAMES  # noqa: E402
from splitcodec.eval import code_samples, prepare  # noqa: E402
from splitcodec.eval.detection import mean_average_precision  # noqa: E402
from splitcodec.models.ref_yolo import decode  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLOURS = plt.get_cmap("tab10").colors


def draw_grid(
    raw: torch.Tensor,
    rows: Mapping[str, Sequence[dict[str, torch.Tensor]]],
    path: Path,
    min_score: float = 0.3,
) -> None:
    """Draw uint8 N×1×H×W canvases once per named row of detections (or targets, which have no scores).

    Boxes are coloured by class and labelled with the class name (and the score, for detections of at
    least ``min_score``).  Each panel's title gives the row name.
    """
    n = len(raw)
    fig, axes = plt.subplots(len(rows), n, figsize=(2.1 * n, 2.3 * len(rows)), squeeze=False)
    for r, (name, dets) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(raw[c, 0].numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            _draw_boxes(ax, dets[c], min_score)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_boxes(ax: plt.Axes, det: dict[str, torch.Tensor], min_score: float) -> None:
    scores = det.get("scores")
    for k, (box, label) in enumerate(zip(det["boxes"].tolist(), det["labels"].tolist())):
        if scores is not None and float(scores[k]) < min_score:
            continue
        x1, y1, x2, y2 = box
        colour = COLOURS[label % len(COLOURS)]
        ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=colour))
        text = CLASS_NAMES[label] + ("" if scores is None else f" {float(scores[k]):.2f}")
        ax.text(x1 - 0.5, y1 - 1.5, text, color=colour, fontsize=5.5, va="bottom")


def coded_rows(ctx, lams: Sequence[float]) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Detections from the tail on lightweight-coded features, one named row per λ."""
    rows = {}
    for lam in lams:
        codec = get_codec("lightweight", lam=lam).fit(ctx.calib_features, activation=ctx.activation)
        coded = code_samples(codec, ctx.features)
        with torch.no_grad():
            dets = decode(ctx.tail(coded.decoded))
        bpe = coded.mean_bytes * 8 / ctx.features[0].numel()
        score = mean_average_precision(dets, ctx.dataset.targets)
        rows[f"lightweight λ={lam}\n{bpe:.2f} bpe, {coded.mean_bytes:.0f} B\n(mAP@0.5 {score.map_50:.2f} here)"] = dets
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="canvases to draw (the first n test canvases)")
    parser.add_argument("--split", default="stage2.down", help="where ref-yolo is cut")
    parser.add_argument("--lam", type=float, nargs=3, default=[0.03, 0.2, 0.5], help="three lightweight rate knobs")
    parser.add_argument("--out", type=Path, default=RESULTS / "detection_examples.png")
    args = parser.parse_args(argv)
    ctx = prepare("ref-yolo", args.split, samples=args.n)
    data = ctx.dataset
    assert data.targets is not None
    uncut = decode(ctx.ref_out)
    score = mean_average_precision(uncut, data.targets)
    rows = {"ground truth": data.targets, f"ref-yolo uncut\n(mAP@0.5 {score.map_50:.2f} here)": uncut}
    rows.update(coded_rows(ctx, args.lam))
    draw_grid(data.raw, rows, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
