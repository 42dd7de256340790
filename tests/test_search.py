"""Partition search: the latency model, pruned search vs exhaustive, plans and profiles (CPU, fast)."""

from __future__ import annotations

import json
import random

import pytest

from splitcodec.cli import main as cli_main
from splitcodec.search import (
    CLOUD_ONLY,
    EDGE_ONLY,
    SPLIT,
    Candidate,
    CodecCost,
    DeviceProfile,
    ModelProfile,
    Network,
    Plan,
    PlanError,
    PowerProfile,
    ProfileError,
    SplitTiming,
    Timing,
    Transport,
    candidates,
    device_profile,
    exhaustive,
    load_device_profile,
    measure_model,
    predict,
    prune,
    run_search,
    search,
)


def _cand(bytes_=1000.0, loss=0.0, head=2.0, enc=1.0, dec=0.5, tail=3.0, kind=SPLIT, split="s", codec="uniform", **params):
    return Candidate(kind, split, codec, params, bytes_, loss, head, enc, dec, tail)


def test_latency_model_hand_computed():
    c = _cand()
    net = Network(bandwidth_mbit=1, rtt_ms=20)
    tr = Transport(request_bytes=200, response_bytes=300, fixed_ms=4)
    b = predict(c, net, tr, queue_ms=1.5)
    # 1200 B up at 1 Mbit/s = 9.6 ms, 300 B down = 2.4 ms
    assert (b.uplink_ms, b.downlink_ms) == pytest.approx((9.6, 2.4))
    assert b.total_ms == pytest.approx(2 + 1 + 9.6 + 20 + 2.4 + 4 + 1.5 + 0.5 + 3)
    assert predict(c, net).total_ms == pytest.approx(2 + 1 + 8 + 20 + 0.5 + 3)  # the bare formula
    # loss: each direction is one segment, lost with p = 0.1, costing one 200 ms RTO
    lossy = predict(c, Network(1, 20, loss=0.1, rto_ms=200), tr)
    assert lossy.loss_ms == pytest.approx(2 * 0.1 * 200)
    assert Network(1, 0, loss=0.1).loss_ms(3000) == pytest.approx(200 * (1 - 0.9**3))  # 3 segments
    # energy: 3 ms computing at 2 W, 12 ms on the radio at 1 W, the other 27.5 ms idle at 0.5 W
    edge = DeviceProfile("phone", power=PowerProfile(compute_w=2, radio_w=1, idle_w=0.5))
    e = predict(c, net, tr, edge=edge)
    assert e.total_ms == pytest.approx(42.5) and e.energy_j == pytest.approx(1e-3 * (6 + 12 + 13.75))
    only = predict(_cand(kind=EDGE_ONLY, split=None, codec=None, head=7.0), net, tr)
    assert only.total_ms == 7.0 and only.rtt_ms == 0.0
    with pytest.raises(Exception, match="bandwidth"):
        Network(0, 20)


def _synthetic(n: int, seed: int) -> list[Candidate]:
    rng = random.Random(seed)
    out = [_cand(kind=EDGE_ONLY, split=None, codec=None, head=rng.uniform(5, 80), enc=0, dec=0, tail=0, bytes_=0)]
    for s in range(6):
        head, tail = rng.uniform(0, 40), rng.uniform(0, 10)
        out.append(_cand(rng.uniform(2e3, 6e4), 0.0, head, 0.05, 0.05, tail, split=f"s{s}", codec="raw", dtype="float32"))
        for k in range(n):
            out.append(_cand(rng.uniform(50, 2e4), rng.uniform(-0.3, 3), head, rng.uniform(0, 3), rng.uniform(0, 3), tail,
                             split=f"s{s}", bits=k))
    for q in range(5):
        out.append(_cand(rng.uniform(200, 3000), rng.uniform(0, 4), 0.0, rng.uniform(0, 1), rng.uniform(0, 1), 9.0,
                         kind=CLOUD_ONLY, split="input", codec="image-jpeg", quality=q))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_pruned_search_finds_the_exhaustive_optimum(seed):
    cands = _synthetic(12, seed)
    pruned = prune(cands)
    assert len(pruned) < len(cands)
    for mbit in (0.5, 1, 10, 100, 1000):
        for rtt in (0, 20, 100):
            for max_loss in (0.0, 0.5, 1.0, 5.0):
                net = Network(mbit, rtt, loss=0.01)
                fast = search(cands, net, Transport.http(), max_loss=max_loss, pruned=pruned)
                full = search(cands, net, Transport.http(), max_loss=max_loss, method="exhaustive")
                assert fast.choice.total_ms == pytest.approx(full.choice.total_ms)
                assert fast.choice.candidate == full.choice.candidate
                assert fast.evaluated == len(pruned) and full.evaluated == len(cands)
                for base in (full.edge_only, full.cloud_only, full.best_uncompressed):
                    assert base is None or fast.choice.total_ms <= base.total_ms + 1e-9
                # the front holds the choice and nothing on it is dominated
                keys = [(s.total_ms, s.candidate.bytes_per_sample, s.candidate.top1_loss) for s in full.front]
                assert all(not (a != b and all(x <= y for x, y in zip(a, b))) for a in keys for b in keys)


def test_search_respects_the_loss_budget_and_says_when_nothing_fits():
    cheap_lossy = _cand(100.0, 2.0, bits=2)
    exact = _cand(40000.0, 0.0, codec="raw", dtype="float32")
    net = Network(1, 20)
    assert search([cheap_lossy, exact], net, max_loss=1.0).choice.candidate is exact
    assert search([cheap_lossy, exact], net, max_loss=3.0).choice.candidate is cheap_lossy
    with pytest.raises(Exception, match="no candidate"):
        search([cheap_lossy], net, max_loss=1.0)


def _profile() -> ModelProfile:
    t = Timing.fixed
    splits = [SplitTiming("a", t(1.0), t(4.0), 1000), SplitTiming("b", t(3.0), t(1.0), 100)]
    costs = [
        CodecCost("a", "raw", {"dtype": "float32"}, 4016.0, 0.0, 0.01, 0.01),
        CodecCost("a", "uniform", {"bits": 4}, 600.0, 0.3, 0.2, 0.2),
        CodecCost("b", "raw", {"dtype": "float32"}, 416.0, 0.0, 0.01, 0.01),
        CodecCost("input", "image-jpeg", {"quality": 75}, 450.0, 1.5, 0.1, 0.05),
        CodecCost("input", "image-webp", {"quality": 90}, 500.0, 0.4, 0.3, 0.1),
    ]
    return ModelProfile("toy", t(4.5), splits, costs)


def test_candidates_scale_with_the_device_profiles():
    prof = _profile()
    slow = DeviceProfile("slow", slowdown=10, head_ms={"b": 2.0})
    cands = {c.label: c for c in candidates(prof, slow, DeviceProfile("local"))}
    assert cands[EDGE_ONLY].head_ms == pytest.approx(45.0)
    assert cands["a uniform(bits=4)"].head_ms == pytest.approx(10.0) and cands["a uniform(bits=4)"].encode_ms == pytest.approx(2.0)
    assert cands["b raw(dtype=float32)"].head_ms == 2.0  # measured on the device, not scaled
    jpeg = cands["input image-jpeg(quality=75)"]
    assert (jpeg.kind, jpeg.head_ms, jpeg.tail_ms) == (CLOUD_ONLY, 0.0, 4.5)


def test_plan_json_round_trip(tmp_path):
    [res] = run_search(_profile(), [Network(10, 20)], edge=device_profile("x10"), cloud=device_profile("local"))
    plan = Plan.from_result("toy", res, edge="x10")
    path = plan.save(tmp_path / "plan.json")
    back = Plan.load(path)
    assert back == plan and back.predicted_ms == pytest.approx(res.choice.total_ms)
    model, split, spec = back.target()
    assert model == "toy" and split == res.choice.candidate.split
    if back.codec is not None:
        codec = back.build_codec()
        assert codec.codec_id == back.codec and codec.params() == {**codec.params(), **back.params}
    up = Plan("m", SPLIT, "layer2", "lightweight", {"lam": 0.1, "context": True}, 30.0, 0.5, 600.0, {}, 1.0)
    assert up.codec_spec == "lightweight:lam=0.1:context=true"
    from splitcodec.codecs.registry import parse_codec_spec

    assert parse_codec_spec(up.codec_spec) == [("lightweight", {"lam": 0.1, "context": True})]
    for bad, match in (("{", "not JSON"), ("[]", "not a splitcodec plan"),
                       (json.dumps({**plan.to_json(), "kind": "teleport"}), "unknown plan kind"),
                       (json.dumps({**plan.to_json(), "speed": 3}), "malformed")):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(PlanError, match=match):
            Plan.load(tmp_path / "bad.json")
    with pytest.raises(PlanError, match="cannot read"):
        Plan.load(tmp_path / "missing.json")


def test_device_profile_file(tmp_path):
    good = {"format": "splitcodec-device-profile/1", "name": "pi4", "slowdown": 6,
            "head_ms": {"full": 30.5, "layer2": 12}, "encode_ms": {"uniform": 0.8}, "power_w": {"compute": 3, "radio": 1.5}}
    p = tmp_path / "pi4.json"
    p.write_text(json.dumps(good))
    dev = device_profile(str(p))
    assert (dev.name, dev.slowdown, dev.head_ms["layer2"], dev.encode_ms["uniform"]) == ("pi4", 6.0, 12.0, 0.8)
    assert dev.power == PowerProfile(3.0, 1.5, 0.0) and dev.head(_profile(), "full") == 30.5
    assert dev.head(_profile(), "a") == 6.0  # not listed: 6 × this machine's 1 ms
    cases = [
        ("{nope", "is not JSON"),
        (json.dumps({"name": "x"}), "not a device profile"),
        (json.dumps({**good, "slowdown": 0}), "'slowdown' must be a number > 0"),
        (json.dumps({**good, "head_ms": {"layer2": -1}}), r"head_ms\['layer2'\] must be a number of milliseconds"),
        (json.dumps({**good, "encode_ms": [1, 2]}), "'encode_ms' must be an object"),
        (json.dumps({**good, "power_w": {"compute": 1}}), "'power_w' needs numbers"),
    ]
    for text, match in cases:
        p.write_text(text)
        with pytest.raises(ProfileError, match=match):
            load_device_profile(p)
    with pytest.raises(ProfileError, match="cannot read device profile"):
        device_profile(str(tmp_path / "none.json"))
    with pytest.raises(ProfileError, match="slowdown is written"):
        device_profile("xfast")
    assert device_profile("x2.5").slowdown == 2.5 and device_profile("local").slowdown == 1.0


def test_model_profile_round_trip_and_bad_file(tmp_path):
    prof = _profile()
    assert ModelProfile.load(prof.save(tmp_path / "p.json")) == prof
    (tmp_path / "q.json").write_text(json.dumps({"format": "splitcodec-model-profile/1", "model": "m"}))
    with pytest.raises(ProfileError, match="malformed model profile"):
        ModelProfile.load(tmp_path / "q.json")


def test_measure_model_uses_the_evaluator_and_reuses_records():
    prof, recs = measure_model("ref-darknet", ["stage3.down"], ["uniform:bits=8"], ["image-jpeg:quality=75"],
                               samples=40, timing_samples=3, repeats=1)
    assert [c.split for c in prof.codecs] == ["stage3.down", "input"] and len(recs) == 2
    assert prof.split("stage3.down").elements == 2048 and prof.full.median_ms > 0
    assert recs[0].samples == 40 and prof.codecs[0].bytes_per_sample == recs[0].bytes_per_sample
    again, recs2 = measure_model("ref-darknet", ["stage3.down"], ["uniform:bits=8"], samples=40, timing_samples=2,
                                 repeats=1, records=recs)
    assert recs2[0] is recs[0]  # taken from the records, not evaluated again


def test_cli_search_writes_json_plot_and_plans(tmp_path, capsys):
    prof = _profile().save(tmp_path / "prof.json")
    out = tmp_path / "search.json"
    rc = cli_main(["search", "--model", "toy", "--profile", str(prof), "--bandwidth", "1,100", "--rtt", "20",
                   "--max-loss", "1", "--edge", "x10", "--out", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert [r["network"]["bandwidth_mbit"] for r in doc["results"]] == [1, 100]
    assert out.with_suffix(".png").stat().st_size > 0
    plan = Plan.load(tmp_path / "search.plan-1mbit.json")
    assert plan.predicted_ms == pytest.approx(doc["results"][0]["plan"]["predicted_ms"])
    assert "1 Mbit/s" in capsys.readouterr().out
    assert cli_main(["search", "--model", "toy", "--profile", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert cli_main(["search", "--profile", str(prof), "--loss", "1.5", "--out", str(out)]) == 2
    assert "0 <= loss < 1" in capsys.readouterr().err
    phone = tmp_path / "phone.json"
    phone.write_text(json.dumps({"format": "splitcodec-device-profile/1", "slowdown": 8,
                                 "power_w": {"compute": 3.0, "radio": 1.0, "idle": 0.2}}))
    assert cli_main(["search", "--profile", str(prof), "--edge", str(phone), "--bandwidth", "5", "--out", str(out)]) == 0
    assert "edge J" in capsys.readouterr().out
    assert json.loads(out.read_text())["results"][0]["plan"]["breakdown"]["energy_j"] > 0


def test_runtime_takes_a_plan(tmp_path, capsys) -> None:
    """`serve/edge --plan`: a split plan gives model, split and codec; edge-only and cloud-only are refused."""
    from splitcodec.cli.serve import _apply_plan
    from splitcodec.errors import SplitcodecError

    split_plan = Plan("ref-resnet", SPLIT, "layer2", "uniform", {"bits": 4}, 30.0, 0.5, 600.0, {}, 1.0)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(split_plan.to_json()))
    assert _apply_plan(path, "other", None, "raw") == ("ref-resnet", "layer2", "uniform:bits=4")
    assert _apply_plan(None, "other", None, "raw") == ("other", None, "raw")
    edge_only = Plan("ref-resnet", EDGE_ONLY, None, None, {}, 3.0, 0.0, 0.0, {}, 1.0)
    path.write_text(json.dumps(edge_only.to_json()))
    with pytest.raises(SplitcodecError, match="edge-only"):
        _apply_plan(path, "ref-resnet", None, None)
    assert cli_main(["serve", "--plan", str(path)]) != 0
    assert "edge-only" in capsys.readouterr().err
