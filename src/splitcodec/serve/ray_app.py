"""The same service on Ray Serve: N replicas behind Ray's HTTP proxy, on one machine or a Ray cluster.

Each replica builds the :class:`~splitcodec.serve.service.FeatureService` once and mounts the very ASGI
app of :mod:`splitcodec.serve.app` as its ingress, so endpoints, errors and the bearer token are those
of the single-process server.  What Ray provides instead of our own pieces:

* batching: ``@serve.batch`` (``max_batch``, ``max_wait_ms``) in each replica;
* back-pressure: ``max_queued_requests`` — past it Ray's proxy answers 503 at once;
* placement: replicas go wherever the cluster has CPUs (``ray start --address`` on more machines).

Codec configs registered on one replica reach the others through a small named actor
(:class:`ConfigRegistry`); a replica that meets an unknown config reference asks it before refusing.
The same actor pools the replicas' metrics, so ``/metrics`` reports the whole deployment.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.serve.config import HTTPOptions

from splitcodec.bitstream import unpack
from splitcodec.errors import SplitcodecError
from splitcodec.serve.config import Batching, ServeConfig
from splitcodec.serve.errors import UnknownConfig
from splitcodec.serve.metrics import Metrics, merge_snapshots
from splitcodec.serve.service import FeatureService

__all__ = ["RayDeployment", "deploy", "preload", "shutdown", "NAMESPACE", "APP_NAME"]

NAMESPACE = "splitcodec"
APP_NAME = "splitcodec"
REGISTRY_NAME = "splitcodec-configs"
METRICS_PUSH_S = 0.5
_registry_handle: Any = None


class ConfigRegistry:
    """Codec configs by reference, and the latest metrics snapshot of each replica (a Ray actor)."""

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}

    def add(self, ref: str, config: dict[str, Any]) -> None:
        self.configs[ref] = config

    def get(self, ref: str) -> dict[str, Any] | None:
        return self.configs.get(ref)

    def all(self) -> dict[str, dict[str, Any]]:
        return dict(self.configs)

    def report(self, replica: str, snapshot: dict[str, Any]) -> None:
        self.snapshots[replica] = snapshot

    def pooled(self) -> list[dict[str, Any]]:
        return list(self.snapshots.values())


class SplitcodecReplica:
    """One Ray Serve replica: the :class:`~splitcodec.serve.app.Backend` of the shared HTTP app."""

    def __init__(self, config: ServeConfig) -> None:
        import torch

        torch.set_num_threads(config.threads)
        self.service = FeatureService.from_config(config)
        self.metrics = Metrics()
        self.token = config.token
        self.replica_id = f"{os.getpid()}-{id(self):x}"
        self._predict_batch.set_max_batch_size(config.batching.max_batch)
        self._predict_batch.set_batch_wait_timeout_s(config.batching.max_wait_ms / 1e3)
        self._registry = ray.get_actor(REGISTRY_NAME, namespace=NAMESPACE)
        self._pusher: asyncio.Task[None] | None = None

    def __serve_build_asgi_app__(self) -> Any:
        from splitcodec.serve.app import build_app

        return build_app(self, token=self.token)

    # --- Backend protocol ------------------------------------------------------------------------
    async def parse(self, body: bytes) -> Any:
        self._start_pusher()
        try:
            return self.service.parse(body)
        except UnknownConfig:
            ref = unpack(body, self.service.limits).config_ref
            config = await self._registry.get.remote(ref.hex()) if ref is not None else None
            if config is None:
                raise
            self.service.register(config)
            return self.service.parse(body)

    async def predict(self, job: Any) -> tuple[dict[str, Any], float]:
        result, queue_ms = await self._predict_batch((job, time.perf_counter()))
        if isinstance(result, BaseException):
            raise result
        return result, queue_ms

    @serve.batch(max_batch_size=Batching.max_batch, batch_wait_timeout_s=Batching.max_wait_ms / 1e3)
    async def _predict_batch(self, items: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
        started = time.perf_counter()
        results = await asyncio.to_thread(self.service.run_batch, [job for job, _ in items])
        self.metrics.observe_batch(len(items), 0)  # Ray holds the queue; its depth is not visible here
        return [(res, 1e3 * (started - t_in)) for res, (_, t_in) in zip(results, items)]

    async def register(self, config: Any, owner: str = "") -> str:
        ref = self.service.register(config, owner=owner)
        await self._registry.add.remote(ref, config)
        return ref

    async def metrics_snapshot(self) -> dict[str, Any]:
        await self._registry.report.remote(self.replica_id, self.metrics.snapshot())
        return merge_snapshots(await self._registry.pooled.remote())

    async def close(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()

    def _start_pusher(self) -> None:
        if self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_metrics())

    async def _push_metrics(self) -> None:
        """Report this replica's snapshot every METRICS_PUSH_S: pooled metrics lag by at most that."""
        while True:
            await asyncio.sleep(METRICS_PUSH_S)
            try:
                await self._registry.report.remote(self.replica_id, self.metrics.snapshot())
            except Exception:  # noqa: BLE001  (metrics must never break serving)
                pass


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _init_ray(address: str | None, num_cpus: int | None) -> None:
    """Start Ray here (or join the cluster at ``address``) with this source tree on the workers' path."""
    src = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    if not ray.is_initialized():
        ray.init(
            address=address,
            namespace=NAMESPACE,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            _node_ip_address="127.0.0.1" if address is None else None,
            log_to_driver=False,
            runtime_env={"env_vars": env},
        )


def deploy(config: ServeConfig) -> str:
    """Start (or join, with ``config.ray_address``) Ray, deploy ``config.replicas`` replicas; returns the URL.

    ``port=0`` picks a free port.  Call :func:`shutdown` to stop (the CLI does it on Ctrl-C).
    """
    if config.replicas < 1:
        raise SplitcodecError(f"--replicas must be >= 1, got {config.replicas}")
    port = config.port or _free_port(config.host)
    _init_ray(config.ray_address, config.ray_cpus)
    global _registry_handle
    actor = ray.remote(num_cpus=0)(ConfigRegistry)
    # Keep the handle: a named, non-detached actor lives as long as its creator holds one.
    _registry_handle = actor.options(name=REGISTRY_NAME, namespace=NAMESPACE, get_if_exists=True).remote()
    ray.get(_registry_handle.all.remote())  # created and reachable before any replica looks it up
    serve.start(http_options=HTTPOptions(host=config.host, port=port, ssl_certfile=config.tls_cert,
                                         ssl_keyfile=config.tls_key))
    ingress = serve.ingress()(SplitcodecReplica)
    deployment = serve.deployment(
        ingress,
        name="splitcodec",
        num_replicas=config.replicas,
        max_ongoing_requests=max(2 * config.batching.max_batch, 8),
        max_queued_requests=config.batching.max_queue,
        ray_actor_options={"num_cpus": config.replica_cpus},
        logging_config={"enable_access_log": False, "log_level": "WARNING"},  # no log line per request
    )
    serve.run(deployment.bind(config), name=APP_NAME, route_prefix="/", blocking=False)
    return f"{config.scheme}://{config.host}:{port}"


def preload(configs: list[dict[str, Any]]) -> list[str]:
    """Put codec configs in the shared registry before any client registers them; returns their refs."""
    from splitcodec.codecs.registry import get_codec

    registry = ray.get_actor(REGISTRY_NAME, namespace=NAMESPACE)
    refs = []
    for config in configs:
        try:
            ref = get_codec(config).config_ref.hex()
        except SplitcodecError as exc:
            raise SplitcodecError(f"cannot hold codec config {config.get('id')!r}: {exc}") from exc
        ray.get(registry.add.remote(ref, config))
        refs.append(ref)
    return refs


def shutdown() -> None:
    """Remove the deployment and stop Ray if this process started it."""
    global _registry_handle
    _registry_handle = None
    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


class RayDeployment:
    """Context manager around :func:`deploy` / :func:`shutdown` (benchmarks, tests)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.url = ""

    def __enter__(self) -> "RayDeployment":
        try:
            self.url = deploy(self.config)
        except BaseException:
            shutdown()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        shutdown()
