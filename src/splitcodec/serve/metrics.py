"""Server-side counters and latency percentiles, cheap enough to update on every request.

Counters are totals since start; latency percentiles are over the last ``window`` requests (a ring
buffer), so a long-running server reports its current behaviour, not its whole history.  Snapshots are
plain JSON dicts and :func:`merge_snapshots` combines those of several replicas (Ray Serve).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import numpy as np

__all__ = ["Metrics", "merge_snapshots", "percentiles"]

PERCENTILES = (50, 90, 99)


def percentiles(values_ms: np.ndarray | list[float]) -> dict[str, float | None]:
    """``{"p50": …, "p90": …, "p99": …, "mean": …, "max": …}`` in ms (None for no values)."""
    arr = np.asarray(values_ms, dtype=np.float64)
    if arr.size == 0:
        return {**{f"p{p}": None for p in PERCENTILES}, "mean": None, "max": None}
    out: dict[str, float | None] = {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES))}
    out["mean"] = float(arr.mean())
    out["max"] = float(arr.max())
    return out


class Metrics:
    """Request count by status, bytes in/out, batch sizes, queue depth and recent latencies."""

    def __init__(self, window: int = 4096) -> None:
        self._lock = threading.Lock()
        self._window = np.zeros(window, dtype=np.float64)
        self._filled = 0
        self._next = 0
        self.started = time.time()
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.by_error: Counter[str] = Counter()
        self.bytes_in = 0
        self.bytes_out = 0
        self.batches = 0
        self.batched_items = 0
        self.max_batch_seen = 0
        self.max_queue_seen = 0
        self.disconnects = 0

    def observe(self, status: int, latency_ms: float, bytes_in: int, bytes_out: int, error: str | None = None) -> None:
        """Record one finished predict request."""
        with self._lock:
            self.requests += 1
            self.by_status[status] += 1
            if error is not None:
                self.by_error[error] += 1
            self.bytes_in += bytes_in
            self.bytes_out += bytes_out
            self._window[self._next] = latency_ms
            self._next = (self._next + 1) % len(self._window)
            self._filled = min(self._filled + 1, len(self._window))

    def observe_disconnect(self) -> None:
        """A client went away before its answer (counted apart from the requests answered)."""
        with self._lock:
            self.disconnects += 1

    def observe_batch(self, size: int, queue_depth: int) -> None:
        with self._lock:
            self.batches += 1
            self.batched_items += size
            self.max_batch_seen = max(self.max_batch_seen, size)
            self.max_queue_seen = max(self.max_queue_seen, queue_depth)

    def latencies(self) -> np.ndarray:
        with self._lock:
            return self._window[: self._filled].copy()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: counts, rates, latency percentiles (ms) over the recent window."""
        lat = self.latencies()
        with self._lock:
            uptime = time.time() - self.started
            return {
                "uptime_s": uptime,
                "requests": self.requests,
                "ok": self.by_status.get(200, 0),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_error": dict(sorted(self.by_error.items())),
                "disconnects": self.disconnects,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "batches": self.batches,
                "mean_batch": self.batched_items / self.batches if self.batches else None,
                "max_batch": self.max_batch_seen,
                "max_queue": self.max_queue_seen,
                "latency_ms": percentiles(lat),
                "latency_window": int(lat.size),
                "_latencies": lat[-1024:].round(4).tolist(),  # raw sample, for merging replicas
            }


def merge_snapshots(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine replica snapshots: counters add up, percentiles come from the pooled latency samples."""
    if not snaps:
        return Metrics().snapshot()
    out: dict[str, Any] = {"replicas": len(snaps), "uptime_s": max(s["uptime_s"] for s in snaps)}
    for key in ("requests", "ok", "bytes_in", "bytes_out", "batches"):
        out[key] = sum(s[key] for s in snaps)
    out["disconnects"] = sum(s.get("disconnects", 0) for s in snaps)
    for key in ("by_status", "by_error"):
        total: Counter[str] = Counter()
        for s in snaps:
            total.update(s[key])
        out[key] = dict(sorted(total.items()))
    items = sum((s["mean_batch"] or 0) * s["batches"] for s in snaps)
    out["mean_batch"] = items / out["batches"] if out["batches"] else None
    out["max_batch"] = max(s["max_batch"] for s in snaps)
    out["max_queue"] = max(s["max_queue"] for s in snaps)
    pooled = [v for s in snaps for v in s["_latencies"]]
    out["latency_ms"] = percentiles(pooled)
    out["latency_window"] = len(pooled)
    return out
