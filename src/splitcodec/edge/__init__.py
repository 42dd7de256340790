"""Edge packages: export a split model's head as ONNX with its fitted codec, and run it without torch.

``splitcodec export`` (:func:`splitcodec.edge.export.export_package`, needs torch, onnx, onnxscript)
writes the package; :class:`splitcodec.edge.runtime.EdgeRuntime` (numpy, onnxruntime, constriction:
``pip install 'splitcodec[edge]'``) loads it and codes samples.  Importing this package imports neither.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["EdgeRuntime", "export_package", "read_manifest", "Manifest", "PackageError"]

_HOME = {"EdgeRuntime": "runtime", "export_package": "export", "read_manifest": "manifest",
         "Manifest": "manifest", "PackageError": "manifest"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'splitcodec.edge' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
