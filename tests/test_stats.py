"""Paired intervals, rate at a given loss and the metric fallback, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from splitcodec.eval.compare import compare_records
from splitcodec.eval.records import Record, load_records
from splitcodec.eval.stats import (
    changed_predictions,
    paired_counts,
    paired_fields,
    paired_loss_interval,
    rate_at_loss,
    wilson,
)


def test_wilson_matches_scipy():
    for k, n in ((96, 100), (0, 50), (300, 300), (17, 40)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_newcombe_interval_with_zero_correlation_is_square_and_add():
    # e*h == f*g makes phi = 0: the interval is D -/+ sqrt((p1-l1)^2 + (u2-p2)^2), (u1-p1)^2 + (p2-l2)^2)
    e, f, g, h = 4, 2, 2, 1
    p1 = p2 = 6 / 9
    l1, u1 = wilson(6, 9)
    lo, hi = paired_loss_interval(e, f, g, h)
    assert lo == pytest.approx(-100 * math.hypot(p1 - l1, u1 - p2))
    assert hi == pytest.approx(100 * math.hypot(u1 - p1, p2 - l1))


def test_no_changed_prediction_still_has_an_interval_of_about_a_point_on_300_images():
    lo, hi = paired_loss_interval(both=285, ref_only=0, coded_only=0, neither=15)
    assert lo < 0 < hi and 0.5 < hi < 2.0 and lo == pytest.approx(-hi, abs=0.2)


def test_newcombe_interval_covers_the_true_loss_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    probs = [0.90, 0.04, 0.02, 0.04]  # both right, ref only, coded only, both wrong: true loss 2 pp
    tables = rng.multinomial(300, probs, size=2000)
    hits = sum(lo <= 2.0 <= hi for lo, hi in (paired_loss_interval(*t) for t in tables))
    assert 0.93 <= hits / 2000 <= 0.975


def test_counts_and_record_fields_from_logits():
    labels = torch.tensor([0, 1, 2, 0, 1])
    ref = torch.eye(3)[[0, 1, 2, 1, 1]]  # right on 0, 1, 2, 4
    out = torch.eye(3)[[0, 2, 2, 0, 1]]  # right on 0, 2, 3, 4
    assert paired_counts([1, 1, 1, 0, 1], [1, 0, 1, 1, 1]) == (3, 1, 1, 0)
    assert changed_predictions(ref.argmax(1), out.argmax(1)) == 2
    fields = paired_fields(ref, out, labels)
    assert fields["changed"] == 2
    assert (fields["loss_low"], fields["loss_high"]) == pytest.approx(paired_loss_interval(3, 1, 1, 0))
    assert "loss_low" not in paired_fields(ref, out, None)


def test_rate_at_loss_interpolates_on_the_hull_in_log_rate():
    r = rate_at_loss([1.0, 2.0, 4.0], [3.0, 1.0, 0.0], 2.0, loss_low=[2.0, 0.5, -0.5], loss_high=[4.0, 2.5, 1.0])
    assert r.rate == pytest.approx(math.sqrt(2))  # halfway from loss 3 to 1, halfway from log 1 to log 2
    assert r.low == pytest.approx(1.0)  # the optimistic curve is already there
    assert r.high == pytest.approx(2 * 2 ** (1 / 3))  # loss 2.5 -> 1 between rates 2 and 4: a third of the way
    # a dominated point (more bits, more loss) does not bend the hull
    assert rate_at_loss([1.0, 2.0, 3.0, 4.0], [3.0, 1.0, 2.0, 0.0], 2.0).rate == pytest.approx(math.sqrt(2))
    never = rate_at_loss([1.0, 2.0], [5.0, 4.0], 1.0)
    assert never.rate is None and "never" in never.note
    first = rate_at_loss([1.0, 2.0], [0.2, 0.0], 1.0)
    assert first.rate == 1.0 and "upper bound" in first.note


def _rec(codec, rate, top1, cosine):
    return Record("m", "s", codec, {}, 300, rate, rate, top1, 95.0, 95.0 - top1, None, 0.0, 0.0, cosine=cosine)


def test_compare_auto_falls_back_to_cosine_when_top1_is_flat():
    anchor = [_rec("hevc", r, a, c) for r, a, c in ((100, 90, 0.95), (200, 94, 0.99), (400, 95, 0.999))]
    flat = [_rec("png", r, 95.0, c) for r, c in ((150, 0.97), (300, 0.995), (500, 0.9999))]
    (row,) = compare_records(anchor + flat, anchor="hevc")
    assert row.metric == "cosine" and row.bd_rate is not None and "rising" not in row.note


def test_old_result_files_load_without_interval_fields():
    records = load_records("benchmarks/results/foundation.json")
    assert records and all(r.loss_low is None and r.changed is None for r in records)


def test_bd_on_two_point_curves_and_a_note_when_the_common_range_is_narrow():
    anchor = [_rec("hevc", r, a, None) for r, a in ((100, 80.0), (400, 90.0))]
    short = [_rec("mine", r, a, None) for r, a in ((50, 80.0), (200, 90.0))]
    (row,) = compare_records(anchor + short, anchor="hevc", metric="top1")
    assert row.bd_rate == pytest.approx(-50.0) and row.note == ""
    narrow = [_rec("mine", r, a, None) for r, a in ((50, 89.0), (200, 95.0))]  # overlaps 89-90 only
    (row,) = compare_records(anchor + narrow, anchor="hevc", metric="top1")
    assert row.bd_rate is not None and "over 10 % of a curve's accuracy range only" in row.note
