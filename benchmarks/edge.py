"""Edge-package benchmark: the exported package (onnxruntime + numpy) vs the PyTorch path, as
``benchmarks/results/edge.json``.

Per model (default split) and codec: the package is written by :func:`splitcodec.edge.export_package`
and the PyTorch path is :meth:`EdgeClient.for_model` (head module + the same codec fitted the same
way).  On each test image, alone and on one thread, both paths run head + encode (alternating which
goes first); the record holds the fraction of byte-identical streams, the fraction of identical server
predictions (each stream decoded with the library and run through the tail), and the median head +
encode times.  Also: peak RSS of each path in a fresh process, the size of a fresh venv holding only
``splitcodec[edge]`` vs the full venv, and an end-to-end run (package → ``splitcodec serve`` on
127.0.0.1).

Usage::

    nice python benchmarks/edge.py                          # full 10k test set, ~15 min here
    python benchmarks/edge.py --samples 500 --no-install    # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from splitcodec.codecs import ConfigStore, decode, get_codec
from splitcodec.data import load_dataset
from splitcodec.edge.export import export_package
from splitcodec.edge.runtime import EdgeRuntime
from splitcodec.models import load
from splitcodec.pipeline import cut
from splitcodec.serve.client import EdgeClient

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
CODECS = ("uniform:bits=4", "lightweight:lam=0.2", "nearlossless:bits=8")
#: nearlossless encodes in ~40 ms per sample here: it runs on the first this-many images only
SLOW = {"nearlossless:bits=8": 1000}
MODELS = ("ref-resnet", "ref-darknet")


def log(*args) -> None:
    print(*args, flush=True)


def predictions(streams: list[bytes], config: dict, tail, batch: int = 256) -> np.ndarray:
    """The server's answers: each stream decoded by the library, the tail run on the decoded features."""
    store = ConfigStore()
    store.add(config)
    out = []
    with torch.inference_mode():
        for i in range(0, len(streams), batch):
            feats = torch.cat([decode(s, store) for s in streams[i : i + batch]])
            out.append(tail(feats).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def compare_model(model: str, packages: dict[str, Path], samples: int) -> list[dict]:
    """Both paths on ``samples`` test images, every codec (a :data:`SLOW` one on fewer); one record per codec."""
    data = load_dataset(load(model).splitcodec_cfg.dataset, "test").subset(samples)
    runtimes = {spec: EdgeRuntime(path, threads=1) for spec, path in packages.items()}
    clients = {spec: EdgeClient.for_model("http://unused", model, None, spec) for spec in packages}
    first = next(iter(runtimes.values()))
    pixels = data.raw.numpy()
    same_input = bool(np.array_equal(first.preprocess(pixels), data.images.numpy()))
    head = next(iter(clients.values())).head
    ms = {spec: {"torch": [], "package": []} for spec in packages}
    streams = {spec: {"torch": [], "package": []} for spec in packages}
    for i in range(len(data)):
        if i % 1000 == 0:
            log(f"{model}: sample {i}")
        x = data.images[i : i + 1]
        xo = first.preprocess(pixels[i : i + 1])
        order = ("torch", "package") if i % 2 == 0 else ("package", "torch")
        for path in order:
            t0 = time.perf_counter()
            if path == "torch":
                with torch.inference_mode():
                    feats = head(x)
            else:
                feats = first.head(xo)
            head_ms = 1e3 * (time.perf_counter() - t0)
            for spec in packages:
                if i >= SLOW.get(spec, samples):
                    continue
                t1 = time.perf_counter()
                s = clients[spec].codec.encode(feats, config="ref") if path == "torch" else runtimes[spec].encode(feats)
                ms[spec][path].append(head_ms + 1e3 * (time.perf_counter() - t1))
                streams[spec][path].append(s)
    net = load(model)
    parts = cut(net, first.manifest.split, data.images[:1])
    records = []
    for spec in packages:
        a, b = streams[spec]["torch"], streams[spec]["package"]
        same = np.array([x == y for x, y in zip(a, b)])
        config = runtimes[spec].config
        n = len(a)
        diff = np.flatnonzero(~same)
        pa = predictions([a[i] for i in diff], config, parts.tail)
        pb = predictions([b[i] for i in diff], config, parts.tail)
        t_torch, t_pkg = float(np.median(ms[spec]["torch"])), float(np.median(ms[spec]["package"]))
        rec = {
            "model": model, "split": first.manifest.split, "codec": spec, "samples": n,
            "same_config": clients[spec].codec.get_config() == config,
            "preprocessing_identical": same_input,
            "identical_streams": float(same.mean()),
            "identical_predictions": 1.0 - float((pa != pb).sum()) / n,
            "mean_stream_bytes": {"torch": float(np.mean([len(s) for s in a])), "package": float(np.mean([len(s) for s in b]))},
            "head_encode_ms_median": {"torch": t_torch, "package": t_pkg},
            "speedup_package_vs_torch": t_torch / t_pkg,
        }
        log(json.dumps(rec))
        records.append(rec)
    return records


_RSS_EDGE = """
import sys, importlib.abc, numpy as np
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('torch', 'torchvision'): raise ImportError('no torch on the edge')
sys.meta_path.insert(0, Block())
from splitcodec.edge.runtime import EdgeRuntime
rt = EdgeRuntime(sys.argv[1]); px = np.load(sys.argv[2])
for i in range(len(px)): rt.encode_sample(rt.preprocess(px[i:i+1]))
print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])
"""
_RSS_TORCH = """
import sys, numpy as np, torch
torch.set_num_threads(1)
from splitcodec.serve.client import EdgeClient
from splitcodec.data.base import normalize
from splitcodec.edge.manifest import read_manifest
m = read_manifest(sys.argv[1]); px = torch.from_numpy(np.load(sys.argv[2]))
c = EdgeClient.for_model('http://unused', m.model, m.split, sys.argv[3])
x = normalize(px, tuple(m.preprocessing['mean']), tuple(m.preprocessing['std']))
for i in range(len(x)): c.encode(x[i:i+1])
print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])
"""


def peak_rss(package: Path, spec: str, pixels: np.ndarray, tmp: Path) -> dict:
    """Peak RSS (VmHWM, MB) of a fresh process coding ``pixels`` with the package (no torch) or the torch path."""
    np.save(tmp / "px.npy", pixels)
    out = {}
    for name, code, extra in (("package", _RSS_EDGE, []), ("torch", _RSS_TORCH, [spec])):
        r = subprocess.run([sys.executable, "-c", code, str(package), str(tmp / "px.npy"), *extra],
                           capture_output=True, text=True, check=True)
        out[name] = round(float(r.stdout.strip().splitlines()[-1]), 1)
    return out


def install_sizes(package: Path, tmp: Path) -> dict:
    """MB of a fresh venv with only splitcodec[edge] (its deps at this venv's versions) vs this venv;
    the fresh venv (which has no torch at all) also encodes one sample, as a check."""
    venv = tmp / "edgevenv"
    pins = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    (tmp / "pins.txt").write_text("\n".join(l for l in pins.splitlines() if not l.startswith("-e") and "splitcodec" not in l))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "-c", str(tmp / "pins.txt")]
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True)
    subprocess.run([*pip, "numpy", "onnxruntime", "constriction"], check=True)
    check = subprocess.run([str(venv / "bin/python"), "-c",
                            "import sys, numpy as np; from splitcodec.edge.runtime import EdgeRuntime; "
                            "rt = EdgeRuntime(sys.argv[1]); s, _, _ = rt.encode_sample(np.zeros([1] + rt.manifest.input_shape, np.float32)); "
                            "print(len(s), 'torch' in sys.modules)", str(package)], capture_output=True, text=True)

    def mb(path: Path) -> int:
        return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True).stdout.split()[0])

    listing = subprocess.run([str(venv / "bin/python"), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    return {"edge_venv_mb": mb(venv), "full_venv_mb": mb(Path(sys.prefix)), "edge_packages": listing.split(),
            "edge_venv_encodes": check.returncode == 0, "edge_venv_check": (check.stdout + check.stderr).strip()[-300:]}


def end_to_end(package: Path, samples: int) -> dict:
    """The package on the edge, ``splitcodec serve`` on 127.0.0.1; top-1 vs the library (evaluator) path."""
    from splitcodec.serve.streaming import stream_dataset
    from splitcodec.testing import ServerProcess

    rt = EdgeRuntime(package)
    m = rt.manifest
    data = load_dataset(load(m.model).splitcodec_cfg.dataset, "test").subset(samples)
    parts = cut(load(m.model), m.split, data.images[:1])
    with ServerProcess(["--model", m.model, "--split", m.split, "--host", "127.0.0.1", "--port", "0", "--threads", "1"]) as server:
        async def go():
            async with EdgeClient(server.url, runtime=rt, connections=8) as edge:
                return await stream_dataset(edge, data.images, data.labels, concurrency=8)

        rep = asyncio.run(go())
    with torch.inference_mode():  # the evaluator's path: torch head, codec, library decode, tail
        codec = get_codec(rt.config)  # the config the torch path fits too (see same_config above)
        streams = [codec.encode(parts.head(data.images[i : i + 1]), config="ref") for i in range(len(data))]
    local = predictions(streams, codec.get_config(), parts.tail)
    served = np.array([-1 if p is None else p for p in rep.predictions])
    labels = data.labels.numpy()
    return {"model": m.model, "split": m.split, "codec": m.codec["id"], "samples": len(data), "ok": rep.ok,
            "top1_served": 100.0 * float((served == labels).mean()), "top1_evaluator": 100.0 * float((local == labels).mean()),
            "same_predictions": float((served == local).mean()), "throughput_sps": rep.throughput_sps,
            "latency_ms": rep.latency_ms, "parts_ms": rep.parts_ms, "mean_stream_bytes": rep.mean_stream_bytes}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--e2e-samples", type=int, default=1000)
    ap.add_argument("--no-install", action="store_true", help="skip the fresh-venv install size")
    ap.add_argument("--out", type=Path, default=RESULTS / "edge.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result: dict = {"samples": args.samples, "threads": 1, "records": []}
    with tempfile.TemporaryDirectory(prefix="splitcodec-edge-") as tmpdir:
        tmp = Path(tmpdir)
        for model in args.models:
            packages = {}
            for spec in CODECS:
                packages[spec] = tmp / model / spec.replace(":", "_").replace("=", "")
                export_package(model, packages[spec], codec=spec)
            log(f"{model}: exported {len(packages)} packages")
            result["records"] += compare_model(model, packages, args.samples)
        light = tmp / args.models[0] / "lightweight_lam0.2"
        pixels = load_dataset("fashion-mnist", "test").subset(500).raw.numpy()
        result["peak_rss_mb"] = {"model": args.models[0], "codec": "lightweight:lam=0.2", "samples": 500,
                                 **peak_rss(light, "lightweight:lam=0.2", pixels, tmp)}
        log("peak RSS", result["peak_rss_mb"])
        result["end_to_end"] = end_to_end(light, args.e2e_samples)
        log("end to end", json.dumps(result["end_to_end"]))
        if not args.no_install:
            result["install"] = install_sizes(light, tmp)
            log("install", {k: v for k, v in result["install"].items() if k != "edge_packages"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
