"""Link emulation between edge and server: bandwidth, round-trip time and loss.

Two ways, the same :class:`LinkSpec`:

* :class:`~splitcodec.testing.netns.NetnsLink` (root only): the server runs in its own network namespace joined to this one by a
  veth pair (link-local addresses 169.254.77.1/.2, nothing routed), and ``tc`` shapes both ends.  With
  the kernel's ``netem`` qdisc all three parameters are real (``netem delay rate loss``).  Where the
  kernel has no netem (``Specified qdisc kind is unknown``) but has ``tbf``, the bandwidth is shaped by
  the kernel's token bucket and the delay (and loss) by a :class:`ShapingProxy` in front of the veth;
  :attr:`NetnsLink.mode` says which happened.
* :class:`ShapingProxy` (anywhere): an in-process TCP relay on 127.0.0.1.  Each direction is a FIFO
  link: a segment leaves after the previous one has finished (``size · 8 / bandwidth``) and arrives
  ``rtt / 2`` later.  Loss is *modelled*: TCP cannot lose bytes, so a lost segment (probability
  ``loss`` each, 1448-byte segments) arrives one retransmission timeout (``rto_ms``) later, holding
  back the segments behind it, as TCP's in-order delivery does.

:meth:`LinkSpec.predict_ms` is the latency model of such a link: ``bytes · 8 / bandwidth + rtt``.
:class:`NetnsLink` is in :mod:`splitcodec.testing.netns`.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from splitcodec.errors import SplitcodecError

__all__ = ["LinkSpec", "ShapingProxy"]

MSS = 1448
TBF_BURST = 1600  # bytes: the smallest bucket that passes a 1500-byte-MTU Ethernet frame
_UNITS = {"": 1, "bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class LinkSpec:
    """A symmetric link: ``bandwidth_bps`` each way (None: unlimited), round-trip time, segment loss rate."""

    bandwidth_bps: float | None = None
    rtt_ms: float = 0.0
    loss: float = 0.0
    rto_ms: float = 200.0

    def __post_init__(self) -> None:
        if self.bandwidth_bps is not None and self.bandwidth_bps <= 0:
            raise SplitcodecError(f"link bandwidth must be positive, got {self.bandwidth_bps}")
        if self.rtt_ms < 0 or not 0 <= self.loss < 1 or self.rto_ms < 0:
            raise SplitcodecError(f"bad link: rtt {self.rtt_ms} ms, loss {self.loss} (0 <= loss < 1)")

    @classmethod
    def parse(cls, text: str) -> "LinkSpec":
        """``"10mbit"``, ``"10mbit,rtt=20ms,loss=0.5%"``, ``"rtt=5ms"``, ``"none"``."""
        spec: dict[str, Any] = {}
        for part in (p.strip() for p in text.lower().split(",")):
            if not part or part == "none":
                continue
            key, _, value = part.partition("=") if "=" in part else ("bandwidth", "", part)
            if key in ("bandwidth", "bw", "rate"):
                m = re.fullmatch(r"([0-9.]+)\s*([kmg]?(?:bit)?)(?:/s|ps)?", value)
                if not m:
                    raise SplitcodecError(f"bad bandwidth {value!r}: use e.g. 10mbit, 500kbit")
                spec["bandwidth_bps"] = float(m.group(1)) * _UNITS[m.group(2)]
            elif key in ("rtt", "rto"):
                m = re.fullmatch(r"([0-9.]+)\s*(ms|s)?", value)
                if not m:
                    raise SplitcodecError(f"bad {key} {value!r}: use e.g. 20ms")
                spec[f"{key}_ms"] = float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)
            elif key == "loss":
                pct = value.endswith("%")
                try:
                    spec["loss"] = float(value.rstrip("%")) / (100.0 if pct else 1.0)
                except ValueError:
                    raise SplitcodecError(f"bad loss {value!r}: use e.g. 0.5% or 0.005") from None
            else:
                raise SplitcodecError(f"unknown link parameter {key!r} (bandwidth, rtt, loss, rto)")
        return cls(**spec)

    @property
    def label(self) -> str:
        bw = "unlimited" if self.bandwidth_bps is None else f"{self.bandwidth_bps / 1e6:g} Mbit/s"
        loss = f", loss {self.loss:.2%}" if self.loss else ""
        return f"{bw}, rtt {self.rtt_ms:g} ms{loss}"

    def transfer_ms(self, nbytes: int | float) -> float:
        """Serialisation time of ``nbytes`` on this link."""
        return 0.0 if self.bandwidth_bps is None else nbytes * 8e3 / self.bandwidth_bps

    def predict_ms(self, bytes_up: float, bytes_down: float = 0.0) -> float:
        """Network part of one request/answer: ``(up + down) · 8 / bandwidth + rtt`` (no loss)."""
        return self.transfer_ms(bytes_up + bytes_down) + self.rtt_ms


# --- the portable, in-process shaper --------------------------------------------------------------


class _Direction:
    """One direction of the link: serialise, delay, deliver in order."""

    def __init__(self, spec: LinkSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.free_at = 0.0
        self.last_arrival = 0.0
        self.bytes = 0

    def schedule(self, now: float, size: int) -> float:
        """Arrival time (loop clock, s) of a segment of ``size`` bytes handed to the link at ``now``."""
        start = max(now, self.free_at)
        self.free_at = start + self.spec.transfer_ms(size) / 1e3
        arrival = self.free_at + self.spec.rtt_ms / 2e3
        if self.spec.loss and self.rng.random() < self.spec.loss:
            arrival += self.spec.rto_ms / 1e3
        self.last_arrival = max(arrival, self.last_arrival)  # in-order delivery
        self.bytes += size
        return self.last_arrival


class ShapingProxy:
    """A TCP relay on ``listen_host`` that shapes traffic to ``upstream`` like :class:`LinkSpec` says.

    Runs its own event loop on a thread; a context manager.  ``url(u)`` rewrites a server URL to go
    through the proxy.  ``bytes_up``/``bytes_down`` count the bytes relayed (HTTP headers included).
    """

    def __init__(self, spec: LinkSpec, upstream: tuple[str, int], *, listen_host: str = "127.0.0.1", seed: int = 0) -> None:
        self.spec = spec
        self.upstream = upstream
        self.listen_host = listen_host
        self.rng = random.Random(seed)
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def url(self, server_url: str) -> str:
        parts = urlsplit(server_url)
        return urlunsplit((parts.scheme, f"{self.listen_host}:{self.port}", parts.path, parts.query, parts.fragment))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Direction, up: bool) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    break
                when, data = item
                delay = when - loop.time()
                if delay > 0.0002:
                    await asyncio.sleep(delay)
                writer.write(data)
                # Segments due within the timer's resolution (~1 ms) go out now, not one sleep later each.
                while not queue.empty() and queue._queue[0] is not None and queue._queue[0][0] <= loop.time() + 0.001:  # type: ignore[attr-defined]
                    writer.write(queue.get_nowait()[1])  # type: ignore[index]
                if queue.empty():
                    await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        task = loop.create_task(deliver())
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                now = loop.time()
                for i in range(0, len(data), MSS):
                    seg = data[i : i + MSS]
                    queue.put_nowait((link.schedule(now, len(seg)), seg))
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait(None)
            try:
                await task
            except (ConnectionError, OSError):
                pass

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            c_writer.close()
            return
        for w in (c_writer, s_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = _Direction(self.spec, self.rng), _Direction(self.spec, self.rng)
        try:
            await asyncio.gather(self._pump(c_reader, s_writer, up, True), self._pump(s_reader, c_writer, down, False))
        finally:
            for w in (c_writer, s_writer):
                w.close()

    def start(self) -> "ShapingProxy":
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def main() -> None:
                def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    t = loop.create_task(self._handle(r, w))
                    self._tasks.add(t)
                    t.add_done_callback(self._tasks.discard)

                self._server = await asyncio.start_server(on_conn, self.listen_host, 0)
                self.port = self._server.sockets[0].getsockname()[1]

            try:
                loop.run_until_complete(main())
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="splitcodec-link", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors or not self.port:
            raise SplitcodecError(f"link emulator did not start: {errors[0] if errors else 'timeout'}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._thread is not None:
            if self._server is not None:
                loop.call_soon_threadsafe(self._server.close)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> "ShapingProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
