"""report.html from the committed results, opened in headless Chromium (Debian package ``chromium``)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from splitcodec.eval.report import build_report, collect_results, leaderboard

RESULTS = "benchmarks/results"


def test_leaderboard_reads_rates_at_loss_off_each_curve():
    demo = next(r for r in collect_results(RESULTS) if r.path.name == "demo.json")
    rows = {row["codec"]: row for row in leaderboard([r for r in demo.records if r.split == "layer2"])}
    assert rows["hevc"]["bd_rate"] == pytest.approx(0.0, abs=1e-9)
    assert rows["uniform"]["bd_rate"] is not None
    hevc = sorted((r.bpe, r.top1_loss) for r in demo.records if r.codec == "hevc")
    above = min(b for b, loss in hevc if loss <= 1.0)  # bracketing points: the crossing lies between them
    below = max((b for b, loss in hevc if loss > 1.0 and b < above), default=0.0)
    one = rows["hevc"]["at"][1]
    assert one.loss == 1.0 and below < one.rate <= above
    assert one.low is not None and one.high is not None and one.low <= one.rate <= one.high


@pytest.mark.slow
def test_report_opens_in_headless_chromium_with_tables_and_images(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian package chromium is not installed (make system-deps installs it)")
    page = build_report(RESULTS, tmp_path / "report.html")
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "src='data:image/png;base64," in text
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    tables = re.findall(r"<table class=\"lb\">", dom)
    images = re.findall(r"<img alt=\"[^\"]+\" src=\"data:image/png;base64,", dom)
    n_files = len(collect_results(RESULTS))
    assert len(tables) >= n_files and len(images) >= n_files
    assert "bpe at 1 % loss" in dom and "BD-rate vs x265" in dom and "reconstruction" in dom


def test_report_command_wants_an_html_path_and_a_folder_of_results(tmp_path):
    from splitcodec.cli import main

    assert main(["report", RESULTS, "-o", str(tmp_path / "r.pdf")]) == 2
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
