"""Edge → server runtime: a network service that decodes feature bitstreams and runs the tail.

::

    edge:   image ─► head ─► encode ─► POST /v1/predict ─┐      (client.py: EdgeClient; streaming.py)
                                                        link
    server: answer ◄─ tail ◄─ batch ◄─ decode ◄─ parse ◄┘      (service.py, batching.py, app.py, server.py)
            the same app on N Ray Serve replicas               (ray_app.py)

One :class:`ServeConfig` (config.py) carries the settings from the CLI to the server, the batcher and
Ray; every refusal is a :class:`ServeError` subclass (errors.py).  Link emulation, fault streams and
the child-process server of the tests and benchmarks are harness, in :mod:`splitcodec.testing`.

Heavy imports (torch, fastapi, uvicorn, aiohttp, ray) happen only where they are used: the names below
are loaded on first access, so ``splitcodec.serve.config`` alone stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ServeConfig", "Batching", "FeatureService", "ServeError", "Busy", "Metrics", "merge_snapshots", "percentiles"]

_HOME = {
    "ServeConfig": "config",
    "Batching": "config",
    "FeatureService": "service",
    "ServeError": "errors",
    "Busy": "errors",
    "Metrics": "metrics",
    "merge_snapshots": "metrics",
    "percentiles": "metrics",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
