"""The CLI, run in-process (typer's CliRunner)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rich.console import Console

from splitcodec import cli
from splitcodec.cli import app, main

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables are checked by content: render them wide enough not to wrap names."""
    monkeypatch.setattr(cli.common, "console", Console(width=250))


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result


def test_codecs_and_models_tables():
    out = run("codecs")
    assert out.exit_code == 0 and "uniform" in out.stdout and "raw" in out.stdout
    out = run("models")
    assert out.exit_code == 0 and "ref-resnet" in out.stdout and "mobilenetv2-imagenet" in out.stdout


def test_splits_lists_the_default(tmp_path):
    out = run("splits", "ref-resnet")
    assert out.exit_code == 0, out.output
    assert "default" in out.stdout and "relu" in out.stdout


def test_encode_decode_files_inline_and_by_reference(tmp_path):
    x = torch.relu(torch.randn(1, 16, 7, 7))
    calib = torch.relu(torch.randn(8, 16, 7, 7))
    torch.save(x, tmp_path / "x.pt")
    np.save(tmp_path / "calib.npy", calib.numpy())
    out = run("encode", str(tmp_path / "x.pt"), str(tmp_path / "x.scb"), "--codec", "uniform:bits=8")
    assert out.exit_code == 0, out.output
    out = run("decode", str(tmp_path / "x.scb"), str(tmp_path / "y.npy"))
    assert out.exit_code == 0, out.output
    y = np.load(tmp_path / "y.npy")
    assert y.shape == x.shape and np.abs(y - x.numpy()).max() < x.max().item() / 255

    out = run("encode", str(tmp_path / "x.pt"), str(tmp_path / "r.scb"), "--codec", "uniform:bits=2",
              "--fit", str(tmp_path / "calib.npy"), "--config-out", str(tmp_path / "codec.json"))
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "codec.json").read_text())["id"] == "uniform"
    assert (tmp_path / "r.scb").stat().st_size < (tmp_path / "x.scb").stat().st_size
    assert run("decode", str(tmp_path / "r.scb"), str(tmp_path / "r.pt")).exit_code == 2  # no config given
    out = run("decode", str(tmp_path / "r.scb"), str(tmp_path / "r.pt"), "--config", str(tmp_path / "codec.json"))
    assert out.exit_code == 0, out.output
    assert torch.load(tmp_path / "r.pt").shape == x.shape
    out = run("info", str(tmp_path / "r.scb"))
    assert "by reference" in out.stdout and "16 container" in out.stdout


def test_clear_errors_and_exit_codes(tmp_path):
    (tmp_path / "junk.scb").write_bytes(b"SC\x10garbage")
    out = run("decode", str(tmp_path / "junk.scb"), str(tmp_path / "o.pt"))
    assert out.exit_code == 2 and "checksum" in out.output
    torch.save(torch.zeros(2, 2), tmp_path / "z.pt")
    out = run("encode", str(tmp_path / "z.pt"), str(tmp_path / "o.scb"), "--codec", "uniform:bits=4,2")
    assert out.exit_code == 2 and "exactly one" in out.output
    assert main(["encode", str(tmp_path / "z.pt"), str(tmp_path / "o.scb"), "--codec", "nope"]) == 2


@pytest.mark.slow
def test_eval_writes_records_csv_and_plot(tmp_path):
    out_json = tmp_path / "r.json"
    out = run("eval", "--model", "ref-resnet", "--codec", "uniform:bits=8,2", "--codec", "raw:dtype=float16",
              "--samples", "64", "--calibration", "16", "--out", str(out_json))
    assert out.exit_code == 0, out.output
    records = json.loads(out_json.read_text())["records"]
    assert [r["codec"] for r in records] == ["uniform", "uniform", "raw"]
    assert records[2]["top1_loss"] == pytest.approx(0.0, abs=1e-9)
    assert records[0]["bpe"] < 8.6 and records[1]["bpe"] < records[0]["bpe"]
    assert out_json.with_suffix(".csv").exists() and out_json.with_suffix(".png").exists()
