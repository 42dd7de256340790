"""The server against hostile clients: connection caps and deadlines, disconnects, error bodies, configs."""

from __future__ import annotations

import json
import socket
import time
from types import SimpleNamespace

import pytest
import torch
from torch import nn

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from splitcodec.bitstream import pack  # noqa: E402
from splitcodec.codecs import get_codec  # noqa: E402
from splitcodec.errors import UnknownConfigError  # noqa: E402
from splitcodec.serve import FeatureService, ServeConfig  # noqa: E402
from splitcodec.serve.configs import ConfigCache  # noqa: E402
from splitcodec.serve.errors import NonFiniteOutput  # noqa: E402
from splitcodec.serve.guard import ConnectionGuard  # noqa: E402
from splitcodec.serve.server import BackgroundServer  # noqa: E402

SHAPE = (2, 3)


class _Proto:
    """A stand-in for uvicorn's protocol: ``cycle`` None means waiting for a request head."""

    def __init__(self, busy: bool = False) -> None:
        self.cycle = SimpleNamespace(response_complete=False) if busy else None
        self.transport = SimpleNamespace(aborted=False)
        self.transport.abort = lambda: setattr(self.transport, "aborted", True)


def test_guard_evicts_the_longest_waiting_connection_not_a_busy_one():
    guard = ConnectionGuard(max_total=3, max_per_client=2, head_timeout_s=60)
    busy, idle, other = _Proto(busy=True), _Proto(), _Proto()
    assert guard.admit(busy, "a") and guard.admit(idle, "a") and guard.admit(other, "b")
    newcomer = _Proto()
    assert guard.admit(newcomer, "a")  # "a" at its cap: its idle socket goes, not the busy one
    assert idle.transport.aborted and not busy.transport.aborted
    assert guard.admit(_Proto(), "c")  # total cap: the longest-waiting socket of anyone goes
    assert other.transport.aborted
    assert guard.snapshot()["open"] == 3


def test_guard_refuses_only_when_every_connection_is_busy():
    guard = ConnectionGuard(max_total=2, max_per_client=10, head_timeout_s=60)
    assert guard.admit(_Proto(busy=True), "a") and guard.admit(_Proto(busy=True), "b")
    assert not guard.admit(_Proto(), "c")
    assert guard.stats["refused_total"] == 1


def test_guard_sweep_closes_sockets_that_never_finish_a_head():
    guard = ConnectionGuard(head_timeout_s=0.05)
    slow, working = _Proto(), _Proto(busy=True)
    guard.admit(slow, "a")
    guard.admit(working, "a")
    time.sleep(0.1)
    guard.sweep()
    assert slow.transport.aborted and not working.transport.aborted
    assert guard.stats["head_timeouts"] == 1


def test_config_cache_is_lru_per_owner_and_in_total():
    codecs = [get_codec("uniform", bits=b) for b in range(1, 8)]
    cache = ConfigCache(max_total=4, max_per_owner=2)
    refs = [cache.add(c, "flood") for c in codecs[:5]]
    assert len(cache) == 2 and refs[3] in cache and refs[4] in cache  # the flooder only evicts its own
    mine = cache.add(codecs[5], "me")
    cache.get(refs[3])  # recently used
    cache.add(codecs[6], "third")
    assert mine in cache and len(cache) == 4
    cache.add(codecs[0], "fourth")  # total cap: the least recently used of anyone (refs[4]) goes
    assert refs[4] not in cache and refs[3] in cache and mine in cache
    with pytest.raises(UnknownConfigError):
        cache.get(refs[4])


def test_nonfinite_model_outputs_are_a_typed_error():
    class Overflow(nn.Module):
        def forward(self, x):
            return x.flatten(1) * torch.tensor(float("inf"))

    svc = FeatureService(Overflow(), SHAPE)
    codec = get_codec("raw")
    ok = svc.parse(codec.encode(torch.zeros(1, *SHAPE) + 1))
    [res] = svc.run_batch([ok])
    assert isinstance(res, NonFiniteOutput) and res.kind == "nonfinite_output"


def _raw_request(port: int, data: bytes, *, read: bool = True, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _status_and_json(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.fixture(scope="module")
def server():
    svc = FeatureService(nn.Flatten(1), SHAPE, model_name="toy", split="x")
    opts = ServeConfig(port=0, head_timeout_s=0.5, body_timeout_s=0.5, max_connections=64, max_connections_per_client=32)
    with BackgroundServer(svc, opts) as srv:
        yield srv, int(srv.url.rsplit(":", 1)[1])


def _metrics(port: int) -> dict:
    return _status_and_json(_raw_request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[1]


@pytest.mark.network
def test_live_server_refusals_are_json_with_a_kind(server):
    _, port = server
    good = pack(torch.ones(1, *SHAPE).numpy().tobytes(), (1, *SHAPE), "float32", config={"id": "raw", "dtype": "float32"})
    assert _status_and_json(_raw_request(port, _post("/v1/predict", good)))[0] == 200
    status, body = _status_and_json(_raw_request(port, _post("/v1/configs", b'{"id":"uniform","bits":NaN}')))
    assert (status, body["error"]) == (400, "bad_config")
    status, body = _status_and_json(_raw_request(port, _post("/v1/configs", b"[" * 5000)))
    assert (status, body["error"]) == (400, "bad_config")
    status, body = _status_and_json(_raw_request(port, b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert (status, body["error"]) == (404, "not_found")
    status, body = _status_and_json(_raw_request(port, b"GET /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert (status, body["error"]) == (405, "method_not_allowed")


@pytest.mark.network
def test_live_server_closes_slow_heads_and_times_out_slow_bodies(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\n")  # a head that never ends
        t0 = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - t0 < 3
    reply = _raw_request(port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + bytes(10))
    status, body = _status_and_json(reply)
    assert (status, body["error"]) == (408, "timeout")
    assert _metrics(port)["connections"]["head_timeouts"] >= 1


@pytest.mark.network
def test_live_server_counts_disconnects_not_errors(server):
    srv, port = server
    before = _metrics(port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + bytes(10))
        time.sleep(0.1)
    time.sleep(0.3)
    after = _metrics(port)
    assert after["disconnects"] == before["disconnects"] + 1
    assert after["by_status"].get("500", 0) == before["by_status"].get("500", 0)
