"""Tasks in the evaluator: detection records (mAP) for ref-yolo, classification records as before."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from splitcodec import cli
from splitcodec.cli import app
from splitcodec.data import Dataset, fashion_detect, normalize
from splitcodec.eval import evaluate, load_records, prepare, save_records
from splitcodec.eval.compare import compare_records
from splitcodec.eval.detection import mean_average_precision, predict
from splitcodec.eval.records import Record
from splitcodec.eval.tasks import Classification, Detection, task_for
from splitcodec.models import get_model_cfg, load
from splitcodec.models.ref_yolo import decode
from test_detection import needs_fmnist, needs_weights
from test_eval import ctx as classification_ctx  # noqa: F401  (the tiny classifier's context fixture)


@pytest.fixture(scope="module")
def canvases() -> Dataset:
    """24 test canvases as a Dataset with boxes (the first 20 are evaluated, the last 4 calibrate)."""
    images, cv = fashion_detect.generate("test", 24)
    raw = torch.from_numpy(images[:, None].copy())
    targets = [{"boxes": torch.from_numpy(c.boxes), "labels": torch.from_numpy(c.labels)} for c in cv]
    x = normalize(raw, fashion_detect.MEAN, fashion_detect.STD)
    return Dataset("fashion-detect", "test", x, None, raw, fashion_detect.MEAN, fashion_detect.STD, targets)


@pytest.fixture(scope="module")
def det_ctx(canvases: Dataset):
    def part(sl: slice) -> Dataset:
        return replace(canvases, images=canvases.images[sl], raw=canvases.raw[sl], targets=canvases.targets[sl])

    return prepare("ref-yolo", "stage2.down", dataset=part(slice(0, 20)), calibration=part(slice(20, 24)),
                   samples=None, calibration_samples=4)


def test_task_follows_the_model_cfg() -> None:
    assert isinstance(task_for(None), Classification)
    assert isinstance(task_for(get_model_cfg("ref-resnet")), Classification)
    det = task_for(get_model_cfg("ref-yolo"))
    assert isinstance(det, Detection) and det.metric == "map_50"


@needs_fmnist
@needs_weights
def test_detection_records_score_map_against_the_uncut_detector(det_ctx, canvases: Dataset) -> None:
    assert len(det_ctx.dataset) == 20 and len(det_ctx.calibration) == 4
    assert det_ctx.calibration.targets == canvases.targets[20:]  # the calibration slice keeps its boxes
    uncut = mean_average_precision(predict(load("ref-yolo"), canvases.images[:20], decode), canvases.targets[:20])
    raw, u2 = evaluate(None, context=det_ctx, codecs=["raw:dtype=float32", "uniform:bits=2"])
    for r in (raw, u2):
        assert (r.task, r.metric, r.samples) == ("detection", "map_50", 20)
        assert r.top1 is None and r.top1_ref is None and r.top1_loss is None and r.agreement is None
        assert r.score_ref == pytest.approx(100 * uncut.map_50) and r.extra["map_ref"] == pytest.approx(100 * uncut.map)
        assert r.score_loss == pytest.approx(r.score_ref - r.score)
    assert raw.score == raw.score_ref and raw.score_loss == 0.0 and raw.extra["map"] == raw.extra["map_ref"]
    assert math.isclose(raw.cosine, 1.0, abs_tol=1e-9)
    assert u2.score < raw.score and u2.bpe < 3  # 2-bit codes lose boxes


@needs_fmnist
@needs_weights
def test_image_codecs_run_the_whole_detector_on_the_decoded_canvas(det_ctx, canvases: Dataset) -> None:
    (rec,) = evaluate(None, context=det_ctx, codecs=["image-jpeg:quality=95"])
    assert rec.split == "input" and rec.task == "detection" and rec.elements == canvases.raw[0].numel()
    assert 0 <= rec.score_loss < 5 and rec.extra["map"] > 0


def test_classification_records_keep_their_fields_and_values(classification_ctx) -> None:  # noqa: F811
    raw, u2 = evaluate(None, context=classification_ctx, codecs=["raw:dtype=float32", "uniform:bits=2"])
    assert raw.top1 == raw.top1_ref == 100.0 and raw.top1_loss == 0.0 and raw.agreement == 100.0
    for r in (raw, u2):
        assert (r.task, r.metric) == ("classification", "top1")
        assert (r.score, r.score_ref, r.score_loss) == (r.top1, r.top1_ref, r.top1_loss)
        assert "map" not in r.extra


def test_old_result_files_load_with_empty_task_fields(tmp_path) -> None:
    rec = Record("m", "s", "uniform", {"bits": 8}, 10, 8.0, 100.0, 90.0, 91.0, 1.0, 99.0, 0.1, 0.1)
    path, _ = save_records([rec], tmp_path / "r.json")
    doc = json.loads(path.read_text())
    for row in doc["records"]:
        for key in ("task", "metric", "score", "score_ref", "score_loss"):
            del row[key]
    path.write_text(json.dumps(doc))
    (back,) = load_records(path)
    assert back.top1 == 90.0 and back.task is None and back.score is None


def test_bd_figures_use_the_detection_score() -> None:
    def rec(codec: str, rate: float, score: float) -> Record:
        return Record("ref-yolo", "stage2.down", codec, {}, 10, rate, rate, None, None, None, None, 0.0, 0.0,
                      cosine=0.9, task="detection", metric="map_50", score=score, score_ref=87.0, score_loss=87.0 - score)

    anchor = [rec("hevc", r, s) for r, s in ((100, 80), (200, 85), (400, 86.5))]
    test = [rec("lightweight", r / 2, s) for r, s in ((100, 80), (200, 85), (400, 86.5))]
    (c,) = compare_records(anchor, test, anchor="hevc")
    assert c.metric == "score" and c.bd_rate == pytest.approx(-50.0) and c.bd_accuracy > 0


@needs_fmnist
@needs_weights
def test_eval_cli_on_the_detector(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cli.common, "console", Console(width=250))
    out = tmp_path / "det.json"
    result = CliRunner().invoke(app, ["eval", "--model", "ref-yolo", "--samples", "12", "--calibration", "8",
                                      "--codec", "uniform:bits=8", "--out", str(out), "--no-plot"])
    assert result.exit_code == 0, result.output
    title, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    assert "uncut mAP@0.5" in title and "mAP@[.5:.95]" in title
    header = next(line for line in rows if "codec" in line)
    assert "mAP@0.5" in header and "top-1" not in header
    (rec,) = load_records(out)
    assert rec.task == "detection" and rec.samples == 12 and rec.score is not None
