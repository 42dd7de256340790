"""BD comparison of result files (splitcodec.eval.compare and ``splitcodec compare``)."""

from __future__ import annotations

import pytest

from splitcodec.cli import main
from splitcodec.errors import SplitcodecError
from splitcodec.eval import bd_accuracy, bd_rate, save_records
from splitcodec.eval.compare import compare_records
from splitcodec.eval.records import Record

CURVE = ((1000.0, 80.0), (2000.0, 86.0), (4000.0, 89.0), (8000.0, 90.0))


def rec(codec, split, rate, top1, model="m", cosine=None):
    return Record(model, split, codec, {}, 100, rate / 100, rate, top1, 90.5, None if top1 is None else 90.5 - top1,
                  None, 1.0, 1.0, cosine=cosine)


def curve(codec, split="layer2", scale=1.0, shift=0.0, model="m"):
    return [rec(codec, split, r * scale, a + shift, model=model) for r, a in CURVE]


def test_bd_figures_match_the_bd_functions():
    a, b = curve("hevc"), curve("mine", scale=0.7, shift=0.3)
    (row,) = compare_records(a + b, anchor="hevc")
    ra, aa = zip(*[(r.bytes_per_sample, r.top1) for r in a])
    rb, ab = zip(*[(r.bytes_per_sample, r.top1) for r in b])
    assert row.codec == "mine" and row.metric == "top1" and row.points == row.anchor_points == 4
    assert row.bd_rate == pytest.approx(bd_rate(ra, aa, rb, ab)) and row.bd_rate < -30
    assert row.bd_accuracy == pytest.approx(bd_accuracy(ra, aa, rb, ab)) and row.bd_accuracy > 0


def test_pairs_by_model_and_split_and_falls_back_to_the_input_anchor():
    anchor_file = curve("hevc", "layer2") + curve("image-jpeg", "input", scale=0.1)
    test_file = curve("mine", "layer2", scale=0.5) + curve("mine", "layer3", scale=0.5) + curve("mine", "layer2", model="other")
    rows = compare_records(anchor_file, test_file, anchor="hevc")
    assert [(r.model, r.split) for r in rows] == [("m", "layer2")]  # no hevc at layer3 or for "other"
    assert rows[0].bd_rate == pytest.approx(-50.0)
    rows = compare_records(anchor_file, test_file, anchor="image-jpeg")
    assert {(r.split, r.anchor_split) for r in rows} == {("layer2", "input"), ("layer3", "input")}
    assert all(r.bd_rate == pytest.approx(400.0) for r in rows)  # 0.5 / 0.1 of the bytes at equal accuracy


def test_cosine_when_top1_is_missing_and_notes_when_curves_do_not_overlap():
    a = [rec("hevc", "s", r, None, cosine=c) for r, c in ((100, 0.9), (200, 0.95), (400, 0.99))]
    b = [rec("mine", "s", r, None, cosine=c) for r, c in ((50, 0.9), (100, 0.95), (200, 0.99))]
    far = [rec("far", "s", r, None, cosine=c) for r, c in ((1, 0.1), (2, 0.2))]
    rows = {r.codec: r for r in compare_records(a + b + far, anchor="hevc")}
    assert rows["mine"].metric == "cosine" and rows["mine"].bd_rate == pytest.approx(-50.0)
    assert rows["far"].bd_rate is None and "curves do not overlap" in rows["far"].note
    short = [rec("short", "s", 100, None, cosine=0.95)]
    rows = {r.codec: r for r in compare_records(a + short, anchor="hevc")}
    assert rows["short"].bd_rate is None and rows["short"].note == "a curve has < 2 points of rising accuracy"
    with pytest.raises(SplitcodecError, match="no records of anchor codec 'av1'"):
        compare_records(a, anchor="av1")
    with pytest.raises(SplitcodecError, match="metric"):
        compare_records(a, anchor="hevc", metric="psnr")


def test_compare_command(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_records(curve("hevc") + curve("av1", scale=0.9), a)
    save_records(curve("mine", scale=0.5), b)
    assert main(["compare", str(a), str(b), "--anchor", "hevc"]) == 0
    out = capsys.readouterr().out
    assert "mine" in out and "-50.00" in out and "av1" not in out.split("BD figures")[1].split("\n", 1)[1]
    assert main(["compare", str(a), "--anchor", "hevc", "--codec", "av1"]) == 0
    assert "-10.00" in capsys.readouterr().out
    assert main(["compare", str(a), "--anchor", "nope"]) == 2
    assert "no records of anchor codec 'nope'" in capsys.readouterr().err


def test_bd_errors_are_typed():
    from splitcodec.errors import CurveError, DisjointCurvesError, ShortCurveError
    from splitcodec.eval.bd import bd_accuracy, bd_rate

    with pytest.raises(ShortCurveError):
        bd_rate([1, 2], [0.5, 0.4], [1, 2], [0.4, 0.5])
    with pytest.raises(DisjointCurvesError):
        bd_rate([1, 2], [0.1, 0.2], [1, 2], [0.8, 0.9])
    with pytest.raises(DisjointCurvesError):
        bd_accuracy([1, 2], [0.1, 0.2], [10, 20], [0.1, 0.2])
    with pytest.raises(CurveError):
        bd_rate([1, 2, 3], [0.1, 0.2], [1, 2], [0.1, 0.2])
