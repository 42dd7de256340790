"""Dynamic batching with a bounded queue: concurrent requests share one tail call, overload gets "busy".

Requests wait in a FIFO of at most ``max_queue`` entries; a full queue refuses new ones at once with
:class:`~splitcodec.serve.errors.Busy` (back-pressure, HTTP 503) instead of growing.  One worker takes
up to ``max_batch`` waiting requests at a time, optionally waiting ``max_wait_ms`` for a batch to fill,
and runs the batch function in a worker thread so the event loop keeps accepting connections.  With
``max_wait_ms=0`` batching is greedy: a request never waits for company, but requests that arrive while
a batch runs go together into the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, TypeVar

from splitcodec.serve.config import Batching
from splitcodec.serve.errors import Busy, Internal, ShuttingDown
from splitcodec.serve.metrics import Metrics

log = logging.getLogger("splitcodec.serve")

__all__ = ["DynamicBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class DynamicBatcher(Generic[T, R]):
    """Collect items submitted from one event loop into batches for ``run_batch(items) -> results``.

    ``run_batch`` returns one result per item; a result that is an exception is raised to that item's
    caller only.  If ``run_batch`` itself raises, every item of that batch gets a 500 error and the
    batcher goes on.  ``batching`` sets the batch size, the wait and the queue bound.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], list[R | BaseException]],
        batching: Batching | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        batching = batching or Batching()
        self.run_batch = run_batch
        self.max_batch = batching.max_batch
        self.max_wait_ms = batching.max_wait_ms
        self.max_queue = batching.max_queue
        self.metrics = metrics
        self._queue: deque[tuple[T, asyncio.Future[Any], float]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="splitcodec-batch")
            self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            _, fut, _ = self._queue.popleft()
            if not fut.done():
                fut.set_exception(ShuttingDown("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, item: T) -> tuple[R, float]:
        """Queue ``item``; returns ``(result, ms spent waiting in the queue)``.  Raises Busy when full."""
        self.start()
        if len(self._queue) >= self.max_queue:
            raise Busy(f"server busy: {len(self._queue)} requests queued (limit {self.max_queue}); retry later")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut, time.perf_counter()))
        assert self._wake is not None
        self._wake.set()
        return await fut

    async def _worker(self) -> None:
        assert self._wake is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if self.max_wait_ms > 0 and len(self._queue) < self.max_batch:
                deadline = loop.time() + self.max_wait_ms / 1e3
                while len(self._queue) < self.max_batch and loop.time() < deadline:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                    except TimeoutError:
                        break
            depth = len(self._queue)
            batch = []
            while self._queue and len(batch) < self.max_batch:
                item, fut, t_in = self._queue.popleft()
                if not fut.done():  # the client went away: skip it
                    batch.append((item, fut, t_in))
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, [b[0] for b in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} items")
            except Exception:  # a bug in the batch function must not take the server down
                log.exception("batch failed")
                err = Internal("internal error while running the batch (logged by the server)")
                results = [err] * len(batch)
            if self.metrics is not None:
                self.metrics.observe_batch(len(batch), depth)
            for (_, fut, t_in), res in zip(batch, results):
                if fut.done():
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result((res, 1e3 * (started - t_in)))
