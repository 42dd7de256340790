"""``splitcodec serve`` (a child process, single or on Ray Serve) and ``splitcodec edge`` with a real model."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("aiohttp")

from splitcodec.cli import main  # noqa: E402
from splitcodec.codecs import get_codec  # noqa: E402
from splitcodec.errors import SplitcodecError  # noqa: E402
from splitcodec.serve.client import EdgeClient  # noqa: E402
from splitcodec.testing.faults import bad_streams  # noqa: E402
from splitcodec.testing.process import ServerProcess  # noqa: E402

pytestmark = pytest.mark.network


def _model() -> str:
    from splitcodec.models import load

    for name in ("ref-resnet", "ref-darknet"):
        try:
            load(name)
            return name
        except SplitcodecError:
            continue
    pytest.skip("no reference model weights here")


@pytest.fixture(scope="module")
def model() -> str:
    return _model()


@pytest.mark.slow
def test_serve_and_edge_commands(model, tmp_path, capsys):
    out = tmp_path / "edge.json"
    fitted = EdgeClient.for_model("http://unused", model, None, "uniform:bits=5", calibration_samples=16)
    config = tmp_path / "codec.json"
    config.write_text(json.dumps(fitted.codec.get_config()))
    args = ["--model", model, "--port", "0", "--token", "tok", "--codec-config", str(config), "--allow-codec", "uniform"]
    with ServerProcess(args) as server:
        from splitcodec.data import load_dataset

        x = load_dataset("fashion-mnist", "test").images[:1]
        with EdgeClient(server.url, head=fitted.head, codec=fitted.codec, token="tok") as edge:
            assert edge.infer(x).reply.ok  # the preloaded config: no registration needed
            raw = get_codec("raw")
            assert edge.send(raw.encode(fitted.head(x).detach(), config="inline")).kind == "wrong_codec"
        code = main(["edge", "--url", server.url, "--model", model, "--codec", "uniform:bits=6", "--samples", "24",
                     "--concurrency", "4", "--token", "tok", "--link", "20mbit,rtt=4ms", "--out", str(out)])
        text = capsys.readouterr().out
        assert code == 0, text
        assert "throughput" in text and "top-1" in text and "waiting" in text
        assert server.alive()
        code = main(["edge", "--url", server.url, "--model", model, "--samples", "2"])  # no token
        assert code == 2 and "401 unauthorized" in capsys.readouterr().err
    assert not server.alive()
    report = json.loads(out.read_text())
    assert report["ok"] == 24 and report["kinds"] == {"ok": 24}
    assert report["top1"] > 50 and report["link"].startswith("20 Mbit/s")
    assert report["latency_ms"]["p50"] >= 4  # at least the emulated round trip


@pytest.mark.slow
def test_serve_refuses_a_missing_model():
    with pytest.raises(SplitcodecError, match="did not start"):
        ServerProcess(["--model", "no-such-model", "--port", "0"], startup_timeout=60).start()


@pytest.mark.slow
@pytest.mark.ray
def test_ray_serve_two_replicas(model):
    """The same app on 2 Ray Serve replicas: answers, refusals, config shared, metrics pooled."""
    pytest.importorskip("ray")
    with ServerProcess(["--model", model, "--port", "0", "--ray", "--replicas", "2", "--ray-cpus", "2"],
                       startup_timeout=240) as server:
        edge = EdgeClient.for_model(server.url, model, None, "uniform:bits=4", calibration_samples=16)
        from splitcodec.data import load_dataset

        data = load_dataset("fashion-mnist", "test").subset(16)
        with edge:
            edge.register()
            answers = [edge.infer(data.images[i : i + 1]) for i in range(16)]
            assert all(a.reply.ok for a in answers)
            assert sum(a.prediction == int(y) for a, y in zip(answers, data.labels)) >= 10
            shape = tuple(edge.health().body["feature_shape"])
            for case in bad_streams(edge.codec, shape, max_stream_bytes=1 << 22):
                if case.kind == "oversized":
                    continue  # 4 MiB: slow through Ray's proxy, covered by the single-process tests
                reply = edge.send(case.data)
                assert (reply.status, reply.kind) == (case.status, case.error), case.kind
            for _ in range(20):  # replicas push their counters every 0.5 s
                m = edge.metrics().body
                if m["replicas"] == 2 and m["requests"] >= 16 + 9:
                    break
                time.sleep(0.25)
            assert m["replicas"] == 2 and m["requests"] >= 16 + 9, m
            assert m["by_error"]["malformed"] >= 3
            assert edge.health().ok


def test_serve_connection_options_reach_the_config(monkeypatch):
    import splitcodec.cli.serve as serve_cli

    seen = []
    monkeypatch.setattr(serve_cli, "_serve_local", lambda config, configs, announce: seen.append(config))
    argv = ["serve", "--max-connections", "50", "--max-connections-per-client", "3", "--head-timeout", "1.5",
            "--body-timeout", "2.5"]
    assert main(argv) == 0
    c = seen[0]
    assert (c.max_connections, c.max_connections_per_client, c.head_timeout_s, c.body_timeout_s) == (50, 3, 1.5, 2.5)
