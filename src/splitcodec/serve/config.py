"""One typed serving configuration, carried from the CLI to the server, the batcher and Ray Serve.

Every default of the runtime is written here once; ``splitcodec serve``'s options take theirs from
these fields.

>>> cfg = ServeConfig(model="ref-resnet", port=0, batching=Batching(max_batch=8))
>>> cfg.scheme, cfg.batching.max_batch, cfg.batching.max_queue
('http', 8, 256)
>>> ServeConfig(tls_cert="cert.pem")
Traceback (most recent call last):
...
splitcodec.errors.SplitcodecError: TLS needs both a certificate (--tls-cert) and its key (--tls-key)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from splitcodec.errors import SplitcodecError

__all__ = ["Batching", "ServeConfig"]


@dataclass(frozen=True)
class Batching:
    """How requests are batched through the tail, and when the server answers "busy".

    Args:
        max_batch: the largest batch of requests run through the tail at once.
        max_wait_ms: how long to wait for a batch to fill (0: batch what is waiting, never wait).
        max_queue: queued requests past which new ones are refused at once (HTTP 503).
    """

    max_batch: int = 32
    max_wait_ms: float = 0.0
    max_queue: int = 256

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1 or self.max_wait_ms < 0:
            raise SplitcodecError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")


@dataclass(frozen=True)
class ServeConfig:
    """What to serve, how to listen, how to batch, and (with Ray Serve) how many replicas.

    Args:
        model, split, weights: the registered model, its split point (None: the model's default) and a
            weights file (``torchvision:<arch>`` models).
        allowed_codecs: codec ids accepted (empty: any registered features codec).
        max_stream_bytes: the largest stream accepted (413 past it).
        threads: torch threads for the tail (per process or replica).
        host, port: where to listen (``port=0``: any free port).
        token: require ``Authorization: Bearer <token>`` on every endpoint but ``/healthz``.
        tls_cert, tls_key: PEM files; both or neither.
        batching: see :class:`Batching`.
        max_connections, max_connections_per_client: open connections in all and per client address; past
            a cap the longest-idle connection is closed (see :mod:`splitcodec.serve.guard`).
        head_timeout_s: how long a connection may wait for a complete request head (after opening or
            after its last response) before it is closed: the header and idle timeout.
        body_timeout_s: how long reading a request body may take (408 ``timeout`` past it).
        log_level: uvicorn's log level (single process).
        replicas, ray_address, ray_cpus, replica_cpus: Ray Serve replicas, the cluster to join (None:
            start one here), CPUs of a local Ray instance, CPUs reserved per replica.
    """

    model: str = "ref-resnet"
    split: str | None = None
    weights: str | None = None
    allowed_codecs: tuple[str, ...] = ()
    max_stream_bytes: int = 1 << 22
    threads: int = 1
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    batching: Batching = field(default_factory=Batching)
    max_connections: int = 1024
    max_connections_per_client: int = 64
    head_timeout_s: float = 5.0
    body_timeout_s: float = 10.0
    log_level: str = "warning"
    replicas: int = 2
    ray_address: str | None = None
    ray_cpus: int | None = None
    replica_cpus: float = 1.0

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SplitcodecError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"
