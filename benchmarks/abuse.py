"""Replay the attacks of issue 16 against a live ``splitcodec serve`` on 127.0.0.1 while good clients work.

Each attack runs for ``--seconds`` while ``--good`` good clients (from 127.0.0.1) send valid raw streams
back to back (a new connection each, 15 s deadline, retrying after a 503 ``busy`` as its Retry-After
says).  Attackers connect from other loopback addresses (127.0.0.2 …), as other devices would.
Attacking sockets reconnect as soon as the server closes them, so the pressure lasts the whole attack.
Everything is bounded: fixed socket counts, fixed durations; the server is stopped at the end.

    python benchmarks/abuse.py                       # writes benchmarks/results/abuse.json
    python benchmarks/abuse.py --scale 0.5 --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

from splitcodec.bitstream import pack, write_varint
from splitcodec.testing.mutate import recrc
from splitcodec.testing.process import ServerProcess

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "abuse.json"


async def http(port: int, method: str, path: str, body: bytes = b"", *, src: str = "127.0.0.1",
               timeout: float = 15.0, content_type: str = "application/octet-stream") -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), timeout)
    try:
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.partition(b"\r\n\r\n")[2]


class Good:
    """Good clients: valid streams, counted as answered correctly when a 200 carries the outputs."""

    def __init__(self, port: int, stream: bytes) -> None:
        self.port, self.stream = port, stream
        self.ok = self.total = 0

    async def one(self) -> None:
        deadline = time.monotonic() + 15
        self.total += 1
        while time.monotonic() < deadline:
            try:
                status, body = await http(self.port, "POST", "/v1/predict", self.stream,
                                          timeout=max(deadline - time.monotonic(), 0.1))
            except (OSError, asyncio.TimeoutError, IndexError, ValueError):
                await asyncio.sleep(0.2)
                continue
            if status == 503:
                await asyncio.sleep(1.0)
                continue
            if status == 200 and "output" in json.loads(body):
                self.ok += 1
            return

    async def run(self, clients: int, stop: asyncio.Event) -> None:
        async def loop() -> None:
            while not stop.is_set():
                await self.one()

        await asyncio.gather(*(loop() for _ in range(clients)))


def _src(i: int) -> str:
    return f"127.0.0.{2 + i % 200}"


async def _hold(port: int, src: str, stop: asyncio.Event, trickle: bytes | None, body: bool = False) -> None:
    """One attacking socket: idle, or trickling a request head (or body) a byte every 0.5 s; when the
    server closes it, it reconnects at once, until stop."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            if body:
                writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            elif trickle:  # a valid request line, then header bytes one at a time, never the blank line
                writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
            sent = 0
            while not stop.is_set() and not reader.at_eof():
                if trickle:
                    writer.write(trickle[sent % len(trickle) : sent % len(trickle) + 1])
                    sent += 1
                    await writer.drain()
                try:  # notice the server closing us
                    if await asyncio.wait_for(reader.read(4096), 0.5) == b"":
                        break
                except asyncio.TimeoutError:
                    pass
        except (OSError, ConnectionError):
            pass
        finally:
            writer.close()
        await asyncio.sleep(0.05)


async def attack_sockets(port: int, n: int, stop: asyncio.Event, trickle: bytes | None, body: bool, sources: int) -> None:
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(_hold(port, _src(i % sources), stop, trickle, body)))
        if i % 50 == 49:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)


async def attack_disconnect(port: int, n: int, stop: asyncio.Event) -> None:
    """Clients that send half a body and vanish."""
    i = 0
    while not stop.is_set() and i < n:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(_src(i), 0))
            writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + bytes(10000))
            await writer.drain()
            writer.transport.abort()
        except OSError:
            pass
        i += 1
        await asyncio.sleep(0.005)


async def attack_requests(port: int, bodies: list[tuple[str, bytes]], n: int, stop: asyncio.Event,
                          concurrency: int, statuses: dict[int, int]) -> None:
    """Bad requests (bombs, hostile configs, bursts) ``n`` in all, ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)
    rng = random.Random(0)

    async def one(i: int) -> None:
        async with sem:
            if stop.is_set():
                return
            path, body = rng.choice(bodies)
            try:
                status, _ = await http(port, "POST", path, body, src=_src(i), timeout=15)
            except (OSError, asyncio.TimeoutError, IndexError, ValueError):
                status = 0
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(i) for i in range(n)))


def bombs(shape: tuple[int, ...]) -> list[tuple[str, bytes]]:
    """Hostile streams and configs of the issue (decompression bombs, parser attacks)."""
    cfg = {"id": "uniform", "bits": 8}
    text = lambda t: recrc(b"SC\x10" + write_varint(len(t)) + t + b"\x04\x01\x01\x01\x01")  # noqa: E731
    return [
        ("/v1/predict", pack(bytes(200), (0, 8, 30000, 30000), "float32", config=cfg)),
        ("/v1/predict", pack(bytes(200), (1, 0, *shape[1:]), "float32", config=cfg)),
        ("/v1/predict", pack(bytes(171), (1, *shape), "float32", config=cfg)),
        ("/v1/predict", text(b"[" * 5000 + b"]" * 5000)),
        ("/v1/predict", text(b'{"id":"uniform","bits":' + b"9" * 5000 + b"}")),
        ("/v1/predict", text(b'{"id":"lightweight"}')),
        ("/v1/predict", pack(np.full((1, *shape), 3e38, np.float32).tobytes(), (1, *shape), "float32",
                             config={"id": "raw", "dtype": "float32"})),
        ("/v1/configs", b'{"id":"uniform","bits":NaN}'),
        ("/v1/configs", b'{"id":"uniform","bits":1e999}'),
        ("/v1/configs", b"[" * 100000),
    ]


def config_flood(n: int) -> list[tuple[str, bytes]]:
    """Distinct valid configs (uniform tables), as one client filling the store would send."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        counts = rng.integers(1, 200, 16)
        counts[0] += (1 << 16) - counts.sum()
        out.append(("/v1/configs", json.dumps({"id": "uniform", "bits": 4, "state": {"counts": counts.tolist()}}).encode()))
    return out


async def run_attack(name: str, port: int, stream: bytes, make: Callable[[asyncio.Event], Awaitable[Any]],
                     seconds: float, good_clients: int) -> dict[str, Any]:
    stop = asyncio.Event()
    good = Good(port, stream)
    attack = asyncio.create_task(make(stop))
    await asyncio.sleep(1.0)  # let the attack build up before measuring
    goods = asyncio.create_task(good.run(good_clients, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(asyncio.gather(attack, goods, return_exceptions=True), 60)
    return {"name": name, "good_requests_ok": good.ok, "good_requests_total": good.total}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    s = args.scale
    result: dict[str, Any] = {"meta": {"scale": s, "seconds": args.seconds, "good_clients": args.good}, "attacks": []}
    with ServerProcess(["--model", args.model, "--port", "0"]) as server:
        port = int(server.url.rsplit(":", 1)[1])
        health = json.loads((await http(port, "GET", "/healthz"))[1])
        shape = tuple(health["feature_shape"])
        stream = pack(np.zeros((1, *shape), "<f4").tobytes(), (1, *shape), "float32", config={"id": "raw", "dtype": "float32"})
        statuses: dict[int, int] = {}
        attacks = {
            "slowloris_headers": lambda st: attack_sockets(port, int(1100 * s), st, b"X-Pad: a\r\n", False, sources=20),
            "idle_sockets": lambda st: attack_sockets(port, int(1100 * s), st, None, False, sources=20),
            "slow_body": lambda st: attack_sockets(port, int(300 * s), st, b"\0", True, sources=3),
            "disconnect_mid_body": lambda st: attack_disconnect(port, int(2000 * s), st),
            "burst_1500": lambda st: attack_requests(port, [("/v1/predict", stream)], int(1500 * s), st, int(1500 * s), statuses),
            "bombs_and_hostile_configs": lambda st: attack_requests(port, bombs(shape), int(2000 * s), st, 16, statuses),
            "config_flood": lambda st: attack_requests(port, config_flood(int(1000 * s)), int(1000 * s), st, 8, statuses),
        }
        for name, make in attacks.items():
            if args.attacks and name not in args.attacks.split(","):
                continue
            statuses.clear()
            row = await run_attack(name, port, stream, make, args.seconds, args.good)
            row["server_alive"] = server.alive() and (await http(port, "GET", "/healthz"))[0] == 200
            row["connections"] = json.loads((await http(port, "GET", "/metrics"))[1]).get("connections")
            if statuses:
                row["attack_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
            print(json.dumps(row), flush=True)
            result["attacks"].append(row)
        metrics = json.loads((await http(port, "GET", "/metrics"))[1])
        result["server_metrics"] = {k: metrics.get(k) for k in ("requests", "by_status", "by_error", "disconnects", "connections")}
        result["server_log_tracebacks"] = server.output.count("Traceback")
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="ref-resnet")
    ap.add_argument("--scale", type=float, default=1.0, help="attack sizes relative to the issue's (1100 sockets, 1500 burst)")
    ap.add_argument("--seconds", type=float, default=8.0, help="how long each attack runs while good clients work")
    ap.add_argument("--good", type=int, default=4, help="concurrent good clients")
    ap.add_argument("--attacks", default="", help="comma-separated attack names (default: all)")
    args = ap.parse_args(argv)
    result = asyncio.run(main_async(args))
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    worst = min(a["good_requests_ok"] / max(a["good_requests_total"], 1) for a in result["attacks"])
    print(f"worst attack: {worst:.1%} good requests answered; tracebacks in server log: {result['server_log_tracebacks']}")


if __name__ == "__main__":
    main()
