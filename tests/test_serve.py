"""The edge→server runtime on loopback: answers, refusals, back-pressure, token, TLS, batching.

A tiny model (conv head, linear tail) keeps these fast; every server runs in a context manager that
stops it, on 127.0.0.1 only, and every load is a fixed number of requests.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import time

import pytest
import torch
from torch import nn

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

from splitcodec.codecs import get_codec  # noqa: E402
from splitcodec.serve import Batching, FeatureService, Metrics, ServeConfig, ServeError, merge_snapshots  # noqa: E402
from splitcodec.serve.batching import DynamicBatcher  # noqa: E402
from splitcodec.serve.client import EdgeClient  # noqa: E402
from splitcodec.serve.errors import Undecodable, WrongCodec  # noqa: E402
from splitcodec.serve.server import BackgroundServer  # noqa: E402
from splitcodec.serve.streaming import load_test, stream_dataset  # noqa: E402
from splitcodec.testing.faults import FAULT_KINDS, bad_streams  # noqa: E402

pytestmark = pytest.mark.network
SHAPE = (8, 6, 6)


class SlowTail(nn.Module):
    """A linear tail that takes ``delay`` seconds per call (to fill queues on purpose)."""

    def __init__(self, inner: nn.Module, delay: float) -> None:
        super().__init__()
        self.inner, self.delay = inner, delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.inner(x)


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    head = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU()).eval()
    tail = nn.Sequential(nn.Flatten(1), nn.Linear(8 * 6 * 6, 10)).eval()
    images = torch.randn(40, 1, 6, 6)
    with torch.no_grad():
        calib = head(torch.randn(16, 1, 6, 6))
    codec = get_codec("uniform", bits=6).fit(calib)
    return head, tail, images, codec


def _serve(tail: nn.Module, **opts) -> BackgroundServer:
    svc_kw = {k: opts.pop(k) for k in ("max_stream_bytes",) if k in opts}
    batching = Batching(**{k: opts.pop(k) for k in ("max_batch", "max_wait_ms", "max_queue") if k in opts})
    svc = FeatureService(tail, SHAPE, model_name="toy", split="relu", **svc_kw)
    return BackgroundServer(svc, ServeConfig(host="127.0.0.1", port=0, batching=batching, **opts))


def _local(head, tail, codec, x):
    """What the server must answer: tail(decode(encode(head(x))))."""
    with torch.no_grad():
        y = codec.decode(codec.encode(head(x), config="ref"))
        return tail(y)


def test_answers_equal_the_local_pipeline(toy):
    head, tail, images, codec = toy
    with _serve(tail) as srv, EdgeClient(srv.url, head=head, codec=codec) as edge:
        assert edge.health().body["feature_shape"] == list(SHAPE)
        ref = edge.register()
        assert ref == codec.config_ref.hex()
        report = edge._run(stream_dataset(edge, images, torch.zeros(len(images), dtype=torch.long), concurrency=8, register=False))
        assert report.ok == len(images) and report.kinds == {"ok": len(images)}
        for i, inf in enumerate(report.inferences):
            expected = _local(head, tail, codec, images[i : i + 1])[0]
            assert inf.prediction == int(expected.argmax())
            assert torch.allclose(torch.tensor(inf.output), expected, atol=1e-5)
            assert inf.stream_bytes == len(codec.encode(head(images[i : i + 1]).detach(), config="ref"))
        assert report.bytes_sent == sum(i.stream_bytes for i in report.inferences)
        metrics = edge.metrics().body
        assert metrics["ok"] == len(images) and metrics["bytes_in"] == report.bytes_sent
        assert metrics["latency_ms"]["p99"] >= metrics["latency_ms"]["p50"] > 0


def test_every_bad_stream_is_refused_and_the_server_keeps_serving(toy):
    head, tail, images, codec = toy
    cases = bad_streams(codec, SHAPE, max_stream_bytes=20_000)
    assert {c.kind for c in cases} == set(FAULT_KINDS)
    good = codec.encode(head(images[:1]).detach(), config="ref")
    with _serve(tail, max_stream_bytes=20_000) as srv, EdgeClient(srv.url) as edge:
        edge.register(codec.get_config())
        for case in cases:
            reply = edge.send(case.data)
            assert (reply.status, reply.kind) == (case.status, case.error), (case.kind, reply.body)
            assert reply.detail, f"{case.kind}: refusal without a message"
            assert edge.send(good).ok, f"server stopped answering after {case.kind}"
        assert edge.health().body["status"] == "ok"
        by_error = edge.metrics().body["by_error"]
        assert sum(by_error.values()) == len(cases)


def test_mixed_fault_load(toy):
    """A bounded mixed load (the benchmark runs 1,000): good ones right, bad ones refused, server alive."""
    head, tail, images, codec = toy
    cases = bad_streams(codec, SHAPE, max_stream_bytes=20_000)
    goods = [codec.encode(head(images[i : i + 1]).detach(), config="ref") for i in range(20)]
    expect = [int(_local(head, tail, codec, images[i : i + 1]).argmax()) for i in range(20)]
    plan = [("good", i) if k % 2 == 0 else ("bad", i) for k in range(120) for i in [k % 20 if k % 2 == 0 else k % len(cases)]]
    streams = [goods[i] if what == "good" else cases[i].data for what, i in plan]
    with _serve(tail, max_stream_bytes=20_000) as srv, EdgeClient(srv.url) as edge:
        edge.register(codec.get_config())
        report = edge._run(load_test(edge, streams, concurrency=16, time_limit_s=60))
        assert report.completed == len(plan)
        for (what, i), reply in zip(plan, report.replies):
            if what == "good":
                assert reply.ok and reply.body["class"] == expect[i]
            else:
                assert (reply.status, reply.kind) == (cases[i].status, cases[i].error)
        assert edge.health().ok


def test_bearer_token(toy):
    head, tail, images, codec = toy
    with _serve(tail, token="s3cret") as srv:
        with EdgeClient(srv.url, head=head, codec=codec) as anon:
            assert anon.health().ok  # liveness stays open
            for reply in (anon.metrics(), anon.send(b"SC")):
                assert reply.status == 401 and reply.kind == "unauthorized"
            with pytest.raises(Exception, match="401"):
                anon.register()
        with EdgeClient(srv.url, head=head, codec=codec, token="wrong") as bad:
            assert bad.infer(images[:1]).reply.status == 401
        with EdgeClient(srv.url, head=head, codec=codec, token="s3cret") as edge:
            edge.register()
            assert edge.infer(images[:1]).reply.ok
            assert edge.metrics().ok


def test_overload_gets_busy_not_an_unbounded_queue(toy):
    head, tail, images, codec = toy
    stream = codec.encode(head(images[:1]).detach(), config="ref")
    with _serve(SlowTail(tail, 0.03), max_queue=4, max_batch=2) as srv, EdgeClient(srv.url, connections=64) as edge:
        edge.register(codec.get_config())
        report = edge._run(load_test(edge, [stream] * 64, concurrency=64, time_limit_s=30))
        assert report.completed == 64
        assert set(report.kinds) == {"ok", "busy"} and report.kinds["busy"] > 0
        busy = next(r for r in report.replies if r.kind == "busy")
        assert busy.status == 503 and "retry" in busy.detail
        m = edge.metrics().body
        assert m["max_queue"] <= 4 and m["max_batch"] <= 2
        assert edge.send(stream).ok  # it recovers


def test_concurrent_requests_are_batched(toy):
    head, tail, images, codec = toy
    stream = codec.encode(head(images[:1]).detach(), config="ref")
    with _serve(SlowTail(tail, 0.02), max_batch=16) as srv, EdgeClient(srv.url) as edge:
        edge.register(codec.get_config())
        report = edge._run(load_test(edge, [stream] * 48, concurrency=16))
        assert report.kinds == {"ok": 48}
        assert max(r.body["timing"]["batch"] for r in report.replies) > 1
        assert edge.metrics().body["mean_batch"] > 1.5


def test_batcher_survives_a_failing_batch():
    calls = []

    def run(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return [i * 2 if i != 3 else Undecodable("no") for i in items]

    async def go():
        b = DynamicBatcher(run, Batching(max_batch=4))
        with pytest.raises(ServeError) as first:
            await b.submit(1)
        assert first.value.status == 500 and first.value.kind == "internal"
        assert "boom" not in first.value.message  # exception text stays in the server's log
        assert (await b.submit(2))[0] == 4
        with pytest.raises(ServeError, match="no"):
            await b.submit(3)
        await b.stop()

    asyncio.run(go())


def test_metrics_merge():
    a, b = Metrics(), Metrics()
    for v in (1.0, 2.0, 3.0):
        a.observe(200, v, 10, 5)
    b.observe(503, 100.0, 10, 5, error="busy")
    b.observe_batch(3, 7)
    merged = merge_snapshots([a.snapshot(), b.snapshot()])
    assert merged["requests"] == 4 and merged["ok"] == 3 and merged["bytes_in"] == 40
    assert merged["by_error"] == {"busy": 1} and merged["max_queue"] == 7
    assert merged["latency_ms"]["max"] == 100.0 and merged["latency_ms"]["p50"] == 2.5


def test_register_refuses_bad_configs(toy):
    _, tail, _, codec = toy
    svc = FeatureService(tail, SHAPE, allowed_codecs={"uniform"}, max_configs=1)
    with pytest.raises(WrongCodec) as e:
        svc.register({"id": "raw"})
    assert e.value.kind == "wrong_codec" and e.value.status == 422 and "not served here" in e.value.message
    from splitcodec.codecs import list_codecs

    images = [c for c in list_codecs() if get_codec(c).domain == "image"]
    if images:  # a codec of input pictures cannot decode features
        open_svc = FeatureService(tail, SHAPE)
        with pytest.raises(ServeError) as e:
            open_svc.register(get_codec(images[0]).get_config())
        assert e.value.kind == "wrong_codec" and "codes image" in e.value.message
    with pytest.raises(ServeError) as e:
        svc.register([1, 2])
    assert e.value.kind == "bad_config"
    with pytest.raises(ServeError) as e:
        svc.register({"id": "uniform", "bits": 99})
    assert e.value.kind == "wrong_codec"
    first = svc.register(codec.get_config())
    second = svc.register(get_codec("uniform", bits=3).get_config())  # a full store evicts, never refuses
    assert bytes.fromhex(second) in svc.store and bytes.fromhex(first) not in svc.store


def _self_signed(tmp_path):
    crypto = pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    _ = crypto
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "splitcodec-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_tls(toy, tmp_path):
    head, tail, images, codec = toy
    cert, key = _self_signed(tmp_path)
    with _serve(tail, tls_cert=cert, tls_key=key, token="t") as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        with EdgeClient(srv.url, head=head, codec=codec, cafile=cert, token="t") as edge:
            edge.register()
            assert edge.infer(images[:1]).prediction == int(_local(head, tail, codec, images[:1]).argmax())
        with EdgeClient(srv.url, head=head, codec=codec, token="t") as untrusted:  # system CAs only
            assert untrusted.health().kind == "connection"
        with EdgeClient(srv.url.replace("https", "http"), token="t") as plain:
            assert not plain.health().ok


def test_reply_for_a_dead_server_is_a_connection_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EdgeClient(f"http://127.0.0.1:{port}", timeout_s=5) as edge:
        reply = edge.health()
    assert reply.status == 0 and reply.kind == "connection"


def test_report_json_is_serialisable(toy):
    head, tail, images, codec = toy
    with _serve(tail) as srv, EdgeClient(srv.url, head=head, codec=codec) as edge:
        report = edge._run(stream_dataset(edge, images[:5], None, concurrency=2))
    assert report.top1 is None and report.ok == 5
    assert set(report.parts_ms) >= {"head_ms", "encode_ms", "network_ms", "decode_ms", "tail_ms"}
    json.dumps(report.summary())


def test_fuzzed_streams_get_an_answer_or_a_refusal(toy):
    """Whatever the bytes, parse + run_batch give an answer or a ServeError: never another exception."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    head, tail, images, codec = toy
    svc = FeatureService(tail, SHAPE, max_stream_bytes=5000)
    svc.register(codec.get_config())
    good = codec.encode(head(images[:1]).detach(), config="ref")
    from splitcodec.bitstream import pack, unpack

    frame = unpack(good)

    def repack(payload: bytes) -> bytes:  # a valid container around a damaged payload
        return pack(payload, frame.shape, frame.dtype, ref=frame.config_ref)

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(st.one_of(
        st.binary(max_size=300),
        st.tuples(st.integers(0, len(good) - 1), st.integers(1, 255)).map(
            lambda t: good[: t[0]] + bytes([good[t[0]] ^ t[1]]) + good[t[0] + 1 :]),
        st.integers(0, len(good)).map(lambda n: good[:n]),
        st.binary(max_size=400).map(repack),
        st.tuples(st.integers(0, len(frame.payload) - 1), st.integers(1, 255)).map(
            lambda t: repack(frame.payload[: t[0]] + bytes([frame.payload[t[0]] ^ t[1]]) + frame.payload[t[0] + 1 :])),
    ))
    def check(data: bytes) -> None:
        try:
            [out] = svc.run_batch([svc.parse(data)])
        except ServeError as err:
            assert 400 <= err.status < 500 and err.message
            return
        assert isinstance(out, ServeError) or len(out["output"]) == 10

    check()


def test_serve_config_is_checked_and_carries_the_batching():
    from splitcodec.errors import SplitcodecError

    with pytest.raises(SplitcodecError, match="TLS needs both"):
        ServeConfig(tls_cert="cert.pem")
    with pytest.raises(SplitcodecError, match="max_batch"):
        Batching(max_batch=0)
    b = DynamicBatcher(lambda items: items, Batching(max_batch=3, max_wait_ms=1.5, max_queue=5))
    assert (b.max_batch, b.max_wait_ms, b.max_queue) == (3, 1.5, 5)
    default = DynamicBatcher(lambda items: items)
    assert (default.max_batch, default.max_wait_ms, default.max_queue) == (32, 0.0, 256) == tuple(
        getattr(ServeConfig().batching, k) for k in ("max_batch", "max_wait_ms", "max_queue"))


def test_each_refusal_kind_is_a_type_with_its_http_status():
    from splitcodec.serve.errors import KINDS

    assert {kind: cls.status for kind, cls in KINDS.items()} == {
        "malformed": 400, "bad_config": 400, "undecodable": 400, "unauthorized": 401, "too_large": 413,
        "wrong_shape": 422, "wrong_dtype": 422, "wrong_codec": 422, "unknown_config": 422,
        "config_store_full": 507, "internal": 500, "busy": 503, "shutting_down": 503,
        "nonfinite_output": 422, "timeout": 408, "not_found": 404, "method_not_allowed": 405,
    }
    err = KINDS["wrong_shape"]("no")
    assert isinstance(err, ServeError) and err.to_json() == {"error": "wrong_shape", "status": 422, "detail": "no"}
