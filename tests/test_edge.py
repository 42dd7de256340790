"""Edge packages: `splitcodec export` → EdgeRuntime (onnxruntime + numpy) codes like the PyTorch path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from splitcodec.cli import main  # noqa: E402
from splitcodec.codecs import ConfigStore, decode  # noqa: E402
from splitcodec.data import load_dataset  # noqa: E402
from splitcodec.edge.manifest import CODEC_FILE, HEAD_FILE, MANIFEST_FILE, PackageError, read_manifest  # noqa: E402
from splitcodec.edge.runtime import EdgeRuntime  # noqa: E402
from splitcodec.serve.client import EdgeClient  # noqa: E402

SPEC = "lightweight:lam=0.2"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("edge") / "pkg"
    assert main(["export", "--model", "ref-resnet", "--split", "layer2", "--codec", SPEC, "-o", str(out)]) == 0
    return out


def test_manifest_describes_the_package(package):
    m = read_manifest(package)
    assert (m.model, m.split, m.input_shape, m.features_shape) == ("ref-resnet", "layer2", [1, 28, 28], [32, 14, 14])
    assert m.codec["id"] == "lightweight" and m.activation["kind"] == "relu"
    assert m.preprocessing["mean"] == [0.286] and set(m.files) == {HEAD_FILE, CODEC_FILE}
    assert {"splitcodec", "torch", "onnx", "opset"} <= set(m.versions)


def test_package_codes_like_the_torch_path(package):
    edge = EdgeRuntime(package)
    torch_path = EdgeClient.for_model("http://unused", "ref-resnet", "layer2", SPEC)
    assert torch_path.codec.get_config() == edge.config  # the same fit, so the server holds one config
    data = load_dataset("fashion-mnist", "test").subset(16)
    x = edge.preprocess(data.raw.numpy())
    assert np.array_equal(x, data.images.numpy())  # the manifest's preprocessing is the dataset's
    store = ConfigStore()
    store.add(edge.config)
    same = 0
    for i in range(len(data)):
        a, _, _ = torch_path.encode(data.images[i : i + 1])
        b, _, _ = edge.encode_sample(x[i : i + 1])
        same += a == b
        fa, fb = decode(a, store), decode(b, store)
        assert torch.allclose(fa, fb, atol=0.05, rtol=0)  # at worst one quantizer cell apart
    assert same >= 14  # onnxruntime vs torch float rounding may move a value across a threshold


@pytest.mark.parametrize("name", [HEAD_FILE, CODEC_FILE])
def test_a_changed_file_is_refused(package, tmp_path, name):
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    if name == CODEC_FILE:
        config = json.loads((copy / name).read_text())
        config["lam"] = 0.3
        (copy / name).write_text(json.dumps(config))
    else:
        with open(copy / name, "ab") as f:
            f.write(b"\0")
    with pytest.raises(PackageError, match=f"{name} has sha256 .* the manifest says"):
        EdgeRuntime(copy)


def test_not_a_package_is_refused(tmp_path):
    with pytest.raises(PackageError, match="no manifest.json"):
        EdgeRuntime(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{}")
    with pytest.raises(PackageError, match="not a splitcodec-edge/1 manifest"):
        EdgeRuntime(tmp_path)


def test_runtime_runs_without_torch(package):
    """A fresh interpreter where torch (and scipy) cannot be imported loads the package and codes."""
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "scipy"):
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        from splitcodec.codecs import ConfigStore, decode
        from splitcodec.edge import EdgeRuntime
        from splitcodec.serve.client import EdgeClient
        edge = EdgeRuntime({str(package)!r})
        stream, _, _ = EdgeClient("http://unused", runtime=edge).encode(edge.preprocess(np.zeros((1, 1, 28, 28), np.uint8)))
        store = ConfigStore(); store.add(edge.config)
        y = decode(stream, store)
        print(type(y).__name__, y.shape, "torch" in sys.modules, "scipy" in sys.modules)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ndarray", "(1,", "32,", "14,", "14)", "False", "False"]


def test_a_codec_can_put_its_encoder_network_into_the_graph(tmp_path):
    """The learned-codec hook: ``edge_encoder()`` is appended to the head in the ONNX graph."""
    from torch import nn

    from splitcodec.codecs.uniform import Uniform
    from splitcodec.edge.export import export_package

    class Learned(Uniform):  # not registered: the package names codec "uniform", which loads
        def edge_encoder(self) -> nn.Module:
            torch.manual_seed(0)
            return nn.Conv2d(32, 8, 1)

    m = export_package("ref-resnet", tmp_path / "pkg", split="layer2", codec=Learned(bits=4), calibration_samples=8)
    assert m.codec["edge_encoder"] is True and m.features_shape == [8, 14, 14]
    latent = EdgeRuntime(tmp_path / "pkg").head(np.zeros((3, 1, 28, 28), np.float32))
    assert latent.shape == (3, 8, 14, 14)


@pytest.mark.slow
@pytest.mark.network
def test_edge_command_streams_a_package_to_a_server(package, tmp_path, capsys):
    pytest.importorskip("fastapi")
    pytest.importorskip("aiohttp")
    from splitcodec.testing.process import ServerProcess

    out = tmp_path / "edge.json"
    with ServerProcess(["--model", "ref-resnet", "--split", "layer2", "--port", "0", "--threads", "1"]) as server:
        code = main(["edge", "--package", str(package), "--url", server.url, "--samples", "20", "--concurrency", "4",
                     "--out", str(out)])
        assert code == 0, capsys.readouterr()
    report = json.loads(out.read_text())
    assert report["ok"] == 20 and report["model"] == "ref-resnet" and report["top1"] >= 70
