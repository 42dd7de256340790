"""The training kit: quantization, density, insertion, fine-tune loop, latent coding, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from splitcodec.errors import BitstreamError, CodecError, SplitcodecError
from splitcodec.nn import (
    FactorizedDensity,
    TrainConfig,
    decode_latent,
    encode_latent,
    fine_tune,
    from_indices,
    insert,
    quantize,
    table_precision,
    to_indices,
)
from splitcodec.nn.runtime import one_thread
from splitcodec.nn.wsae import WSAE, SplitView


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread avoids thread start-up cost and oversubscription on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 3),
    ).eval()


def _toy_net():
    model = _toy()
    x = torch.randn(256, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    wsae = WSAE([8], width=8, latent=4)
    net = insert(model, at="3", bottleneck=SplitView(wsae, 0), example_input=x[:1])
    return net, wsae, x


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_quantize_levels_and_indices(bits):
    y = torch.rand(1000, generator=torch.Generator().manual_seed(bits))
    q = quantize(y, bits, "hard")
    k = to_indices(y, bits)
    levels = (1 << bits) - 1
    assert k.min() >= 0 and k.max() <= levels
    assert torch.equal(from_indices(k, bits), q)
    assert (q - y).abs().max() <= 0.5 / levels + 1e-6


def test_ste_gradient_is_identity_and_noise_stays_within_a_step():
    y = torch.rand(64, generator=torch.Generator().manual_seed(0)).mul(0.8).add(0.1).requires_grad_()
    w = torch.randn(64)
    (quantize(y, 3, "ste") * w).sum().backward()
    assert torch.allclose(y.grad, w)  # straight-through: d round(x) / dx taken as 1
    y.grad = None
    noisy = quantize(y, 3, "noise")
    (noisy * w).sum().backward()
    assert torch.allclose(y.grad, w)
    assert (noisy - y).abs().max() <= 0.5 / 7 + 1e-6
    with pytest.raises(CodecError):
        quantize(y, 0)
    with pytest.raises(CodecError):
        quantize(y, 4, mode="nearest")  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_density_pmf_tables_and_rate(bits):
    d = FactorizedDensity(channels=3, groups=2)
    p = d.pmf(bits, group=1)
    assert p.shape == (3, 1 << bits) and torch.allclose(p.sum(1), torch.ones(3), atol=1e-5)
    tables = d.integer_tables(bits, group=1)
    assert tables.shape == (3, 1 << bits) and tables.min() >= 1
    assert (tables.sum(1) == 1 << table_precision(bits)).all()
    y = from_indices(torch.randint(0, 1 << bits, (2, 3, 4, 4)), bits).requires_grad_()
    rate = d.rate_bits(y, bits, group=1)
    assert rate.shape == (2,) and (rate > 0).all()
    rate.sum().backward()
    assert d.means.grad is not None and torch.isfinite(d.means.grad).all()
    # the rate is what an ideal coder spends with the float pmf
    k = to_indices(y.detach(), bits)
    expect = -torch.log2(p.detach()[torch.arange(3).view(1, 3, 1, 1), k]).flatten(1).sum(1)
    assert torch.allclose(rate.detach(), expect, rtol=1e-4)


def test_insert_identity_reproduces_model_and_freezes_head_tail():
    model = _toy()
    x = torch.randn(4, 1, 8, 8)
    net = insert(model, at="3", bottleneck=nn.Identity(), example_input=x)
    assert torch.allclose(net(x), model(x))
    assert not any(p.requires_grad for p in net.head.parameters())
    assert not any(p.requires_grad for p in net.tail.parameters())
    assert net.point.shape == (8, 4, 4)
    net2 = insert(_toy(), at="3", bottleneck=nn.Identity(), example_input=x, freeze_tail=False)
    assert all(p.requires_grad for p in net2.tail.parameters())
    assert not any(p.requires_grad for p in net2.reference.parameters())


def test_short_training_lowers_the_loss():
    torch.manual_seed(0)
    net, wsae, x = _toy_net()
    cfg = TrainConfig(steps=40, batch_size=32, lr=3e-3, warmup=5, lam=0.01, distortion=0.5, log_every=10,
                      progress=False)
    result = fine_tune(net, x, config=cfg, before_step=lambda step, g: setattr(wsae, "bits", (2, 4, 8)[step % 3]))
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < 0.8 * first["loss"], result.history
    assert last["distortion"] < 0.8 * first["distortion"]
    assert not net.training and all(p.grad is not None for p in wsae.encoder.parameters())


def test_fine_tune_with_labels_and_output_distillation():
    net, wsae, x = _toy_net()
    labels = net.reference(x).argmax(1)
    for distill in ("mse", "cosine", "none"):
        cfg = TrainConfig(steps=3, batch_size=8, ce=1.0, distill=distill, progress=False, log_every=1)
        hist = fine_tune(net, x, labels, cfg).history
        assert "ce" in hist[0] and ("distill" in hist[0]) == (distill != "none")
    with pytest.raises(SplitcodecError, match="labels"):
        fine_tune(net, x, labels[:3], TrainConfig(steps=1, progress=False))


class _Stop(Exception):
    pass


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path):
    def run(ckpt, stop_at=None):
        torch.manual_seed(0)
        net, wsae, x = _toy_net()
        def before(step, gen):
            if step == stop_at:
                raise _Stop
            wsae.bits = (2, 4, 8)[int(torch.randint(0, 3, (1,), generator=gen))]
        cfg = TrainConfig(steps=12, batch_size=8, checkpoint=str(ckpt), checkpoint_every=6, progress=False,
                          log_every=3)
        fine_tune(net, x, config=cfg, before_step=before)
        return wsae

    with torch.random.fork_rng():
        straight = run(tmp_path / "a.ckpt")
    with pytest.raises(_Stop):
        run(tmp_path / "b.ckpt", stop_at=6)
    resumed = run(tmp_path / "b.ckpt")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_latent_coding_round_trip_and_corruption():
    rng = np.random.default_rng(0)
    d = FactorizedDensity(channels=4)
    tables = list(d.integer_tables(4).astype(np.int64))
    k = rng.integers(0, 16, size=(4, 2, 5, 5)).astype(np.int32)
    data = encode_latent(k, tables)
    assert np.array_equal(decode_latent(data, tables, k.shape), k)
    with pytest.raises(BitstreamError):
        decode_latent(data[:-1], tables, k.shape)
    with pytest.raises(CodecError):
        encode_latent(k, tables[:3])
    with pytest.raises(CodecError):
        encode_latent(np.full((4, 1, 1, 1), 16, np.int32), tables)


def test_one_thread_restores_the_callers_setting():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
            assert not torch.is_grad_enabled()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
