"""Tests of splitcodec.split: valid cuts, names, activations and bit-exact head/tail."""

from __future__ import annotations

import doctest

import pytest
import torch
import torchvision
from torch import nn

import splitcodec.split as split_module
from splitcodec._fxgraph import Graph
from splitcodec.errors import SplitcodecError, SplitError
from splitcodec.models import load, registry
from splitcodec.split import SplitPoint, list_split_points, split

TORCHVISION = ["resnet50", "mobilenet_v2", "squeezenet1_1"]
OURS = ["ref-resnet", "ref-darknet", "mobilenetv2-imagenet"]
#: ImageNet-sized graphs: several seconds per test each
SLOW = {"mobilenetv2-imagenet", *TORCHVISION}


def _load_ours(name: str) -> nn.Module:
    try:
        return load(name)
    except SplitcodecError:  # weights not trained / package missing: the architecture still splits
        model = registry.create_model(name, **({"pretrained": False} if name == "mobilenetv2-imagenet" else {}))
        model.splitcodec_cfg = registry.get_model_cfg(name)
        return model.eval()


@pytest.fixture(scope="module", params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in OURS + TORCHVISION])
def case(request: pytest.FixtureRequest) -> tuple[str, nn.Module, torch.Tensor]:
    name = request.param
    torch.manual_seed(0)
    if name in TORCHVISION:
        return name, torchvision.models.get_model(name, weights=None).eval(), torch.randn(2, 3, 32, 32)
    model = _load_ours(name)
    c, h, w = model.splitcodec_cfg.input_size
    if c == 3:
        h = w = 32  # small inputs keep the tests fast; the graph does not depend on the size
    return name, model, torch.randn(2, c, h, w)


def _pick(points: list[SplitPoint], default: str | None, k: int = 5) -> list[SplitPoint]:
    chosen = points[:: max(1, len(points) // k)] + points[-1:]
    chosen += [p for p in points if default in (p.name, *p.aliases)]
    return list({p.name: p for p in chosen}.values())


def test_split_is_bit_exact(case: tuple[str, nn.Module, torch.Tensor]) -> None:
    name, model, x = case
    points = list_split_points(model, x)
    assert len(points) > 5
    default = getattr(getattr(model, "splitcodec_cfg", None), "default_split", None)
    with torch.no_grad():
        expected = model(x)
        for point in _pick(points, default):
            head, tail = split(model, at=point.name)
            z = head(x)
            assert tuple(z.shape[1:]) == point.shape and point.numel == z[0].numel()
            assert torch.equal(tail(z), expected), f"{name} at {point.name}"


def test_split_point_names_are_unique_and_aliases_work(case: tuple[str, nn.Module, torch.Tensor]) -> None:
    _, model, x = case
    points = list_split_points(model, x)
    all_names = [n for p in points for n in (p.name, *p.aliases)]
    assert len(all_names) == len(set(all_names))
    assert [p.index for p in points] == sorted(p.index for p in points)
    point = next(p for p in points if p.aliases)
    with torch.no_grad():
        expected = split(model, at=point.name)[0](x)
        for alias in point.aliases:
            assert torch.equal(split(model, at=alias)[0](x), expected)


def test_ref_resnet_split_points() -> None:
    model = _load_ours("ref-resnet")
    points = list_split_points(model, torch.zeros(1, 1, 28, 28))
    got = [(p.name, p.shape, p.activation) for p in points]
    r28, r14, r7 = (16, 28, 28), (32, 14, 14), (64, 7, 7)
    assert got == [
        ("stem.0", r28, "other"), ("stem.1", r28, "other"), ("stem", r28, "relu"),
        ("add", r28, "other"), ("layer1.0", r28, "relu"), ("add_1", r28, "other"), ("layer1", r28, "relu"),
        ("add_2", r14, "other"), ("layer2.0", r14, "relu"), ("add_3", r14, "other"), ("layer2", r14, "relu"),
        ("add_4", r7, "other"), ("layer3.0", r7, "relu"), ("add_5", r7, "other"), ("layer3", r7, "relu"),
        ("avgpool", (64, 1, 1), "other"), ("flatten", (64,), "other"),
    ]  # fmt: skip
    layer2 = points[10]
    assert layer2.aliases == ("layer2.1", "layer2.1.relu2", "layer2_1_relu2") and layer2.numel == 6272


@pytest.mark.slow
def test_default_split_activations() -> None:
    x = torch.zeros(1, 1, 28, 28)
    resnet = _load_ours("ref-resnet")
    (p,) = [p for p in list_split_points(resnet, x) if p.name == resnet.splitcodec_cfg.default_split]
    assert (p.name, p.activation, p.negative_slope) == ("layer2", "relu", None)
    darknet = _load_ours("ref-darknet")
    (p,) = [p for p in list_split_points(darknet, x) if p.name == darknet.splitcodec_cfg.default_split]
    assert (p.name, p.shape, p.activation, p.negative_slope) == ("stage2.down", (64, 7, 7), "leaky_relu", 0.1)
    mobilenet = _load_ours("mobilenetv2-imagenet")
    points = list_split_points(mobilenet, torch.zeros(1, 3, 224, 224))
    (p,) = [p for p in points if p.name == mobilenet.splitcodec_cfg.default_split]
    assert (p.shape, p.activation) == ((192, 14, 14), "relu6")


def test_activation_seen_through_pooling_and_cat() -> None:
    x = torch.zeros(1, 3, 32, 32)
    points = {p.name: p for p in list_split_points(torchvision.models.resnet18(weights=None).eval(), x)}
    assert points["maxpool"].activation == "relu"  # max-pool of the stem ReLU
    assert points["conv1"].activation == "other" and points["layer1"].activation == "relu"
    squeeze = {p.name: p for p in list_split_points(torchvision.models.squeezenet1_1(weights=None).eval(), x)}
    assert squeeze["features.3"].activation == "relu"  # Fire: cat of two ReLU branches


def test_no_cut_inside_a_residual_block() -> None:
    model = _load_ours("ref-resnet")
    names = {n for p in list_split_points(model, torch.zeros(1, 1, 28, 28)) for n in (p.name, *p.aliases)}
    for inside in ("layer2.0.relu1", "layer2_0_relu1", "layer2.0.conv2", "layer2_0_bn2"):
        assert inside not in names
        with pytest.raises(SplitError, match="not a valid split point: 2 tensors cross it"):
            split(model, at=inside)
    resnet50 = torchvision.models.resnet50(weights=None).eval()
    names = {n for p in list_split_points(resnet50, torch.zeros(1, 3, 32, 32)) for n in (p.name, *p.aliases)}
    assert "layer1.0.conv2" not in names and "layer1" in names


def test_unknown_split_point_lists_valid_names() -> None:
    model = _load_ours("ref-resnet")
    with pytest.raises(SplitError, match=r"no split point 'layer22'; did you mean layer2.*Valid split points.*layer3"):
        split(model, at="layer22")
    with pytest.raises(SplitError, match="model's output"):
        split(model, at="fc")
    with pytest.raises(SplitError, match="input or a constant"):
        split(model, at="x")


def test_trivial_cuts_are_excluded() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
    points = list_split_points(model, torch.zeros(1, 1, 5, 5))
    assert [p.name for p in points] == ["0", "1"]  # not before the conv, not after the flatten


class _Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x  # control flow on tensor values: fx cannot trace it


def test_untraceable_model_raises_and_sequential_falls_back() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.gate = nn.Conv2d(1, 2, 3), _Gate()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gate(self.conv(x))

    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(SplitError, match=r"torch.fx cannot trace Net .*control flow.*symbolic_trace can trace"):
        list_split_points(Net(), x)
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(0.2), _Gate(), nn.Flatten(), nn.Linear(72, 3)).eval()
    points = list_split_points(seq, x)
    assert [(p.name, p.activation, p.negative_slope) for p in points] == [
        ("0", "other", None), ("1", "leaky_relu", 0.2), ("2", "other", None), ("3", "other", None)
    ]  # fmt: skip
    with torch.no_grad():
        for p in points:
            head, tail = split(seq, at=p.name, example_input=x)
            assert torch.equal(tail(head(x)), seq(x)) and head.splitcodec_split_point == p
    with pytest.raises(SplitError, match="between its children: 0, 1, 2, 3"):
        split(seq, at="4")


def test_constants_are_copied_to_both_sides() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.tensor([2.0, 3.0]))
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = torch.sigmoid(self.gain)  # a constant (computed from a parameter) used on both sides
            return self.b(torch.relu(self.a(x * s)) * s) + self.gain

    model, x = Net().eval(), torch.randn(4, 2)
    points = list_split_points(model, x)
    assert [(p.name, p.activation) for p in points] == [
        ("mul", "other"), ("a", "other"), ("relu", "relu"), ("mul_1", "other"), ("b", "other")
    ]  # fmt: skip
    with torch.no_grad():
        for p in points:
            head, tail = split(model, at=p.name)
            assert torch.equal(tail(head(x)), model(x))


def test_unused_in_place_results_stay_in_the_head() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(18, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            y.add_(1.0)  # mutates y; the node's own result is unused (fx would call it dead code)
            return self.fc(torch.relu(y).flatten(1))

    model, x = Net().eval(), torch.randn(2, 1, 5, 5)
    points = list_split_points(model, x)
    assert [p.name for p in points] == ["conv", "relu", "flatten"]
    with torch.no_grad():
        for p in points:
            head, tail = split(model, at=p.name)
            assert torch.equal(tail(head(x)), model(x)), p.name


def test_split_shares_parameters_and_keeps_training_flags() -> None:
    model = torchvision.models.resnet18(weights=None)  # training mode, BatchNorm
    model.layer1.eval()  # mixed flags must survive
    before = model.bn1.running_mean.clone()
    list_split_points(model, torch.randn(2, 3, 32, 32))
    assert torch.equal(model.bn1.running_mean, before)  # ran in eval mode
    assert model.training and not model.layer1.training and model.layer2.training
    head, tail = split(model, at="layer2", example_input=torch.randn(1, 3, 32, 32))
    assert head.conv1.weight is model.conv1.weight and tail.fc.weight is model.fc.weight
    assert head.splitcodec_split_point.shape == (128, 4, 4)
    assert split(model, at="layer2")[0].splitcodec_split_point is None


def test_module_docstring_example() -> None:
    result = doctest.testmod(split_module, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_aliases_without_module_stack_metadata() -> None:
    # tracers that do not fill node.meta["nn_module_stack"] still get leaf-module names
    gm = torch.fx.symbolic_trace(_load_ours("ref-resnet"))
    for node in gm.graph.nodes:
        node.meta.pop("nn_module_stack", None)
    cuts = {c.name: c for c in Graph(gm).cuts}
    assert {"stem.2", "layer2.1.relu2", "avgpool"} <= set(cuts)
    assert cuts["layer2.1.relu2"].aliases == ("layer2_1_relu2",)
