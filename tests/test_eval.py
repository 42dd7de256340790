"""Evaluator, records, BD figures and plots on a tiny synthetic model (no reference weights needed)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from splitcodec.data import Dataset
from splitcodec.errors import SplitcodecError
from splitcodec.eval import bd_accuracy, bd_rate, evaluate, load_records, plot_rate_accuracy, prepare, save_records
from splitcodec.split import list_split_points


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 8 * 8, 5),
    ).eval()


def tiny_dataset(model: nn.Module, n: int = 48) -> Dataset:
    g = torch.Generator().manual_seed(1)
    raw = torch.randint(0, 256, (n, 1, 16, 16), generator=g, dtype=torch.uint8)
    images = (raw.float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        labels = model(images).argmax(1)  # the uncut model is 100 % right by construction
    return Dataset("tiny", "all", images, labels, raw, (0.5,), (0.25,))


@pytest.fixture(scope="module")
def ctx():
    model = tiny_model()
    data = tiny_dataset(model)
    points = list_split_points(model, data.images[:1])
    at = next(p.name for p in points if p.shape == (8, 8, 8) and p.activation == "relu")
    return prepare(model, at, dataset=data, samples=None, calibration_samples=8, model_name="tiny")


def test_records_have_the_contract_fields_and_honest_rates(ctx):
    records = evaluate(None, context=ctx, codecs=["raw:dtype=float32", "uniform:bits=8,2"])
    raw, u8, u2 = records
    assert raw.top1 == raw.top1_ref == 100.0 and raw.top1_loss == 0.0 and raw.agreement == 100.0
    assert math.isclose(raw.cosine, 1.0, abs_tol=1e-9)
    # raw fp32 = 32 bits per element + the 16-byte container, nothing else
    assert raw.bytes_per_sample == 512 * 4 + 16 and raw.header_bytes == 16
    assert math.isclose(raw.bpe, (512 * 4 + 16) * 8 / 512)
    assert raw.bpp == pytest.approx(raw.bytes_per_sample * 8 / 256)
    assert u8.bpe < 8.5 and u2.bpe < u8.bpe
    assert u2.top1 <= u8.top1 <= 100.0
    assert raw.samples == 40 and raw.elements == 512
    assert raw.encode_ms > 0 and raw.decode_ms > 0
    assert u2.config_bytes > 0


def _hashes(raw: torch.Tensor) -> set[bytes]:
    return {hashlib.sha256(img.numpy().tobytes()).digest() for img in raw}


def test_no_overlap_between_calibration_and_test(ctx):
    """prepare() on a Dataset instance splits it: every image lands in exactly one of the two sets."""
    full = _hashes(tiny_dataset(tiny_model()).raw)
    test, calib = _hashes(ctx.dataset.raw), _hashes(ctx.calibration.raw)
    assert len(full) == 48 and len(test) == len(ctx.dataset) == 40 and len(calib) == len(ctx.calibration) == 8
    assert not test & calib
    assert test | calib == full


def test_records_roundtrip_through_json_and_csv(ctx, tmp_path):
    records = evaluate(None, context=ctx, codecs=["uniform:bits=4,2"])
    json_path, csv_path = save_records(records, tmp_path / "r.json", {"note": "test"})
    back = load_records(json_path)
    assert [r.bpe for r in back] == [r.bpe for r in records]
    assert json.loads(json_path.read_text())["meta"] == {"note": "test"}
    header = csv_path.read_text().splitlines()[0].split(",")
    for field in ("model", "split", "codec", "params", "samples", "bpe", "bytes_per_sample", "top1", "top1_ref",
                  "top1_loss", "agreement", "encode_ms", "decode_ms"):
        assert field in header
    png = plot_rate_accuracy(records, tmp_path / "r.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bd_rate_and_accuracy_on_known_curves():
    rate = [0.5, 1.0, 2.0, 4.0]
    acc = [70.0, 80.0, 86.0, 88.0]
    assert bd_rate(rate, acc, [r * 0.8 for r in rate], acc) == pytest.approx(-20.0)
    assert bd_rate(rate, acc, [r * 2 for r in rate], acc) == pytest.approx(100.0)
    assert bd_accuracy(rate, acc, rate, [a + 1.5 for a in acc]) == pytest.approx(1.5)
    # dominated points (more bits, no more accuracy) do not bend the curve
    assert bd_rate(rate + [8.0], acc + [87.0], rate, acc) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(SplitcodecError, match="overlap"):
        bd_rate(rate, acc, rate, [a + 50 for a in acc])
    with pytest.raises(SplitcodecError, match="at least 2"):
        bd_rate([1.0], [80.0], rate, acc)


def test_model_without_dataset_is_a_clear_error():
    with pytest.raises(SplitcodecError, match="dataset"):
        prepare(tiny_model(), "x")


def test_code_samples_codes_each_sample_alone_and_score_compares_with_the_uncut_model(ctx):
    from splitcodec.bitstream import unpack
    from splitcodec.codecs import get_codec
    from splitcodec.eval import code_samples, score

    codec = get_codec("uniform", bits=4).fit(ctx.calib_features)
    seen = []
    coded = code_samples(codec, ctx.features[:5], progress=lambda desc, done, total: seen.append((done, total)))
    assert seen == [(i, 5) for i in range(1, 6)]
    streams = [codec.encode(ctx.features[i : i + 1], config="ref") for i in range(5)]
    assert coded.sizes == [len(s) for s in streams] and coded.mean_bytes == sum(coded.sizes) / 5
    assert coded.header_bytes == [unpack(s).header_bytes for s in streams]
    assert len(coded.encode_ms) == len(coded.decode_ms) == 5 and min(coded.encode_ms) > 0
    assert torch.equal(coded.decoded, torch.cat([codec.decode(s) for s in streams]))
    same = score(ctx, ctx.ref_out)
    assert same["top1"] == same["top1_ref"] == 100.0 and same["top1_loss"] == 0.0 and same["agreement"] == 100.0
    assert same["cosine"] == pytest.approx(1.0)
    worse = score(ctx, -ctx.ref_out)
    assert worse["agreement"] < 100.0 and worse["top1_loss"] > 0 and worse["cosine"] == pytest.approx(-1.0)
