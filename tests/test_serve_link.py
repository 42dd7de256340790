"""Link emulation: the in-process shaper's timing, and tc shaping in a network namespace (root only)."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch
from torch import nn

from splitcodec.errors import SplitcodecError
from splitcodec.testing.link import LinkSpec, ShapingProxy
from splitcodec.testing.netns import NetnsLink, kernel_qdiscs

pytestmark = pytest.mark.network


def test_link_spec_parse():
    s = LinkSpec.parse("10mbit,rtt=20ms,loss=0.5%")
    assert (s.bandwidth_bps, s.rtt_ms, s.loss) == (10e6, 20.0, 0.005)
    assert LinkSpec.parse("500kbit").bandwidth_bps == 5e5
    assert LinkSpec.parse("rtt=0.1s").rtt_ms == 100.0 and LinkSpec.parse("none") == LinkSpec()
    assert LinkSpec(1e6, 10).predict_ms(1000, 250) == pytest.approx(10 + 1250 * 8 / 1e3)
    for bad in ("fast", "10mbit,jitter=3ms", "loss=2", "rtt=-1ms"):
        with pytest.raises(SplitcodecError):
            LinkSpec.parse(bad)


def _sink_server() -> tuple[socket.socket, threading.Thread]:
    """Reads ``n`` (8-byte header) bytes, answers one byte; loops until the client closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while True:
                head = conn.recv(8, socket.MSG_WAITALL)
                if len(head) < 8:
                    return
                n = int.from_bytes(head, "little")
                got = 0
                while got < n:
                    got += len(conn.recv(min(65536, n - got)))
                conn.sendall(b"k")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def _exchange(port: int, host: str, sizes: list[int], repeats: int = 1) -> list[float]:
    """Milliseconds per request/answer of each size; the fastest of ``repeats`` tries (one try alone can
    stall for a scheduler tick on a busy 2-core machine)."""
    out = []
    with _no_gc(), socket.create_connection((host, port), timeout=10) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for n in sizes:
            tries = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                c.sendall(n.to_bytes(8, "little") + bytes(n))
                assert c.recv(1) == b"k"
                tries.append(1e3 * (time.perf_counter() - t0))
            out.append(min(tries))
    return out


@contextlib.contextmanager
def _no_gc():
    """No garbage collection while timing (as ``timeit`` does): late in the suite the heap is large and
    a full collection pauses the test and the proxy thread alike for tens of milliseconds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_shaping_proxy_delays_like_the_model():
    spec = LinkSpec(bandwidth_bps=2e6, rtt_ms=20)
    srv, _ = _sink_server()
    with srv, ShapingProxy(spec, srv.getsockname()) as proxy:
        sizes = [200, 5_000, 50_000]
        measured = _exchange(proxy.port, "127.0.0.1", sizes, repeats=3)
        assert proxy.bytes_up == 3 * (sum(sizes) + 8 * len(sizes)) and proxy.bytes_down == 3 * len(sizes)
    # never faster than the link allows; slower only by scheduling noise (2 shared cores, other jobs)
    for n, ms in zip(sizes, measured):
        predicted = spec.predict_ms(n + 8, 1)
        assert predicted * 0.95 - 1 <= ms <= predicted * 1.5 + 25, (n, ms, predicted)


def test_modelled_loss_costs_retransmission_timeouts():
    spec = LinkSpec(rtt_ms=2, loss=0.2, rto_ms=80)
    srv, _ = _sink_server()
    with srv, ShapingProxy(spec, srv.getsockname(), seed=1) as proxy:
        ms = _exchange(proxy.port, "127.0.0.1", [100] * 20)
    slow = sum(m > 50 for m in ms)
    # a request or its answer is lost with p = 1 - 0.8² = 0.36: about 7 of 20 exchanges pay one RTO
    assert 2 <= slow <= 14, ms
    assert all(m < 2 + 2 * 80 + 40 for m in ms)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


@needs_root
def test_netns_link_shapes_in_the_kernel():
    qd = kernel_qdiscs()
    if qd["netem"] is not None and qd["tbf"] is not None:
        pytest.skip(f"kernel has neither netem ({qd['netem']}) nor tbf ({qd['tbf']})")
    spec = LinkSpec(bandwidth_bps=8e6, rtt_ms=10)
    code = (
        "import socket\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('{NetnsLink.NS_ADDR}', 9123)); s.listen(); print('ready', flush=True)\n"
        "c,_=s.accept()\n"
        "while True:\n"
        "    h=c.recv(8, socket.MSG_WAITALL)\n"
        "    if len(h)<8: break\n"
        "    n=int.from_bytes(h,'little'); g=0\n"
        "    while g<n: g+=len(c.recv(min(65536,n-g)))\n"
        "    c.sendall(b'k')\n"
    )
    with NetnsLink(spec, name=f"sctest{os.getpid() % 10000}") as link:
        assert link.mode in ("netem", "tbf+proxy")
        proc = subprocess.Popen([*link.prefix, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().startswith("ready")
            url = link.front(f"http://{link.server_host}:9123")
            host, port = url.split("//")[1].split(":")
            measured = _exchange(int(port), host, [100, 100_000], repeats=3)
        finally:
            proc.kill()
            proc.wait(5)
        name = link.name
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    small, big = measured
    assert 9 <= small <= 10 + 40, measured
    predicted = spec.predict_ms(100_008, 1)  # 110 ms
    assert predicted * 0.9 <= big <= predicted * 1.5 + 30, measured


def test_edge_client_through_the_shaper():
    from splitcodec.codecs import get_codec
    from splitcodec.serve import FeatureService
    from splitcodec.serve.client import EdgeClient
    from splitcodec.serve.config import ServeConfig
    from splitcodec.serve.server import BackgroundServer

    pytest.importorskip("uvicorn")
    tail = nn.Sequential(nn.Flatten(1), nn.Linear(4 * 8 * 8, 3)).eval()
    codec = get_codec("uniform", bits=8).fit(torch.rand(4, 4, 8, 8))
    spec = LinkSpec(bandwidth_bps=1e6, rtt_ms=30)
    with BackgroundServer(FeatureService(tail, (4, 8, 8)), ServeConfig(port=0)) as srv:
        with ShapingProxy(spec, ("127.0.0.1", int(srv.url.rsplit(":", 1)[1]))) as proxy:
            with EdgeClient(proxy.url(srv.url), head=nn.Identity(), codec=codec) as edge:
                edge.register()
                # the fastest of three requests: one request alone can stall for a scheduler tick on a
                # busy 2-core machine (a fresh-clone run once saw 434 ms for a 43 ms prediction)
                runs = []
                with _no_gc():
                    for _ in range(3):
                        up0, down0 = proxy.bytes_up, proxy.bytes_down
                        inf = edge.infer(torch.rand(1, 4, 8, 8))
                        runs.append((inf, proxy.bytes_up - up0, proxy.bytes_down - down0))
    for inf, up, _ in runs:
        assert inf.reply.ok and up > inf.stream_bytes
    inf, up, down = min(runs, key=lambda run: run[0].reply.latency_ms)
    predicted = spec.predict_ms(up, down) + inf.timing["server_ms"]
    assert predicted * 0.9 <= inf.reply.latency_ms <= predicted * 1.5 + 25
