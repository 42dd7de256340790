"""The HTTP API (FastAPI/ASGI), the same for a single process and for every Ray Serve replica.

Why HTTP rather than gRPC: the one ASGI app built here is served by uvicorn in a single process and
mounted unchanged as the ingress of the Ray Serve deployment (Ray Serve is HTTP-native); health and
metrics are plain GETs a person can ``curl``; TLS is uvicorn's; the bearer token is a standard header.
The body of a predict request is the bitstream itself (``application/octet-stream``), so no bytes are
spent on base64 or framing beyond HTTP's own headers.

Endpoints::

    GET  /healthz       200 {"status": "ok", model, split, feature_shape, configs}   (no token needed)
    GET  /metrics       counters, bytes in/out, batch sizes, latency percentiles (ms)
    POST /v1/configs    body: codec config JSON  -> {"ref": "<8 hex digits>"}
    POST /v1/predict    body: bitstream          -> {"class", "output", "timing"}

Errors are JSON ``{"error": kind, "status": code, "detail": message}``: 400 malformed/undecodable,
401 unauthorized, 413 too large, 422 wrong shape/dtype/codec or unknown config, 503 busy (with
``Retry-After``), 500 internal (the server goes on serving).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Protocol

from fastapi import FastAPI, Request
from starlette.responses import Response

from splitcodec.bitstream import Frame
from splitcodec.codecs.base import Codec
from splitcodec.serve.batching import DynamicBatcher
from splitcodec.serve.config import Batching
from splitcodec.serve.errors import BadConfig, Internal, Malformed, ServeError, TooLarge, Unauthorized
from splitcodec.serve.metrics import Metrics
from splitcodec.serve.service import FeatureService

__all__ = ["Backend", "LocalBackend", "build_app"]

log = logging.getLogger("splitcodec.serve")

Job = tuple[Frame, Codec]


class Backend(Protocol):
    """What the HTTP layer needs from a deployment (one process, or one Ray Serve replica)."""

    service: FeatureService
    metrics: Metrics

    async def parse(self, body: bytes) -> Job: ...
    async def predict(self, job: Job) -> tuple[dict[str, Any], float]: ...
    async def register(self, config: Any) -> str: ...
    async def metrics_snapshot(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class LocalBackend:
    """One process: the service behind a :class:`DynamicBatcher`."""

    def __init__(self, service: FeatureService, batching: Batching | None = None) -> None:
        self.service = service
        self.metrics = Metrics()
        self.batcher: DynamicBatcher[Job, dict[str, Any]] = DynamicBatcher(service.run_batch, batching, metrics=self.metrics)

    async def parse(self, body: bytes) -> Job:
        return self.service.parse(body)

    async def predict(self, job: Job) -> tuple[dict[str, Any], float]:
        return await self.batcher.submit(job)

    async def register(self, config: Any) -> str:
        return self.service.register(config)

    async def metrics_snapshot(self) -> dict[str, Any]:
        snap = self.metrics.snapshot()
        snap["queue_depth"] = self.batcher.depth
        snap["queue_limit"] = self.batcher.max_queue
        return snap

    async def close(self) -> None:
        await self.batcher.stop()


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj).encode(), status_code=status, media_type="application/json", headers=headers)


def _error(err: ServeError) -> Response:
    headers = {"Retry-After": "1"} if err.status == 503 else None
    if err.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return _json(err.to_json(), err.status, headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Malformed(f"bad Content-Length {declared!r}") from None
        if size > limit:
            raise TooLarge(f"request body of {size} bytes exceeds this server's limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body exceeds this server's limit of {limit} bytes")
    return bytes(body)


class _Api:
    """The endpoints' handlers, over one backend and (optionally) one bearer token."""

    def __init__(self, backend: Backend, token: str | None) -> None:
        self.backend = backend
        self.expected = f"Bearer {token}".encode() if token else None

    def check_auth(self, request: Request) -> None:
        if self.expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self.expected):
            raise Unauthorized("missing or wrong bearer token (Authorization: Bearer <token>)")

    async def healthz(self) -> Response:
        return _json(self.backend.service.health())

    async def metrics(self, request: Request) -> Response:
        try:
            self.check_auth(request)
        except ServeError as err:
            return _error(err)
        snap = await self.backend.metrics_snapshot()
        snap.pop("_latencies", None)
        return _json(snap)

    async def register(self, request: Request) -> Response:
        try:
            self.check_auth(request)
            body = await _read_body(request, self.backend.service.limits.max_config_bytes)
            try:
                config = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadConfig(f"codec config is not valid JSON: {exc}") from exc
            ref = await self.backend.register(config)
        except ServeError as err:
            return _error(err)
        return _json({"ref": ref})

    async def predict(self, request: Request) -> Response:
        t0 = time.perf_counter()
        size = 0
        try:
            self.check_auth(request)
            body = await _read_body(request, self.backend.service.limits.max_bytes)
            size = len(body)
            t_body = time.perf_counter()  # server time counts from the whole stream being here
            job = await self.backend.parse(body)
            result, queue_ms = await self.backend.predict(job)
            result["timing"]["queue_ms"] = queue_ms
            result["timing"]["server_ms"] = 1e3 * (time.perf_counter() - t_body)
            response = _json(result)
            status, kind = 200, None
        except ServeError as err:
            response, status, kind = _error(err), err.status, err.kind
        except Exception as exc:  # never let one request take the server down
            log.exception("predict failed")
            err = Internal(f"{type(exc).__name__}: {exc}")
            response, status, kind = _error(err), err.status, err.kind
        self.backend.metrics.observe(status, 1e3 * (time.perf_counter() - t0), size, len(response.body), kind)
        return response


def build_app(backend: Backend, *, token: str | None = None) -> FastAPI:
    """The FastAPI app serving ``backend``; with ``token`` every endpoint but /healthz needs it."""
    api = _Api(backend, token)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await backend.close()

    app = FastAPI(title="splitcodec server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.get("/healthz")(api.healthz)
    app.get("/metrics")(api.metrics)
    app.post("/v1/configs")(api.register)
    app.post("/v1/predict")(api.predict)
    return app
