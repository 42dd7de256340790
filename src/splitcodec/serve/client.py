"""The edge side: run the head and the encoder, send the bitstream, read the server's answer.

:class:`EdgeClient` holds a head module and a fitted codec.  It registers the codec config with the
server once (so each stream carries only the 4-byte reference), then each sample costs one HTTP POST
whose body is the bitstream.  It has an ``async`` API (``a``-prefixed methods, for many requests in
flight) and blocking wrappers that run on a private event-loop thread::

    with EdgeClient.for_model("http://127.0.0.1:8000", "ref-resnet", "layer2", "uniform:bits=4") as edge:
        answer = edge.infer(x)          # x: 1×C×H×W; answer.prediction, answer.timing

:func:`splitcodec.serve.streaming.stream_dataset` streams a dataset through one client with bounded
concurrency; :func:`~splitcodec.serve.streaming.load_test` replays ready-made bitstreams.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Coroutine, TypeVar

import torch
from torch import nn

from splitcodec.codecs.base import Codec
from splitcodec.errors import DependencyError, SplitcodecError

__all__ = ["Reply", "Inference", "EdgeClient", "client_ssl_context"]

T = TypeVar("T")


def client_ssl_context(cafile: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """An SSL context for the client: trust ``cafile`` (e.g. a self-signed server cert) or the system store."""
    ctx = ssl.create_default_context(cafile=cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Reply:
    """One HTTP exchange: status (0 when the connection failed), decoded JSON body, timing, sizes."""

    status: int
    body: dict[str, Any]
    latency_ms: float
    bytes_sent: int

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def kind(self) -> str:
        """``"ok"``, or the server's error kind (``busy``, ``malformed``, …), or ``connection``."""
        if self.ok:
            return "ok"
        return str(self.body.get("error") or ("busy" if self.status == 503 else f"http_{self.status}"))

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", ""))


@dataclass
class Inference:
    """One sample through the whole pipeline, with the time of each part (ms)."""

    reply: Reply
    head_ms: float
    encode_ms: float
    stream_bytes: int
    total_ms: float

    @property
    def prediction(self) -> int | None:
        return self.reply.body.get("class") if self.reply.ok else None

    @property
    def output(self) -> list[float] | None:
        return self.reply.body.get("output") if self.reply.ok else None

    @property
    def timing(self) -> dict[str, float]:
        """head, encode, network (round trip minus server time), server queue/decode/tail, total."""
        server = self.reply.body.get("timing", {}) if self.reply.ok else {}
        net = self.reply.latency_ms - server.get("server_ms", 0.0)
        return {
            "head_ms": self.head_ms,
            "encode_ms": self.encode_ms,
            "network_ms": net,
            "queue_ms": server.get("queue_ms", 0.0),
            "decode_ms": server.get("decode_ms", 0.0),
            "tail_ms": server.get("tail_ms", 0.0),
            "server_ms": server.get("server_ms", 0.0),
            "total_ms": self.total_ms,
        }


def _require_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:
        raise DependencyError("the edge client needs aiohttp: pip install 'splitcodec[serve]'") from exc
    return aiohttp


class EdgeClient:
    """Head + encoder on the edge device, talking HTTP to a splitcodec server.

    Args:
        url: the server (or a link emulator in front of it), e.g. ``http://127.0.0.1:8000``.
        head: the edge half of the model (None: send ready-made streams only).
        codec: a fitted codec (None: send ready-made streams only).
        token: bearer token, when the server wants one.
        cafile / verify: TLS trust for ``https://`` URLs.
        connections: the most connections kept open to the server.
        timeout_s: per-request time limit.
    """

    def __init__(
        self,
        url: str,
        *,
        head: nn.Module | None = None,
        codec: Codec | None = None,
        token: str | None = None,
        cafile: str | None = None,
        verify: bool = True,
        connections: int = 64,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.head = head.eval() if head is not None else None
        self.codec = codec
        self.token = token
        self.ssl = client_ssl_context(cafile, verify=verify) if self.url.startswith("https") else None
        self.connections = connections
        self.timeout_s = timeout_s
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._compute: ThreadPoolExecutor | None = None

    @classmethod
    def for_model(
        cls,
        url: str,
        model: str | nn.Module,
        split: str | None,
        codec: str | Codec,
        *,
        calibration: torch.Tensor | None = None,
        calibration_samples: int = 64,
        **kwargs: Any,
    ) -> "EdgeClient":
        """Cut ``model`` at ``split``, and fit ``codec`` (a spec such as ``"uniform:bits=4"``) on the head
        features of ``calibration`` images (default: the model dataset's calibration split), exactly as
        :func:`splitcodec.eval.prepare` does."""
        from splitcodec.data import load_dataset
        from splitcodec.models import load
        from splitcodec.pipeline import codec_from_spec, cut

        net = load(model) if isinstance(model, str) else model.eval()
        cfg = getattr(net, "splitcodec_cfg", None)
        split = split or (cfg.default_split if cfg else None)
        if split is None:
            raise SplitcodecError("no split given and the model has no default split")
        if calibration is None:
            if cfg is None or cfg.dataset is None:
                raise SplitcodecError("pass calibration= images: the model names no dataset")
            calibration = load_dataset(cfg.dataset, "calibration").subset(calibration_samples).images
        parts = cut(net, split, calibration[:1])
        if isinstance(codec, str):
            codec = codec_from_spec(codec)
        with torch.inference_mode():
            feats = torch.cat([parts.head(calibration[i : i + 128]) for i in range(0, len(calibration), 128)])
        codec.fit(feats, activation=parts.point.act)
        return cls(url, head=parts.head, codec=codec, **kwargs)

    # --- async API --------------------------------------------------------------------------------
    async def aopen(self) -> "EdgeClient":
        aiohttp = _require_aiohttp()
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.connections, ssl=self.ssl if self.ssl is not None else True)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._compute is not None:
            self._compute.shutdown(wait=False)
            self._compute = None

    async def __aenter__(self) -> "EdgeClient":
        return await self.aopen()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def _request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/octet-stream") -> Reply:
        aiohttp = _require_aiohttp()
        await self.aopen()
        t0 = time.perf_counter()
        try:
            async with self._session.request(method, self.url + path, data=body or None, headers=self._headers(content_type)) as r:
                raw = await r.read()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Reply(0, {"error": "connection", "detail": f"{type(exc).__name__}: {exc}"}, 1e3 * (time.perf_counter() - t0), len(body))
        latency = 1e3 * (time.perf_counter() - t0)
        try:
            payload = json.loads(raw) if raw else {}
            if not isinstance(payload, dict):
                payload = {"value": payload}
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = {"detail": raw[:200].decode("utf-8", "replace")}
        return Reply(status, payload, latency, len(body))

    async def ahealth(self) -> Reply:
        return await self._request("GET", "/healthz")

    async def ametrics(self) -> Reply:
        return await self._request("GET", "/metrics")

    async def aregister(self, config: dict[str, Any] | None = None) -> str:
        """Send the codec config once; returns the reference the server holds it under."""
        if config is None:
            if self.codec is None:
                raise SplitcodecError("no codec to register")
            config = self.codec.get_config()
        reply = await self._request("POST", "/v1/configs", json.dumps(config).encode(), "application/json")
        if reply.status == 0:
            raise SplitcodecError(f"no server answers at {self.url} ({reply.detail}); start one with "
                                  "`splitcodec serve` or give its address with --url")
        if not reply.ok:
            raise SplitcodecError(f"server refused the codec config ({reply.status} {reply.kind}): {reply.detail}")
        return str(reply.body["ref"])

    async def asend(self, stream: bytes) -> Reply:
        """POST one bitstream; the reply holds the prediction or the server's error."""
        return await self._request("POST", "/v1/predict", stream)

    def encode(self, x: torch.Tensor) -> tuple[bytes, float, float]:
        """Head and encoder on one sample: ``(stream, head_ms, encode_ms)``."""
        if self.head is None or self.codec is None:
            raise SplitcodecError("this client has no head/codec: build it with EdgeClient.for_model or pass them")
        t0 = time.perf_counter()
        with torch.inference_mode():
            feats = self.head(x)
        t1 = time.perf_counter()
        stream = self.codec.encode(feats, config="ref")
        t2 = time.perf_counter()
        return stream, 1e3 * (t1 - t0), 1e3 * (t2 - t1)

    async def ainfer(self, x: torch.Tensor) -> Inference:
        """Head → encode → send → answer for one sample ``x`` (1×C×H×W).

        Head and encoder run on one worker thread (the edge device computes one sample at a time) so
        the event loop keeps reading answers meanwhile; ``total_ms`` includes waiting for that thread.
        """
        t0 = time.perf_counter()
        if self._compute is None:
            self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="splitcodec-edge-compute")
        stream, head_ms, enc_ms = await asyncio.get_running_loop().run_in_executor(self._compute, self.encode, x)
        reply = await self.asend(stream)
        return Inference(reply, head_ms, enc_ms, len(stream), 1e3 * (time.perf_counter() - t0))

    # --- blocking API (a private event loop on a thread) ------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="splitcodec-edge", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def open(self) -> "EdgeClient":
        self._run(self.aopen())
        return self

    def close(self) -> None:
        if self._loop is not None:
            self._run(self.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None

    def __enter__(self) -> "EdgeClient":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def health(self) -> Reply:
        return self._run(self.ahealth())

    def metrics(self) -> Reply:
        return self._run(self.ametrics())

    def register(self, config: dict[str, Any] | None = None) -> str:
        return self._run(self.aregister(config))

    def send(self, stream: bytes) -> Reply:
        return self._run(self.asend(stream))

    def infer(self, x: torch.Tensor) -> Inference:
        return self._run(self.ainfer(x))
