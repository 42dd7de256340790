"""Run the HTTP service with uvicorn: in the foreground, in a background thread, or as a child process.

* :func:`run_server` blocks (what ``splitcodec serve`` does).
* :class:`BackgroundServer` runs it on a thread of this process (tests, notebooks).
* :class:`ServerProcess` starts ``python -m splitcodec serve`` as a child process, optionally inside a
  network namespace, waits until it listens and always stops it on exit.

The socket is bound here (port 0 picks a free port), so callers learn the real address.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from splitcodec.errors import DependencyError, SplitcodecError
from splitcodec.serve.service import FeatureService

__all__ = ["ServerOptions", "run_server", "BackgroundServer", "ServerProcess", "READY_LINE"]

READY_LINE = "splitcodec serve: listening on "


def _require_serving_stack() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DependencyError(
            f"the server needs fastapi and uvicorn ({exc.name} is missing): pip install 'splitcodec[serve]'"
        ) from exc


@dataclass
class ServerOptions:
    """How the server listens and batches.  ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_batch: int = 32
    max_wait_ms: float = 0.0
    max_queue: int = 256
    max_connections: int = 1024
    log_level: str = "warning"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


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


def _url(opts: ServerOptions, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{opts.scheme}://{host}:{port}"


def _make_server(service: FeatureService, opts: ServerOptions, on_ready: Callable[[], None] | None):
    _require_serving_stack()
    import uvicorn

    from splitcodec.serve.app import LocalBackend, build_app

    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise SplitcodecError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
    backend = LocalBackend(service, max_batch=opts.max_batch, max_wait_ms=opts.max_wait_ms, max_queue=opts.max_queue)
    app = build_app(backend, token=opts.token)
    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    config = uvicorn.Config(
        app,
        loop=loop,
        http=http,
        lifespan="on",
        log_level=opts.log_level,
        access_log=False,
        limit_concurrency=opts.max_connections,
        ssl_certfile=opts.tls_cert,
        ssl_keyfile=opts.tls_key,
        timeout_keep_alive=30,
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


def run_server(service: FeatureService, opts: ServerOptions, *, announce: Callable[[str], None] | None = None) -> None:
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

    >>> # with BackgroundServer(service, ServerOptions(port=0)) as srv: requests to srv.url
    """

    def __init__(self, service: FeatureService, opts: ServerOptions | None = None, *, startup_timeout: float = 30.0) -> None:
        self.opts = opts or ServerOptions(port=0)
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


class ServerProcess:
    """``python -m splitcodec serve ARGS`` as a child process (optionally under ``prefix``, e.g.
    ``["ip", "netns", "exec", "ns0"]``); waits for its ready line and stops it on exit."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        prefix: Sequence[str] = (),
        startup_timeout: float = 120.0,
        env: dict[str, str] | None = None,
        grace: float = 30.0,
    ) -> None:
        self.cmd = [*prefix, sys.executable, "-m", "splitcodec", "serve", *args]
        self.startup_timeout = startup_timeout
        self.env = {**os.environ, **(env or {})}
        self.grace = grace
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._lines: list[str] = []

    def start(self) -> "ServerProcess":
        src = str(Path(__file__).resolve().parents[2])
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (src, self.env.get("PYTHONPATH")) if p)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, start_new_session=True
        )
        found: list[str] = []

        def reader() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self._lines.append(line.rstrip())
                if len(self._lines) > 200:
                    del self._lines[:100]
                if not found and line.startswith(READY_LINE):
                    found.append(line[len(READY_LINE) :].split()[0])

        threading.Thread(target=reader, name="splitcodec-server-log", daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not found:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self._lines[-20:])
                self.stop()
                raise SplitcodecError(f"server process did not start ({' '.join(self.cmd)}):\n{tail}")
            time.sleep(0.05)
        self.url = found[0]
        return self

    @property
    def output(self) -> str:
        return "\n".join(self._lines)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server (it shuts down cleanly), SIGKILL its process group after ``grace`` s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever it started and left behind goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

