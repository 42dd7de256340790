"""Edge → server runtime: a network service that decodes feature bitstreams and runs the tail.

::

    edge:   image ─► head ─► encode ─► POST /v1/predict ─┐      (client.py: EdgeClient, stream_dataset)
                                                        link    (link.py: netem/tbf namespace, or in-process shaper)
    server: answer ◄─ tail ◄─ batch ◄─ decode ◄─ parse ◄┘      (service.py, batching.py, app.py, server.py)
            the same app on N Ray Serve replicas               (ray_app.py)

Heavy imports (fastapi, uvicorn, aiohttp, ray) happen only where they are used.
"""

from __future__ import annotations

from splitcodec.serve.metrics import Metrics, merge_snapshots, percentiles
from splitcodec.serve.service import Busy, FeatureService, ServeError

__all__ = ["FeatureService", "ServeError", "Busy", "Metrics", "merge_snapshots", "percentiles"]
