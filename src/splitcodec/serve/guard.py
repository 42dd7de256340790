"""Connection caps and deadlines that idle or slow sockets cannot exhaust.

uvicorn alone lets a socket that trickles its request head hold a connection slot forever, and
``limit_concurrency`` then answers 503 to every real request.  :class:`ConnectionGuard` watches each
connection through a protocol subclass (:func:`guarded_protocol`):

* a connection waiting for a request head (just opened, or idle after a response) for more than
  ``head_timeout_s`` is closed, however slowly it trickles bytes (the header and idle timeout);
* at most ``max_per_client`` connections per client address and ``max_total`` in all; a new connection
  past a cap closes the longest-waiting connection that is not in the middle of a request (of that
  client for the per-client cap) — so idle sockets make room for working ones — and is refused only
  when every connection is busy with a request.

The body of a request has its own deadline in :mod:`splitcodec.serve.app`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from typing import Any

__all__ = ["ConnectionGuard", "guarded_protocol"]


class ConnectionGuard:
    """Tracks open connections; see the module docstring."""

    def __init__(self, max_total: int = 1024, max_per_client: int = 64, head_timeout_s: float = 5.0) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.head_timeout_s = head_timeout_s
        # protocol -> [client, waiting since], oldest first (a response moves its connection to the end)
        self._conns: OrderedDict[Any, list[Any]] = OrderedDict()
        self._per_client: Counter[str] = Counter()
        self._sweeper: asyncio.TimerHandle | None = None
        self.stats: Counter[str] = Counter()

    @staticmethod
    def _waiting(proto: Any) -> bool:
        """True when the connection is between requests (no request head received, or response sent)."""
        cycle = getattr(proto, "cycle", None)
        return cycle is None or cycle.response_complete

    def _oldest_waiting(self, client: str | None) -> Any:
        """The longest-waiting idle connection (of ``client``); the order makes this the first one met."""
        for proto, (who, _) in self._conns.items():
            if (client is None or who == client) and self._waiting(proto):
                return proto
        return None

    def _close(self, proto: Any, why: str) -> None:
        self.stats[why] += 1
        self.release(proto)
        transport = getattr(proto, "transport", None)
        if transport is not None:
            transport.abort()

    def admit(self, proto: Any, client: str) -> bool:
        """Account a new connection, making room by closing a waiting one; False: refuse it."""
        if self._per_client[client] >= self.max_per_client:
            victim = self._oldest_waiting(client)
            if victim is None:
                self.stats["refused_per_client"] += 1
                return False
            self._close(victim, "evicted_per_client")
        if len(self._conns) >= self.max_total:
            victim = self._oldest_waiting(None)
            if victim is None:
                self.stats["refused_total"] += 1
                return False
            self._close(victim, "evicted_total")
        self._conns[proto] = [client, time.monotonic()]
        self._per_client[client] += 1
        self.stats["accepted"] += 1
        if self._sweeper is None:
            self._schedule()
        return True

    def touch(self, proto: Any) -> None:
        """A response was sent: the connection waits for its next request head from now."""
        entry = self._conns.get(proto)
        if entry is not None:
            entry[1] = time.monotonic()
            self._conns.move_to_end(proto)

    def release(self, proto: Any) -> None:
        entry = self._conns.pop(proto, None)
        if entry is not None:
            self._per_client[entry[0]] -= 1
            if self._per_client[entry[0]] <= 0:
                del self._per_client[entry[0]]

    def sweep(self) -> None:
        """Close every connection that has waited for a request head longer than ``head_timeout_s``."""
        deadline = time.monotonic() - self.head_timeout_s
        for proto, (_, since) in list(self._conns.items()):
            if since < deadline and self._waiting(proto):
                self._close(proto, "head_timeouts")

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        period = max(0.05, min(1.0, self.head_timeout_s / 4))

        def tick() -> None:
            self.sweep()
            self._sweeper = loop.call_later(period, tick)

        self._sweeper = loop.call_later(period, tick)

    def snapshot(self) -> dict[str, int]:
        """Open connections and the counts of what the guard did."""
        return {"open": len(self._conns), **dict(self.stats)}


def guarded_protocol(base: type, guard: ConnectionGuard) -> type:
    """A subclass of uvicorn's HTTP protocol class ``base`` that reports to ``guard``."""

    class Guarded(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            if not guard.admit(self, str(peer[0]) if peer else "?"):
                transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            guard.release(self)
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            guard.touch(self)

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded
