"""A torchvision model on an image folder from the CLI, and the same from an experiment file: same records."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch
import torchvision
from rich.console import Console
from typer.testing import CliRunner

from splitcodec import cli
from splitcodec.cli import app
from splitcodec.errors import SplitcodecError
from splitcodec.eval import load_records
from splitcodec.experiment import Experiment, load_experiment

from tests.test_sources import make_folder

runner = CliRunner()
TIMING = ("encode_ms", "decode_ms")


@pytest.fixture()
def narrow_console(monkeypatch):
    console = Console(width=100, record=True)
    monkeypatch.setattr(cli.common, "console", console)
    return console


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    make_folder(root / "val", classes=("a", "b", "c"), per_class=3, size=(40, 36))
    make_folder(root / "calib", classes=("a", "b"), per_class=2, size=(40, 36), seed=5)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), root / "r18.pt")
    return root


def _strip(path):
    return [{k: v for k, v in asdict(r).items() if k not in TIMING} for r in load_records(path)]


def test_torchvision_model_on_an_image_folder_cli_and_experiment_file_agree(setup, narrow_console):
    root = setup
    args = ["eval", "--model", "torchvision:resnet18", "--weights", str(root / "r18.pt"), "--split", "layer2",
            "--dataset", str(root / "val"), "--calibration-data", str(root / "calib"), "--image-size", "32",
            "--codec", "uniform:bits=8,3", "--out", str(root / "cli.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (root / "exp.toml").write_text(
        'model = "torchvision:resnet18"\nweights = "r18.pt"\nsplit = "layer2"\ndataset = "val"\n'
        'calibration_data = "calib"\nimage_size = 32\nout = "file.json"\n[codec.uniform]\nbits = [8, 3]\n')
    result = runner.invoke(app, ["run", str(root / "exp.toml")])
    assert result.exit_code == 0, result.output
    a, b = _strip(root / "cli.json"), _strip(root / "file.json")
    assert len(a) == 2 and a == b
    assert a[0]["samples"] == 9 and a[0]["changed"] is not None and a[0]["loss_low"] <= a[0]["top1_loss"]
    text = narrow_console.export_text()
    assert "uniform" in text and "bits=3" in text and "separate calibration data" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_flags_and_file_keys_map_one_to_one():
    import inspect

    from splitcodec.cli.evaluation import eval_cmd

    flags = set(inspect.signature(eval_cmd).parameters)
    keys = {f for f in Experiment.__dataclass_fields__}
    assert flags == keys


def test_bad_out_suffix_and_unknown_keys_are_cli_errors(tmp_path):
    result = runner.invoke(app, ["eval", "--codec", "raw", "--samples", "5", "--out", str(tmp_path / "r.csv")])
    assert result.exit_code == 2 and ".json" in result.output
    (tmp_path / "e.toml").write_text('model = "ref-resnet"\nsampels = 5\n')
    with pytest.raises(SplitcodecError, match="unknown key.*sampels.*samples"):
        load_experiment(tmp_path / "e.toml")


def test_model_without_dataset_says_which_flag_to_add(setup):
    result = runner.invoke(app, ["eval", "--model", "torchvision:resnet18", "--split", "layer2", "--codec", "raw"])
    assert result.exit_code == 2 and "--dataset" in result.output


def test_compressai_export_and_replot(setup, tmp_path):
    result = runner.invoke(app, ["export", str(setup / "cli.json"), "-o", str(tmp_path / "cai")])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "cai").glob("*.json")
    doc = json.loads(path.read_text())
    assert set(doc) >= {"name", "results"} and len(doc["results"]["bpp"]) == 2
    assert doc["results"]["bpp"] == sorted(doc["results"]["bpp"])
    result = runner.invoke(app, ["plot", str(setup / "cli.json"), "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 0 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_two_splits_code_input_pictures_once(setup):
    from splitcodec.experiment import run_experiment

    root = setup
    exp = Experiment(model="torchvision:resnet18", weights=str(root / "r18.pt"), split=["layer1", "layer2"],
                     dataset=str(root / "val"), calibration_data=str(root / "calib"), image_size=32,
                     codec=["uniform:bits=8", "image-jpeg:quality=90"])
    run = run_experiment(exp)
    assert sorted((r.split, r.codec) for r in run.records) == [
        ("input", "image-jpeg"), ("layer1", "uniform"), ("layer2", "uniform")]


def test_codec_colours_are_fixed_across_figures():
    from splitcodec.eval.plot import codec_colour

    assert codec_colour("hevc") == "#1f77b4" and codec_colour("my-codec") == codec_colour("my-codec")
    assert len({codec_colour(c) for c in ("hevc", "av1", "lightweight", "uniform", "nearlossless")}) == 5
