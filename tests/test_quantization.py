"""The error models and quantizer design of the lightweight codec, checked against Monte-Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from splitcodec.codecs.lightweight import (
    FeatureModel,
    ScalarQuantizer,
    choose_uniform,
    design_ecsq,
    entropy_bits,
    fit_feature_model,
    fit_report,
    model_cost,
    optimal_range,
    uniform_quantizer,
)
from splitcodec.codecs.lightweight.ecsq import lower_envelope
from splitcodec.errors import CodecError

CASES = [
    ("gaussian", "relu", 0.3, 1.2, 0.0),
    ("gaussian", "relu", -0.8, 1.0, 0.0),  # sparse: 79 % zeros
    ("gaussian", "relu6", 2.5, 2.0, 0.0),
    ("gaussian", "leaky_relu", 0.2, 1.1, 0.1),
    ("gaussian", "other", -0.4, 0.7, 0.0),
    ("laplace", "relu", 0.3, 1.2, 0.0),
    ("laplace", "relu", -0.8, 1.0, 0.0),
    ("laplace", "relu6", 2.5, 2.0, 0.0),
    ("laplace", "leaky_relu", 0.2, 1.1, 0.1),
    ("laplace", "other", -0.4, 0.7, 0.0),
    ("gengauss", "relu", 0.1, 1.0, 0.0, 0.7),  # heavier-tailed than Laplace
    ("gengauss", "relu6", 2.0, 1.5, 0.0, 1.4),
    ("gengauss", "leaky_relu", 0.2, 1.1, 0.1, 0.7),
    ("gengauss", "other", -0.4, 0.7, 0.0, 3.0),  # lighter-tailed than Gaussian
]
IDS = [f"{c[0]}-{c[1]}-{c[2]}" for c in CASES]


def _model(case) -> FeatureModel:
    family, act, mu, s, slope, *shape = case
    return FeatureModel(family, mu, s, act, slope, *shape)


def _quantizers(m: FeatureModel, y: np.ndarray) -> list[ScalarQuantizer]:
    """A uniform quantizer on a clipped range, and an irregular one with a dead zone."""
    one_sided = m.activation in ("relu", "relu6")
    lo = 0.0 if one_sided else float(np.quantile(y, 0.02))
    hi = float(np.quantile(y, 0.97))
    uni = uniform_quantizer(lo, hi, 5)
    span = hi - lo
    t = lo + span * np.array([0.2, 0.35, 0.7])
    r = np.array([lo, lo + 0.28 * span, lo + 0.5 * span, lo + 0.9 * span])
    return [uni, ScalarQuantizer(t, r)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cell_probabilities_and_distortion_match_monte_carlo(case):
    m = _model(case)
    y = m.sample(1_000_000 if m.family == "gengauss" else 400_000, np.random.default_rng(1))
    for q in _quantizers(m, y):
        p, d = m.cell_stats(q.thresholds, q.levels)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        idx = q.quantize(y)
        err = (y - q.dequantize(idx).astype(np.float64)) ** 2
        p_mc = np.bincount(idx, minlength=q.n) / y.size
        d_mc = np.bincount(idx, weights=err, minlength=q.n) / y.size
        np.testing.assert_allclose(p, p_mc, atol=0.003)
        # total distortion (clipping + quantization) within 2 %
        assert d.sum() == pytest.approx(d_mc.sum(), rel=0.02)
        # and the rate the formulas predict
        assert entropy_bits(p) == pytest.approx(entropy_bits(p_mc), rel=0.01)
    assert m.mean_square() == pytest.approx(float(np.mean(y * y)), rel=0.02)


def test_gaussian_clipping_tail_matches_the_closed_form():
    """E[(X - c)^2 ; X > c] = σ² [(1 + a²) Q(a) − a φ(a)], a = (c − μ)/σ (methods.md §1)."""
    mu, s = 0.4, 1.7
    m = FeatureModel("gaussian", mu, s, "other")
    for c in (-1.0, 0.5, 2.0, 5.0, 9.0):
        a = (c - mu) / s
        expected = s * s * ((1 + a * a) * special.ndtr(-a) - a * math.exp(-a * a / 2) / math.sqrt(2 * math.pi))
        p, d = m.cell_stats(np.array([c]), np.array([c - 100.0, c]))
        assert d[1] == pytest.approx(expected, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fit_recovers_the_pre_activation_model_from_post_activation_values(case):
    truth = _model(case)
    y = truth.sample(100_000, np.random.default_rng(2)).astype(np.float32)
    fitted, _ = fit_feature_model(y, truth.activation, truth.slope, family=truth.family)
    assert fitted is not None and fitted.family == truth.family
    assert fitted.loc == pytest.approx(truth.loc, abs=0.04 * truth.scale)
    assert fitted.scale == pytest.approx(truth.scale, rel=0.04)
    if truth.family == "gengauss":
        assert fitted.shape == pytest.approx(truth.shape, rel=0.05)
    # "auto" keeps the most likely family: the true one, or the generalised Gaussian that nests it
    best, loglik = fit_feature_model(y, truth.activation, truth.slope)
    assert best.family in (truth.family, "gengauss"), loglik
    if best.family != truth.family:
        assert best.shape == pytest.approx({"gaussian": 2.0, "laplace": 1.0}[truth.family], rel=0.05)
    report = fit_report(fitted, y)
    assert report["ks"] < 0.01 and report["tv"] < 0.02
    if truth.activation in ("relu", "relu6"):
        assert report["zero_frac_model"] == pytest.approx(report["zero_frac_data"], abs=0.01)


def test_fit_report_flags_a_wrong_family():
    y = FeatureModel("laplace", 0.0, 1.0, "relu").sample(50_000, np.random.default_rng(3))
    wrong, _ = fit_feature_model(y, "relu", family="gaussian")
    right, _ = fit_feature_model(y, "relu", family="laplace")
    assert fit_report(wrong, y)["ks"] > 3 * fit_report(right, y)["ks"]


def test_fit_of_a_dead_channel_is_none():
    model, _ = fit_feature_model(np.zeros(1000), "relu")
    assert model is None
    with pytest.raises(CodecError):
        fit_feature_model(np.ones(10), "gelu")


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[6]], ids=[IDS[0], IDS[3], IDS[6]])
def test_optimal_range_minimises_the_model_cost(case):
    m = _model(case)
    ms = m.mean_square()
    for lam in (0.0, 0.05 * ms):
        lo, hi, j = optimal_range(m, 4, lam)
        d, r = model_cost(m, uniform_quantizer(lo, hi, 4))
        assert j == pytest.approx(d + lam * r, rel=1e-6)  # float32 levels vs the float64 search
        # no nearby range is better
        for dlo, dhi in ((0, 0.97), (0, 1.03), (-0.05, 1), (0.05, 1)):
            if m.activation in ("relu", "relu6") and dlo:
                continue
            alt_lo = lo + dlo * (hi - lo)
            d2, r2 = model_cost(m, uniform_quantizer(alt_lo, hi * dhi if hi > 0 else hi, 4))
            assert d2 + lam * r2 >= j - 1e-12


def test_mse_optimal_clip_is_narrower_than_the_rate_distortion_optimal_clip():
    """With λ > 0 the optimum trades distortion for rate by widening the clip (wider zero cell)."""
    m = FeatureModel("laplace", -0.3, 1.0, "relu")
    ms = m.mean_square()
    _, hi0, _ = optimal_range(m, 4, 0.0)
    _, hi1, _ = optimal_range(m, 4, 0.1 * ms)
    assert hi1 > hi0
    d0, r0 = model_cost(m, uniform_quantizer(0, hi0, 4))
    d1, r1 = model_cost(m, uniform_quantizer(0, hi1, 4))
    assert d0 < d1 and r1 < r0


def test_choose_uniform_picks_fewer_levels_at_higher_lambda():
    m = FeatureModel("gaussian", 0.0, 1.0, "relu")
    ms = m.mean_square()
    n_hi, *_ = choose_uniform(m, 0.01 * ms, max_levels=12)
    n_lo, *_ = choose_uniform(m, 1.0 * ms, max_levels=12)
    assert n_lo < n_hi


def test_envelope_thresholds_reproduce_the_lagrangian_assignment():
    rng = np.random.default_rng(4)
    for _ in range(50):
        levels = np.sort(rng.normal(0, 1, rng.integers(2, 9)))
        lengths = rng.uniform(0.2, 6, levels.size)
        lam = float(rng.uniform(0, 0.5))
        keep, cuts = lower_envelope(levels, lengths, lam)
        y = rng.normal(0, 1.5, 5000)
        cost = (y[:, None] - levels[None, :]) ** 2 + lam * lengths[None, :]
        brute = levels[np.argmin(cost, axis=1)]
        mine = levels[keep][np.searchsorted(cuts, y, side="right")]
        np.testing.assert_array_equal(mine, brute)


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_ecsq_beats_the_uniform_quantizer_it_starts_from(act):
    m = FeatureModel("laplace", 0.1, 1.0, act, 0.1 if act == "leaky_relu" else 0.0)
    y = m.sample(200_000, np.random.default_rng(5))
    lam = 0.05 * float(np.mean(y * y))
    lo = 0.0 if act == "relu" else float(np.quantile(y, 0.01))
    hi = float(np.quantile(y, 0.995))
    uni = uniform_quantizer(lo, hi, 6)
    ecsq = design_ecsq(y, uni.levels, lam, lo=lo, hi=hi, fix_zero=act == "relu")

    def cost(q: ScalarQuantizer) -> float:
        idx = q.quantize(y)
        mse = float(np.mean((y - q.dequantize(idx)) ** 2))
        return mse + lam * float(entropy_bits(np.bincount(idx) / y.size))

    assert cost(ecsq) < cost(uni)
    if act == "relu":
        assert ecsq.levels[0] == 0.0  # the zero level stays exactly at 0
        # the frequent zero level costs fewer bits, so its cell reaches past the nearest-neighbour midpoint
        assert ecsq.thresholds[0] > ecsq.levels[1] / 2
    # a larger λ spends fewer bits
    coarse = design_ecsq(y, uni.levels, 8 * lam, lo=lo, hi=hi, fix_zero=act == "relu")
    assert coarse.info["bits"] < ecsq.info["bits"]


def test_quantizer_validation():
    with pytest.raises(CodecError):
        ScalarQuantizer(np.array([1.0, 0.5]), np.array([0.0, 0.7, 1.2]))
    with pytest.raises(CodecError):
        ScalarQuantizer(np.array([1.0]), np.array([0.0]))
    with pytest.raises(CodecError):
        FeatureModel("cauchy", 0, 1)
    with pytest.raises(CodecError):
        FeatureModel("gaussian", 0, 1, "leaky_relu", slope=1.5)
    assert uniform_quantizer(1.0, 1.0, 4).n == 1
