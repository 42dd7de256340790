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
401 unauthorized, 404/405, 408 timeout (body too slow), 413 too large, 422 wrong shape/dtype/codec,
unknown config or non-finite outputs, 503 busy (with ``Retry-After``), 500 internal (the server goes
on serving; the detail never carries exception text).  A client that disconnects is counted in
``/metrics`` as ``disconnects``, not as an error, and logs nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Protocol

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from splitcodec.bitstream import Frame, Limits, parse_config_json
from splitcodec.codecs.base import Codec
from splitcodec.errors import SplitcodecError
from splitcodec.serve.batching import DynamicBatcher
from splitcodec.serve.config import Batching
from splitcodec.serve.errors import (
    BadConfig,
    Internal,
    Malformed,
    MethodNotAllowed,
    NotFound,
    ServeError,
    Timeout,
    TooLarge,
    Unauthorized,
)
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
    async def register(self, config: Any, owner: str = "") -> str: ...
    async def metrics_snapshot(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class LocalBackend:
    """One process: the service behind a :class:`DynamicBatcher`."""

    def __init__(self, service: FeatureService, batching: Batching | None = None, *, guard: Any = None) -> None:
        self.service = service
        self.guard = guard  # a ConnectionGuard (its counts appear in the metrics), or None
        self.metrics = Metrics()
        self.batcher: DynamicBatcher[Job, dict[str, Any]] = DynamicBatcher(service.run_batch, batching, metrics=self.metrics)

    async def parse(self, body: bytes) -> Job:
        return self.service.parse(body)

    async def predict(self, job: Job) -> tuple[dict[str, Any], float]:
        return await self.batcher.submit(job)

    async def register(self, config: Any, owner: str = "") -> str:
        return self.service.register(config, owner=owner)

    async def metrics_snapshot(self) -> dict[str, Any]:
        snap = self.metrics.snapshot()
        snap["queue_depth"] = self.batcher.depth
        snap["queue_limit"] = self.batcher.max_queue
        if self.guard is not None:
            snap["connections"] = self.guard.snapshot()
        return snap

    async def close(self) -> None:
        await self.batcher.stop()


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        body = json.dumps(obj, allow_nan=False).encode()
    except ValueError:  # NaN/inf slipped through: never send invalid JSON
        log.error("refused to send non-finite numbers in a JSON answer")
        err = Internal("internal error: the answer held non-finite numbers")
        status, body = err.status, json.dumps(err.to_json()).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(err: ServeError) -> Response:
    headers = {"Retry-After": "1"} if err.status == 503 else None
    if err.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    if err.status in (408, 413):
        headers = {"Connection": "close"}  # the rest of the body is not read
    return _json(err.to_json(), err.status, headers)


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes, and with
    408 when it has not all arrived ``timeout_s`` after the request head."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Malformed("bad Content-Length header") from None
        if size > limit:
            raise TooLarge(f"request body of {size} bytes exceeds this server's limit of {limit}")
    body = bytearray()
    deadline = time.monotonic() + timeout_s
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(deadline - time.monotonic(), 0.001))
        except StopAsyncIteration:
            return bytes(body)
        except asyncio.TimeoutError:
            raise Timeout(f"the request body did not arrive within {timeout_s:g} s") from None
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body exceeds this server's limit of {limit} bytes")


def _owner(request: Request) -> str:
    """Who registers a config: the client's address (each edge device its own share of the store)."""
    return request.client.host if request.client else ""


class _Api:
    """The endpoints' handlers, over one backend and (optionally) one bearer token."""

    def __init__(self, backend: Backend, token: str | None, body_timeout_s: float = 10.0) -> None:
        self.backend = backend
        self.body_timeout_s = body_timeout_s
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
        limits = self.backend.service.limits
        try:
            self.check_auth(request)
            body = await _read_body(request, limits.max_config_bytes, self.body_timeout_s)
            try:
                config = parse_config_json(body, Limits(max_config_bytes=limits.max_config_bytes))
            except SplitcodecError as exc:
                raise BadConfig(str(exc)) from None
            ref = await self.backend.register(config, owner=_owner(request))
        except ClientDisconnect:
            self.backend.metrics.observe_disconnect()
            return Response(status_code=499)
        except ServeError as err:
            return _error(err)
        return _json({"ref": ref})

    async def predict(self, request: Request) -> Response:
        t0 = time.perf_counter()
        size = 0
        try:
            self.check_auth(request)
            body = await _read_body(request, self.backend.service.limits.max_bytes, self.body_timeout_s)
            size = len(body)
            t_body = time.perf_counter()  # server time counts from the whole stream being here
            job = await self.backend.parse(body)
            result, queue_ms = await self.backend.predict(job)
            result["timing"]["queue_ms"] = queue_ms
            result["timing"]["server_ms"] = 1e3 * (time.perf_counter() - t_body)
            response = _json(result)
            status, kind = response.status_code, None
        except ClientDisconnect:  # the client went away mid-body: not an error of ours, nothing to log
            self.backend.metrics.observe_disconnect()
            return Response(status_code=499)
        except ServeError as err:
            response, status, kind = _error(err), err.status, err.kind
        except Exception:  # never let one request take the server down; never send exception text
            log.exception("predict failed")
            err = Internal("internal error (logged by the server)")
            response, status, kind = _error(err), err.status, err.kind
        self.backend.metrics.observe(status, 1e3 * (time.perf_counter() - t0), size, len(response.body), kind)
        return response


def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown path, wrong method) in the server's JSON error format."""
    code = getattr(exc, "status_code", 500)
    if code == 404:
        return _error(NotFound(f"no endpoint {request.url.path}"))
    if code == 405:
        return _error(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    return _error(Malformed("bad request") if 400 <= code < 500 else Internal("internal error"))


def _unhandled(request: Request, exc: Exception) -> Response:  # noqa: ARG001
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
    return _error(Internal("internal error (logged by the server)"))


def build_app(backend: Backend, *, token: str | None = None, body_timeout_s: float = 10.0) -> FastAPI:
    """The FastAPI app serving ``backend``; with ``token`` every endpoint but /healthz needs it."""
    api = _Api(backend, token, body_timeout_s)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await backend.close()

    app = FastAPI(title="splitcodec server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.get("/healthz")(api.healthz)
    app.get("/metrics")(api.metrics)
    app.post("/v1/configs")(api.register)
    app.post("/v1/predict")(api.predict)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
    return app
