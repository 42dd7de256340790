"""Run the HTTP service with uvicorn: in the foreground or in a background thread.

* :func:`run_server` blocks (what ``splitcodec serve`` does).
* :class:`BackgroundServer` runs it on a thread of this process (tests, notebooks).

Both take a :class:`~splitcodec.serve.config.ServeConfig` (host, port, token, TLS, batching).  The
socket is bound here (port 0 picks a free port), so callers learn the real address.  The child-process
server of the tests and benchmarks is :class:`splitcodec.testing.ServerProcess`.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable

from splitcodec.errors import DependencyError, SplitcodecError
from splitcodec.serve.config import ServeConfig
from splitcodec.serve.guard import ConnectionGuard, guarded_protocol
from splitcodec.serve.service import FeatureService

__all__ = ["run_server", "BackgroundServer", "READY_LINE"]

READY_LINE = "splitcodec serve: listening on "


def _require_serving_stack() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DependencyError(
            f"the server needs fastapi and uvicorn ({exc.name} is missing): pip install 'splitcodec[serve]'"
        ) from exc


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SplitcodecError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def _url(opts: ServeConfig, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{opts.scheme}://{host}:{port}"


def _make_server(service: FeatureService, opts: ServeConfig, on_ready: Callable[[], None] | None):
    _require_serving_stack()
    import uvicorn

    from splitcodec.serve.app import LocalBackend, build_app

    guard = ConnectionGuard(opts.max_connections, opts.max_connections_per_client, opts.head_timeout_s)
    backend = LocalBackend(service, opts.batching, guard=guard)
    app = build_app(backend, token=opts.token, body_timeout_s=opts.body_timeout_s)
    loop = "uvloop" if _has("uvloop") else "asyncio"
    if _has("httptools"):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    http = guarded_protocol(base, guard)
    config = uvicorn.Config(
        app,
        loop=loop,
        http=http,
        lifespan="on",
        log_level=opts.log_level,
        access_log=False,
        limit_concurrency=None,  # the guard caps connections; the batcher's queue caps work
        ssl_certfile=opts.tls_cert,
        ssl_keyfile=opts.tls_key,
        timeout_keep_alive=max(1, int(opts.head_timeout_s)),
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_ready is not None:
                on_ready()

    return _Server(config)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_server(service: FeatureService, opts: ServeConfig, *, announce: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); ``announce(url)`` is called once it listens."""
    sock = _bind(opts.host, opts.port)
    url = _url(opts, sock)
    server = _make_server(service, opts, (lambda: announce(url)) if announce else None)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """The server on a thread of this process; a context manager that stops it on exit.

    >>> # with BackgroundServer(service, ServeConfig(port=0)) as srv: requests to srv.url
    """

    def __init__(self, service: FeatureService, opts: ServeConfig | None = None, *, startup_timeout: float = 30.0) -> None:
        self.opts = opts or ServeConfig(port=0)
        self.service = service
        self.startup_timeout = startup_timeout
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None
        self.url = ""

    def start(self) -> "BackgroundServer":
        self._sock = _bind(self.opts.host, self.opts.port)
        self.url = _url(self.opts, self._sock)
        self._server = _make_server(self.service, self.opts, self._ready.set)

        def target() -> None:
            try:
                self._server.run(sockets=[self._sock])
            except BaseException as exc:  # noqa: BLE001  (reported by start())
                self._error = exc
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=target, name="splitcodec-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.startup_timeout) or self._error is not None or not self._server.started:
            self.stop()
            raise SplitcodecError(f"server did not start: {self._error!r}")
        return self

    @property
    def backend(self) -> Any:
        return self._server.config.app  # the FastAPI app (its routes close over the backend)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
