"""Tests of the detection task: the fashion-detect canvases, the ref-yolo detector and the mAP metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from splitcodec.data import Dataset, fashion_detect, fashion_mnist, load_dataset, normalize
from splitcodec.errors import DatasetError, SplitcodecError
from splitcodec.eval.detection import DetectionScore, mean_average_precision, postprocessor, predict
from splitcodec.models import get_model_cfg, load
from splitcodec.models import ref_yolo, registry
from splitcodec.pipeline import cut
from splitcodec.split import list_split_points

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "reference_models.json"


def _fashion_mnist_available() -> bool:
    try:
        fashion_mnist.find_dir()
    except DatasetError:
        return False
    return True


needs_fmnist = pytest.mark.skipif(not _fashion_mnist_available(), reason="apt-get install dataset-fashion-mnist")
needs_weights = pytest.mark.skipif(
    not (registry.WEIGHTS_DIR / "ref-yolo.pt").is_file(), reason="train with scripts/train_detector.py"
)


@pytest.fixture(scope="module")
def test_canvases() -> tuple[np.ndarray, list[fashion_detect.Canvas]]:
    return fashion_detect.generate("test", 100)


# --------------------------------------------------------------------------------------------------
# the data set


@needs_fmnist
def test_generation_is_deterministic_and_seeded(test_canvases: tuple[np.ndarray, list]) -> None:
    images, canvases = test_canvases
    again, canvases_again = fashion_detect.generate("test", 10)
    assert np.array_equal(again, images[:10])
    for a, b in zip(canvases_again, canvases):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
    later, _ = fashion_detect.generate("test", 2, start=5)  # canvas i does not depend on the count
    assert np.array_equal(later, images[5:7])
    other, _ = fashion_detect.generate("test", 10, seed=fashion_detect.SEED + 1)
    assert not np.array_equal(other, images[:10])


@needs_fmnist
def test_canvases_shape_counts_and_labels(test_canvases: tuple[np.ndarray, list]) -> None:
    images, canvases = test_canvases
    assert images.shape == (100, 96, 96) and images.dtype == np.uint8
    counts = [len(c.labels) for c in canvases]
    assert 1 <= min(counts) and max(counts) <= fashion_detect.MAX_ITEMS and np.mean(counts) > 2.5
    labels = np.concatenate([c.labels for c in canvases])
    assert set(labels.tolist()) == set(range(10))
    boxes = np.concatenate([c.boxes for c in canvases])
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 96).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    assert images.std() > 10  # clutter and noise: the background is not flat


@needs_fmnist
def test_boxes_are_tight_around_the_items_pixels() -> None:
    pool, pool_labels = fashion_detect._pool("test")
    for i in range(30):
        c = fashion_detect.make_canvas(np.random.default_rng([7, i]), pool, pool_labels, with_masks=True)
        assert c.masks is not None and len(c.masks) == len(c.boxes)
        for box, mask in zip(c.boxes.astype(int), c.masks):
            x1, y1, x2, y2 = box
            inside = mask[y1:y2, x1:x2]
            assert inside.sum() == mask.sum()  # no item pixel outside its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            assert (c.image[mask] > 0).all()  # the item's pixels are visible on the canvas


@needs_fmnist
def test_limited_overlap(test_canvases: tuple[np.ndarray, list]) -> None:
    for c in test_canvases[1]:
        for i in range(len(c.boxes)):
            for j in range(i):
                assert fashion_detect._overlap(c.boxes[i], c.boxes[j]) <= fashion_detect.MAX_OVERLAP


def test_splits_draw_items_from_disjoint_source_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fashion_detect.SOURCE_SPLIT == {"train": "train", "calibration": "calibration", "test": "test"}
    asked: list[str] = []

    def fake_pool(split: str) -> tuple[np.ndarray, np.ndarray]:
        asked.append(fashion_detect.SOURCE_SPLIT[split])
        code = {"train": 1, "calibration": 2, "test": 3}[split]  # each source split: its own class
        return np.full((5, 28, 28), 200, np.uint8), np.full(5, code, np.int64)

    monkeypatch.setattr(fashion_detect, "_pool", fake_pool)
    for split, code in (("train", 1), ("calibration", 2), ("test", 3)):
        _, canvases = fashion_detect.generate(split, 5)
        assert {int(label) for c in canvases for label in c.labels} == {code}
    assert asked == ["train", "calibration", "test"]


@needs_fmnist
def test_dataset_is_cached_atomically_and_subset_keeps_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPLITCODEC_CACHE", str(tmp_path))
    monkeypatch.setitem(fashion_detect.SIZES, "calibration", 20)
    data = load_dataset("fashion-detect", "calibration")
    files = sorted(p.name for p in fashion_detect.cache_dir().iterdir())
    assert files == ["calibration-20.npz"]  # no temporary file left behind
    version = f"v{fashion_detect.GENERATOR_VERSION}-{fashion_detect.SEED}"
    assert fashion_detect.cache_dir() == tmp_path / "fashion-detect" / version
    again = load_dataset("fashion-detect", "calibration")  # read back from the cache
    assert torch.equal(again.raw, data.raw) and data.raw.shape == (20, 1, 96, 96) and data.labels is None
    assert data.targets is not None and again.targets is not None
    for a, b in zip(data.targets, again.targets):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
    images, canvases = fashion_detect.generate("calibration", 20)
    assert np.array_equal(data.raw[:, 0].numpy(), images)
    assert np.array_equal(data.targets[3]["boxes"].numpy(), canvases[3].boxes)
    sub = data.subset(5)
    assert len(sub) == 5 and sub.targets == data.targets[:5]
    with pytest.raises(DatasetError, match="targets"):
        Dataset("x", "y", data.images, None, data.raw, data.mean, data.std, targets=data.targets[:3])


# --------------------------------------------------------------------------------------------------
# the metric and the detector


def test_map_of_ground_truth_against_itself_is_one() -> None:
    gen = torch.Generator().manual_seed(0)
    targets = []
    for _ in range(20):
        xy = torch.rand(3, 2, generator=gen) * 60
        wh = 8 + torch.rand(3, 2, generator=gen) * 30
        targets.append({"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(0, 10, (3,), generator=gen)})
    preds = [{**t, "scores": torch.ones(len(t["labels"]))} for t in targets]
    assert mean_average_precision(preds, targets) == DetectionScore(map_50=1.0, map=1.0)
    shifted = [{**p, "boxes": p["boxes"] + 4.0} for p in preds]  # IoU < 0.95 for most boxes
    score = mean_average_precision(shifted, targets)
    assert score.map < score.map_50 <= 1.0
    with pytest.raises(SplitcodecError, match="one prediction per target"):
        mean_average_precision(preds[:3], targets)


def test_decode_turns_one_confident_cell_into_its_box() -> None:
    grid = torch.full((1, 15, 12, 12), -10.0)
    grid[0, 0, 5, 3] = 10.0  # objectness of the cell at row 5, column 3: centre (28, 44) px
    grid[0, 1:3, 5, 3] = torch.tensor([0.5, -0.25])  # centre moved by (+4, -2) px
    grid[0, 3:5, 5, 3] = torch.tensor([2.0, 3.0]).log()  # 16 × 24 px
    grid[0, 5 + 7, 5, 3] = 10.0
    (det,) = ref_yolo.decode(grid)
    assert det["labels"].tolist() == [7] and det["scores"][0] > 0.99
    torch.testing.assert_close(det["boxes"], torch.tensor([[24.0, 30.0, 40.0, 54.0]]))
    assert postprocessor("ref-yolo") is ref_yolo.decode
    with pytest.raises(SplitcodecError, match="not a detector"):
        postprocessor("ref-resnet")


def test_ref_yolo_cfg_and_size() -> None:
    cfg = get_model_cfg("ref-yolo")
    assert cfg.task == "detection" and cfg.dataset == "fashion-detect" and cfg.input_size == (1, 96, 96)
    params = sum(p.numel() for p in registry.create_model("ref-yolo").parameters())
    assert 150_000 <= params <= 400_000


def test_forward_and_split_are_bit_exact_at_every_split_point() -> None:
    model = registry.create_model("ref-yolo").eval()
    with torch.no_grad():  # non-trivial BN statistics, so every layer changes its input
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 1, 96, 96)
    points = list_split_points(model, x[:1])
    leaky = [p for p in points if p.activation == "leaky_relu"]
    assert len(leaky) >= 3 and all(p.negative_slope == pytest.approx(0.1) for p in leaky)
    assert {"stem", "stage1.down", "stage2.down", "neck"} <= {p.name for p in leaky}
    with torch.no_grad():
        ref = model(x)
        assert ref.shape == (3, 15, 12, 12)
        for p in points:
            c = cut(model, p.name, x)
            mid = c.head(x)
            assert tuple(mid.shape[1:]) == p.shape
            assert torch.equal(c.tail(mid), ref), p.name


@needs_weights
def test_weights_load_by_name_and_match_the_record() -> None:
    model = load("ref-yolo")
    assert model.splitcodec_cfg is get_model_cfg("ref-yolo") and not model.training
    path = registry.WEIGHTS_DIR / "ref-yolo.pt"
    assert path.stat().st_size < 2_000_000
    assert all(v.dtype == torch.float16 for v in torch.load(path, weights_only=True).values() if v.is_floating_point())
    recorded = json.loads(RESULTS.read_text())["ref-yolo"]
    assert recorded["test_canvases"] >= 5000
    assert recorded["params"] == sum(p.numel() for p in model.parameters())
    assert {"ref-darknet", "ref-resnet"} <= set(json.loads(RESULTS.read_text()))


@needs_fmnist
@needs_weights
def test_committed_weights_detect_on_test_canvases(test_canvases: tuple[np.ndarray, list]) -> None:
    images, canvases = test_canvases
    x = normalize(torch.from_numpy(images[:, None].copy()), fashion_detect.MEAN, fashion_detect.STD)
    targets = [{"boxes": torch.from_numpy(c.boxes), "labels": torch.from_numpy(c.labels)} for c in canvases]
    score = mean_average_precision(predict(load("ref-yolo"), x, ref_yolo.decode), targets)
    assert score.map_50 >= FLOOR_MAP_50 and score.map >= FLOOR_MAP


FLOOR_MAP_50 = 0.80  # these 100 canvases gave 0.871 and 0.703; all 5,000: see reference_models.json
FLOOR_MAP = 0.60
