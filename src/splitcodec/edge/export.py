"""``export_package``: write a split model's head as ONNX, the fitted codec config and a manifest.

The head is cut and the codec fitted exactly as :meth:`splitcodec.serve.client.EdgeClient.for_model`
does (so the server holds the same config), then exported with ``torch.onnx.export`` (a dynamic batch
dimension; ``onnx`` and ``onnxscript`` must be installed).

Learned codecs (hook): a codec that defines ``edge_encoder() -> nn.Module`` has that network appended to
the head in the ONNX graph; the edge runtime then hands the graph's output to the codec's
``encode_latent(y: numpy array, config="ref") -> bytes`` (its quantize + entropy-code step, which must
import without torch).  Codecs without the method code the head's features with ``encode``.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitcodec.edge.manifest import CODEC_FILE, HEAD_FILE, Manifest, read_manifest, sha256_file, write_manifest
from splitcodec.errors import DependencyError, SplitcodecError

if TYPE_CHECKING:
    import torch

    from splitcodec.codecs.base import Codec

__all__ = ["export_package", "OPSET"]

#: The ONNX opset the head is written with.
OPSET = 18


def export_package(
    model: str,
    out: str | Path,
    *,
    split: str | None = None,
    codec: str | Codec = "lightweight:lam=0.2",
    fit: str | None = "calibration",
    calibration_samples: int = 64,
    weights: str | None = None,
) -> Manifest:
    """Cut ``model`` at ``split`` (default: its default split), fit ``codec`` (a spec such as
    ``"uniform:bits=4"``, or a codec object) on ``calibration_samples`` images of the model dataset's
    ``fit`` split (None: no fit), and write the package into ``out``."""
    import torch

    from splitcodec.data import load_dataset
    from splitcodec.models import load
    from splitcodec.pipeline import codec_from_spec, cut

    net = load(model, weights=weights)
    cfg = net.splitcodec_cfg
    split = split or cfg.default_split
    if split is None:
        raise SplitcodecError(f"model {model!r} has no default split: pass --split")
    if cfg.dataset is None:
        raise SplitcodecError(f"model {model!r} names no dataset to take the calibration images from")
    source = load_dataset(cfg.dataset, fit or "calibration").subset(max(calibration_samples, 2))
    parts = cut(net, split, source.images[:1])
    coder = codec_from_spec(codec) if isinstance(codec, str) else codec
    if fit:
        with torch.inference_mode():
            feats = torch.cat([parts.head(source.images[i : i + 128]) for i in range(0, len(source), 128)])
        coder.fit(feats, activation=parts.point.act)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graph, edge_encoder = _edge_graph(parts.head, coder)
    example = source.images[:2]
    _export_onnx(graph, example, out / HEAD_FILE)
    (out / CODEC_FILE).write_text(json.dumps(coder.get_config()) + "\n")
    with torch.inference_mode():
        features = graph(example[:1])  # what the codec codes: a learned codec's latent, with an edge encoder
    manifest = Manifest(
        model=model,
        split=split,
        preprocessing={"kind": "normalize", "pixels": "uint8", "scale": 1 / 255,
                       "mean": list(source.mean), "std": list(source.std)},
        input_shape=list(example.shape[1:]),
        input_dtype="float32",
        features_shape=list(features.shape[1:]),
        features_dtype=str(features.dtype).removeprefix("torch."),
        activation={"kind": parts.point.act.kind, "negative_slope": parts.point.act.negative_slope},
        codec={"id": coder.codec_id, "module": type(coder).__module__, "class": type(coder).__qualname__,
               "config_ref": coder.config_ref.hex(), "edge_encoder": edge_encoder},
        versions=_versions(),
        files={HEAD_FILE: sha256_file(out / HEAD_FILE), CODEC_FILE: sha256_file(out / CODEC_FILE)},
    )
    write_manifest(out, manifest)
    return read_manifest(out)


def _edge_graph(head: "torch.nn.Module", codec: Any) -> tuple["torch.nn.Module", bool]:
    """The network to export: the head, followed by the codec's encoder network when it has one."""
    from torch import nn

    make = getattr(codec, "edge_encoder", None)
    encoder = make() if callable(make) else None
    if encoder is None:
        return head.eval(), False
    return nn.Sequential(head, encoder).eval(), True


def _export_onnx(graph: "torch.nn.Module", example: "torch.Tensor", path: Path) -> None:
    """``torch.onnx.export`` with a dynamic batch dimension, one self-contained file."""
    import torch

    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"export needs {exc.name}: pip install onnx onnxscript") from exc
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(graph, (example,), str(path), dynamo=True, opset_version=OPSET, input_names=["input"],
                              output_names=["features"], dynamic_shapes=({0: batch},), external_data=False,
                              optimize=True, verbose=False)
    except Exception as exc:  # noqa: BLE001  (the exporter raises many types; name the cause)
        raise SplitcodecError(f"ONNX export of the head failed ({type(exc).__name__}: {exc})") from exc


def _versions() -> dict[str, str]:
    import numpy
    import onnx
    import torch

    import splitcodec

    return {"splitcodec": splitcodec.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "numpy": numpy.__version__, "opset": str(OPSET), "python": platform.python_version()}
