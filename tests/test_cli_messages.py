"""Error messages in CLI terms: each names the flag that fixes it."""

from __future__ import annotations

import socket

import pytest
import torch
from typer.testing import CliRunner

from splitcodec.cli import app

runner = CliRunner()


def test_unfitted_codec_and_missing_config_name_the_flags(tmp_path):
    torch.save(torch.rand(1, 4, 8, 8), tmp_path / "x.pt")
    result = runner.invoke(app, ["encode", str(tmp_path / "x.pt"), str(tmp_path / "x.sc"), "--codec", "lightweight:lam=0.2"])
    assert result.exit_code == 2 and "--fit" in result.output
    result = runner.invoke(app, ["encode", str(tmp_path / "x.pt"), str(tmp_path / "x.sc"), "--config-out",
                                 str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["decode", str(tmp_path / "x.sc"), str(tmp_path / "y.pt")])
    assert result.exit_code == 2 and "decode --config" in result.output


@pytest.mark.slow
def test_edge_without_a_server_says_so(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["edge", "--url", f"http://127.0.0.1:{port}", "--samples", "2", "--calibration", "8"])
    assert result.exit_code == 2 and "no server answers" in result.output and "--url" in result.output


def test_edge_out_must_be_json(tmp_path):
    result = runner.invoke(app, ["edge", "--samples", "1", "--out", str(tmp_path / "e.txt")])
    assert result.exit_code == 2 and ".json" in result.output
