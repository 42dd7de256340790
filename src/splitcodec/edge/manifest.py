"""The edge package's manifest: what the head expects, which codec codes its output, and file hashes.

An edge package is a folder of three files, written by :func:`splitcodec.edge.export.export_package`::

    head.onnx       the head network (and a learned codec's encoder network, when it has one)
    codec.json      the fitted codec config (what the server registers)
    manifest.json   this manifest

The manifest names the model and split, the input preprocessing (uint8 pixels → ``(x / 255 - mean) / std``),
the input and feature shapes and dtypes, the versions that wrote the package, and the sha256 of the
other two files; :func:`read_manifest` refuses a package whose files do not match.  No torch here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from splitcodec.errors import SplitcodecError

__all__ = ["FORMAT", "HEAD_FILE", "CODEC_FILE", "MANIFEST_FILE", "Manifest", "PackageError",
           "read_manifest", "write_manifest", "sha256_file"]

FORMAT = "splitcodec-edge/1"
HEAD_FILE = "head.onnx"
CODEC_FILE = "codec.json"
MANIFEST_FILE = "manifest.json"


class PackageError(SplitcodecError):
    """An edge package is missing, malformed, or its files do not match the manifest's hashes."""


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds (see the module docstring)."""

    model: str
    split: str
    #: ``{"kind": "normalize", "pixels": "uint8", "scale": 1/255, "mean": [...], "std": [...]}``
    preprocessing: dict[str, Any]
    input_shape: list[int]          # one sample, C×H×W (the graph takes N×C×H×W)
    input_dtype: str
    features_shape: list[int]       # one sample, what the codec codes
    features_dtype: str
    activation: dict[str, Any]      # the split point's Activation (kind, negative_slope)
    codec: dict[str, Any]           # {"id", "module", "class", "config_ref", "edge_encoder"}
    versions: dict[str, str]
    files: dict[str, str]           # file name -> sha256 hex
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = Path(folder) / MANIFEST_FILE
    path.write_text(manifest.to_json())
    return path


def read_manifest(folder: str | Path, *, verify: bool = True) -> Manifest:
    """Read ``folder/manifest.json``; with ``verify``, check every listed file against its sha256."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackageError(f"{folder} is not an edge package: no {MANIFEST_FILE} (write one with `splitcodec export`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackageError(f"{path}: not a {FORMAT} manifest (format {data.get('format') if isinstance(data, dict) else None!r})")
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise PackageError(f"{path}: malformed manifest: {exc}") from exc
    for name in (HEAD_FILE, CODEC_FILE):
        if name not in manifest.files:
            raise PackageError(f"{path}: lists no sha256 for {name}")
    if verify:
        for name, digest in manifest.files.items():
            file = folder / name
            if not file.is_file():
                raise PackageError(f"edge package {folder}: {name} is missing")
            actual = sha256_file(file)
            if actual != digest:
                raise PackageError(
                    f"edge package {folder}: {name} has sha256 {actual[:16]}…, the manifest says {digest[:16]}… "
                    "(the file was changed after export; export the package again)"
                )
    return manifest
