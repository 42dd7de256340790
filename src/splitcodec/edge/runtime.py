"""The torch-free edge runtime: load an edge package, run the head with onnxruntime, encode with numpy.

>>> edge = EdgeRuntime("edge/")                           # doctest: +SKIP
>>> stream, head_ms, encode_ms = edge.encode_sample(edge.preprocess(raw_pixels[:1]))  # doctest: +SKIP

Imports numpy, onnxruntime, constriction and the codec's own module only (``pip install
'splitcodec[edge]'``); the server registers :attr:`EdgeRuntime.config` once and then decodes streams
that carry only its 4-byte reference.  :meth:`splitcodec.serve.client.EdgeClient.for_package` puts a
runtime behind the HTTP client.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from splitcodec.edge.manifest import CODEC_FILE, HEAD_FILE, Manifest, PackageError, read_manifest
from splitcodec.errors import DependencyError

__all__ = ["EdgeRuntime", "load_codec"]


def load_codec(manifest: Manifest, config: dict[str, Any]) -> Any:
    """The package's codec, built from ``config`` by importing only its own module (not the registry)."""
    info = manifest.codec
    module = str(info.get("module", ""))
    if module.startswith("splitcodec.codecs."):
        cls = getattr(importlib.import_module(module), str(info.get("class", "")), None)
    else:  # a plug-in codec: the registry finds it through its entry point
        from splitcodec.codecs.registry import codec_class

        cls = codec_class(str(info.get("id")))
    if cls is None or getattr(cls, "codec_id", None) != config.get("id") or config.get("id") != info.get("id"):
        raise PackageError(f"edge package codec {info.get('id')!r} does not match its config {config.get('id')!r}")
    codec = cls.from_config(config)
    if codec.config_ref.hex() != info.get("config_ref"):
        raise PackageError(f"codec config reference {codec.config_ref.hex()} differs from the manifest's {info.get('config_ref')}")
    return codec


class EdgeRuntime:
    """An edge package in memory: the head as an onnxruntime session and the fitted codec.

    Args:
        package: the folder ``splitcodec export`` wrote.
        threads: onnxruntime intra-op threads (1: one core, as on a small device).
        verify: check the files' sha256 against the manifest (a changed file is refused).
    """

    def __init__(self, package: str | Path, *, threads: int = 1, verify: bool = True) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DependencyError("the edge runtime needs onnxruntime: pip install 'splitcodec[edge]'") from exc
        self.path = Path(package)
        self.manifest = read_manifest(self.path, verify=verify)
        try:
            self.config: dict[str, Any] = json.loads((self.path / CODEC_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise PackageError(f"cannot read {self.path / CODEC_FILE}: {exc}") from exc
        self.codec = load_codec(self.manifest, self.config)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path / HEAD_FILE), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types)
            raise PackageError(f"onnxruntime cannot load {self.path / HEAD_FILE}: {exc}") from exc
        self._input = self.session.get_inputs()[0].name
        pre = self.manifest.preprocessing
        shape = (1, -1) + (1,) * (len(self.manifest.input_shape) - 1)
        self._mean = np.asarray(pre["mean"], dtype=np.float32).reshape(shape)
        self._std = np.asarray(pre["std"], dtype=np.float32).reshape(shape)

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 N×C×H×W pixels → the float32 model input ``(x / 255 - mean) / std`` (as the datasets do)."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim != 1 + len(self.manifest.input_shape):
            raise PackageError(f"preprocess expects uint8 N×{'×'.join(map(str, self.manifest.input_shape))} pixels, "
                               f"got {pixels.dtype} {pixels.shape}")
        return (pixels.astype(np.float32) / np.float32(255.0) - self._mean) / self._std

    def head(self, x: Any) -> np.ndarray:
        """The head's output (the learned codec's latent, with an edge encoder) for float32 N×C×H×W input."""
        x = np.ascontiguousarray(np.asarray(x), dtype=np.float32)
        if list(x.shape[1:]) != self.manifest.input_shape:
            raise PackageError(f"input must be N×{'×'.join(map(str, self.manifest.input_shape))}, got {x.shape}")
        return self.session.run(None, {self._input: x})[0]

    def encode(self, features: np.ndarray, *, config: str = "ref") -> bytes:
        """Code one sample's head output (1×… or …) into a stream, as the PyTorch path does."""
        if self.manifest.codec.get("edge_encoder"):
            return self.codec.encode_latent(features, config=config)
        return self.codec.encode(features, config=config)

    def encode_sample(self, x: Any) -> tuple[bytes, float, float]:
        """Head and encoder on one input sample (1×C×H×W): ``(stream, head_ms, encode_ms)``."""
        t0 = time.perf_counter()
        features = self.head(x)
        t1 = time.perf_counter()
        stream = self.encode(features)
        return stream, 1e3 * (t1 - t0), 1e3 * (time.perf_counter() - t1)
