"""Bring your own data and model: dataset sources of each kind, calibration apart, file.py:Class models."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from splitcodec.data import load_dataset
from splitcodec.data.sources import load_source, resolve_dataset
from splitcodec.errors import SplitcodecError
from splitcodec.eval import prepare
from splitcodec.models.user import resolve_model


def make_folder(root, classes=("cat", "dog"), per_class=3, size=(20, 24), seed=0):
    """An ImageFolder tree of random RGB pictures; returns the pixels in file order."""
    rng = np.random.default_rng(seed)
    pictures = []
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.png")
            pictures.append(a)
    (root / classes[0] / "notes.txt").write_text("not a picture")
    return pictures


def test_registered_name(tmp_path):
    data = load_source("fashion-mnist", split="test")
    assert data.name == "fashion-mnist" and len(data) == 10000


def test_image_folder_keeps_pixels_and_sorted_class_labels(tmp_path):
    pictures = make_folder(tmp_path / "imgs")
    data = load_source(tmp_path / "imgs", input_size=(3, 20, 24), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(data.raw, torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2))
    assert torch.allclose(data.images, (data.raw.float() / 255 - 0.5) / 0.25)
    small = load_source(tmp_path / "imgs", input_size=(1, 8, 8))  # resized, centre-cropped, grey
    assert small.raw.shape == (6, 1, 8, 8)


def test_pt_and_npz_files(tmp_path):
    raw = torch.randint(0, 256, (5, 1, 6, 6), dtype=torch.uint8)
    labels = torch.arange(5)
    torch.save({"images": raw, "labels": labels}, tmp_path / "d.pt")
    np.savez(tmp_path / "d.npz", images=raw.numpy(), labels=labels.numpy())
    torch.save(raw.float() / 255, tmp_path / "floats.pt")
    for name in ("d.pt", "d.npz"):
        data = load_source(tmp_path / name)
        assert torch.equal(data.raw, raw) and torch.equal(data.labels, labels)
    assert torch.equal(load_source(tmp_path / "floats.pt").raw, raw) and load_source(tmp_path / "floats.pt").labels is None
    torch.save(raw.float() * 3, tmp_path / "bad.pt")
    with pytest.raises(SplitcodecError, match=r"uint8 pixels or floats in \[0, 1\]"):
        load_source(tmp_path / "bad.pt")
    with pytest.raises(SplitcodecError, match="--dataset"):
        load_source(tmp_path / "missing.npz")


def test_data_loader_keeps_the_inputs_and_labels():
    x = (torch.randint(0, 256, (10, 3, 4, 4)).float() / 255 - 0.5) / 0.5
    y = torch.arange(10) % 3
    data = load_source(DataLoader(TensorDataset(x, y), batch_size=4), mean=(0.5,), std=(0.5,))
    assert torch.equal(data.images, x) and torch.equal(data.labels, y)
    assert torch.allclose(data.normalize(data.raw), x, atol=1e-6)


def _hashes(raw):
    return {hashlib.sha256(img.numpy().tobytes()).digest() for img in raw}


def test_a_test_split_object_never_calibrates_on_test_images():
    """The old trap: prepare(dataset=<the test split>) calibrated on test images 9936-9999."""
    test = load_dataset("fashion-mnist", "test")
    ctx = prepare("ref-resnet", dataset=test, samples=50, calibration_samples=64)
    assert len(ctx.dataset) == 50 and "calibration split" in ctx.data_note
    assert not _hashes(ctx.calibration.raw) & _hashes(test.raw)


def test_unregistered_data_is_cut_disjointly_and_a_calibration_argument_wins(tmp_path):
    make_folder(tmp_path / "a", per_class=5)
    make_folder(tmp_path / "b", per_class=2, seed=1)
    src = resolve_dataset(tmp_path / "a", calibration_samples=3)
    assert (len(src.test), len(src.calibration)) == (8, 2) and "last 2 of 10" in src.note
    assert not _hashes(src.test.raw) & _hashes(src.calibration.raw)
    src = resolve_dataset(tmp_path / "a", tmp_path / "b")
    assert (len(src.test), len(src.calibration)) == (10, 4)


USER_MODEL = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))

def make():
    return Net()
'''


def test_user_model_from_a_file_with_weights(tmp_path):
    (tmp_path / "mynet.py").write_text(USER_MODEL)
    model = resolve_model(f"{tmp_path}/mynet.py:Net")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    again = resolve_model(f"{tmp_path}/mynet.py:make", weights=tmp_path / "w.pt")
    x = torch.randn(2, 1, 6, 6)
    assert torch.equal(model(x), again(x)) and not again.training
    with pytest.raises(SplitcodecError, match="has no 'Nope'.*Net"):
        resolve_model(f"{tmp_path}/mynet.py:Nope")
    with pytest.raises(SplitcodecError, match="file.py:ClassName"):
        resolve_model("no-such-model")


def test_user_model_evaluates_on_a_pt_file(tmp_path):
    from splitcodec.eval import evaluate

    (tmp_path / "mynet.py").write_text(USER_MODEL)
    raw = torch.randint(0, 256, (30, 1, 6, 6), dtype=torch.uint8)
    torch.save((raw, torch.arange(30) % 3), tmp_path / "d.pt")
    (rec,) = evaluate(f"{tmp_path}/mynet.py:Net", "relu", ["raw:dtype=float32"], dataset=str(tmp_path / "d.pt"),
                      samples=None, calibration_samples=6)
    assert rec.samples == 24 and rec.top1_loss == 0.0 and rec.changed == 0 and rec.loss_low < 0 < rec.loss_high


def test_plugin_model_group(monkeypatch):
    from splitcodec.models import user

    class EP:
        name = "tiny-plugin"

        def load(self):
            return lambda: torch.nn.Linear(2, 2)

    monkeypatch.setattr(user, "plugin_models", lambda: {"tiny-plugin": EP()})
    assert isinstance(resolve_model("tiny-plugin"), torch.nn.Linear)
