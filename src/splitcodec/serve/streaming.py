"""Bounded runs of many requests through one :class:`~splitcodec.serve.client.EdgeClient`.

:func:`stream_dataset` streams a dataset through head → encode → server with bounded concurrency and
reports throughput, latency percentiles, bytes sent and accuracy; :func:`load_test` replays ready-made
bitstreams (server capacity, fault injection).  Both stop by themselves: a fixed number of requests,
and no new request after ``time_limit_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

import numpy as np
import torch

from splitcodec.serve.metrics import percentiles

if TYPE_CHECKING:
    from splitcodec.serve.client import EdgeClient, Inference, Reply

__all__ = ["EdgeReport", "LoadReport", "stream_dataset", "load_test"]

T = TypeVar("T")


async def _bounded(
    n: int, concurrency: int, time_limit_s: float, job: Callable[[int], Awaitable[T]],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[T | None], float]:
    """Run ``job(i)`` for i < n with at most ``concurrency`` in flight; none starts after the time limit.

    ``progress(done, n)`` is called after each job."""
    results: list[T | None] = [None] * n
    counter = iter(range(n))
    deadline = time.perf_counter() + time_limit_s
    finished = 0

    async def worker() -> None:
        nonlocal finished
        for i in counter:
            if time.perf_counter() > deadline:
                return
            results[i] = await job(i)
            finished += 1
            if progress is not None:
                progress(finished, n)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    return results, time.perf_counter() - t0


@dataclass
class LoadReport:
    """What a bounded run measured (latencies in ms, client side, per request)."""

    requests: int
    completed: int
    wall_s: float
    throughput_rps: float
    latency_ms: dict[str, float | None]
    kinds: dict[str, int]
    bytes_sent: int
    replies: list[Reply | None] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "replies"}


async def load_test(
    client: EdgeClient,
    streams: Sequence[bytes],
    *,
    concurrency: int = 8,
    time_limit_s: float = 60.0,
) -> LoadReport:
    """POST every stream once with ``concurrency`` requests in flight; throughput counts 200 answers."""
    await client.aopen()
    replies, wall = await _bounded(len(streams), concurrency, time_limit_s, lambda i: client.asend(streams[i]))
    done = [r for r in replies if r is not None]
    ok = [r for r in done if r.ok]
    return LoadReport(
        requests=len(streams),
        completed=len(done),
        wall_s=wall,
        throughput_rps=len(ok) / wall if wall > 0 else 0.0,
        latency_ms=percentiles([r.latency_ms for r in ok]),
        kinds=dict(Counter(r.kind for r in done)),
        bytes_sent=sum(r.bytes_sent for r in done),
        replies=list(replies),
    )


@dataclass
class EdgeReport:
    """A dataset streamed through head → encode → server: speed, bytes and accuracy."""

    samples: int
    completed: int
    ok: int
    wall_s: float
    throughput_sps: float
    latency_ms: dict[str, float | None]
    parts_ms: dict[str, float]
    bytes_sent: int
    mean_stream_bytes: float
    top1: float | None
    kinds: dict[str, int]
    predictions: list[int | None] = field(default_factory=list, repr=False)
    inferences: list[Inference | None] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("predictions", "inferences")}


async def stream_dataset(
    client: EdgeClient,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    concurrency: int = 1,
    time_limit_s: float = 300.0,
    register: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> EdgeReport:
    """Each image alone through head → encode → server, ``concurrency`` samples in flight.

    ``progress(done, total)`` is called after each answered sample."""
    await client.aopen()
    if register:
        await client.aregister()
    n = len(images)
    runs, wall = await _bounded(n, concurrency, time_limit_s, lambda i: client.ainfer(images[i : i + 1]), progress)
    done = [r for r in runs if r is not None]
    ok = [r for r in done if r.reply.ok]
    preds = [r.prediction if r is not None else None for r in runs]
    top1 = None
    if labels is not None and done:
        hits = [p is not None and p == int(labels[i]) for i, p in enumerate(preds) if runs[i] is not None]
        top1 = 100.0 * float(np.mean(hits))
    parts = {k: float(np.mean([r.timing[k] for r in ok])) for k in (ok[0].timing if ok else {})}
    sent = sum(r.stream_bytes for r in done)
    return EdgeReport(
        samples=n,
        completed=len(done),
        ok=len(ok),
        wall_s=wall,
        throughput_sps=len(ok) / wall if wall > 0 else 0.0,
        latency_ms=percentiles([r.total_ms for r in ok]),
        parts_ms=parts,
        bytes_sent=sent,
        mean_stream_bytes=sent / len(done) if done else 0.0,
        top1=top1,
        kinds=dict(Counter(r.reply.kind for r in done)),
        predictions=preds,
        inferences=list(runs),
    )
