"""Fuzz every registered codec's decoder: structured mutations (and atheris when installed).

Seeds are the golden streams under ``tests/fixtures/<codec>/``.  Each mutated stream is decoded with
``splitcodec.decode`` under tight :class:`~splitcodec.bitstream.Limits` (4× the seed's elements) in a
forked worker process: 1 s per input (SIGALRM, and the parent kills a worker silent for 3 s), and an
address-space limit (RLIMIT_AS) of the worker's size at start + ``--mem-mb``.  Outcomes:

* ``correct``: decoded to the seed's tensor (the mutation changed nothing that matters);
* ``clean_error``: a :class:`~splitcodec.errors.SplitcodecError` (``clean_error_causes``: the types of
  the exceptions it wraps, when a library or a decoder raised something else first);
* ``other_exception``, ``hang`` (> 1 s), ``memory`` (MemoryError or the worker killed past its limit);
* ``silent_altered``: decoded without error to another tensor (by mutation kind in ``silent_by_kind``).

Inputs that failed (other_exception, hang, memory, or silent with the original checksum) are written to
``tests/fixtures/fuzz/`` and replayed by ``tests/test_fuzz_regressions.py``.

    python benchmarks/fuzz.py --inputs 100000            # the issue's target per decoder
    python benchmarks/fuzz.py --inputs 3000 --modeled-inputs 1000 --anchor-inputs 300 --atheris-runs 2000
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from splitcodec.bitstream import Limits, unpack
from splitcodec.codecs import decode
from splitcodec.codecs.registry import available_codecs
from splitcodec.errors import SplitcodecError
from splitcodec.testing.mutate import MUTATIONS, mutate

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REGRESSIONS = FIXTURES / "fuzz"
OUT = ROOT / "benchmarks" / "results" / "fuzz.json"
FAST = {"raw", "uniform"}
MODELED = {"nearlossless", "lightweight"}  # pure-Python context models: ~15 ms a decode
ATHERIS = FAST  # instrumented, the modeled decoders take ~10 s an input
UNDETECTABLE = {
    "dtype_crc": "the dtype code: the same values decode to another dtype",
    "ndim_crc/shape_crc": "a shape with the same element count (or, for ANS payloads, trailing symbol 0s: "
                          "a symbol 0 coded onto the empty stack coder costs nothing)",
    "payload_crc/flip_crc/bytes_crc": "raw values, the quantizer range floats lo/hi, and picture bytes that "
                                      "the external decoders (ffmpeg, libjpeg, libwebp) accept; in any codec, "
                                      "a flip inside the inline config that leaves it valid (see config_crc)",
    "config_crc": "a config change to another valid config that decodes the same payload (e.g. a lightweight "
                  "level, threshold or channel level changed to another float32 that keeps the order); a "
                  "changed or unknown key is refused",
    "truncate_crc/extend_crc": "the anchors (their decoders ignore a cut or extended picture stream); for the "
                               "ANS payloads (lightweight, nearlossless) a cut that leaves only symbols 0 to "
                               "decode from the exhausted coder, e.g. a lightweight payload cut to nothing, the "
                               "valid encoding of all-zero indices; raw/uniform refuse both",
}
OUTCOMES = ("correct", "clean_error", "other_exception", "hang", "memory", "silent_altered")


class _Timeout(BaseException):
    """Raised by SIGALRM inside a decode that ran past its time."""


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout()


def limits_for(seed: bytes) -> Limits:
    """The receiver's limits for a seed: 4× its elements, 4× its size (as a server sized for it would)."""
    f = unpack(seed)
    return Limits(max_bytes=4 * len(seed) + 1024, max_elements=4 * max(f.numel, 1), max_config_bytes=1 << 16)


def classify(data: bytes, seed: bytes, expected: torch.Tensor, limits: Limits) -> tuple[str, str]:
    """(outcome, detail) of decoding ``data``; ``detail`` names an unexpected exception type."""
    try:
        got = decode(data, limits=limits)
    except _Timeout:
        return "hang", ""
    except MemoryError:
        return "memory", "MemoryError"
    except SplitcodecError as exc:
        cause = exc.__cause__
        if isinstance(cause, MemoryError):
            return "memory", "MemoryError"
        if isinstance(cause, _Timeout):
            return "hang", ""
        if cause is not None and not isinstance(cause, SplitcodecError):  # a library's or a decoder's own
            return "clean_error", f"{type(exc).__name__}<-{type(cause).__name__}"
        return "clean_error", type(exc).__name__
    except Exception as exc:  # noqa: BLE001  (what the fuzzer is looking for)
        return "other_exception", type(exc).__name__
    same = got.shape == expected.shape and got.dtype == expected.dtype and torch.equal(got, expected)
    return ("correct" if same else "silent_altered"), ""


def _worker(conn, seeds: list[bytes], mem_mb: int) -> None:
    with open("/proc/self/statm") as fh:
        vsize = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vsize + mem_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGALRM, _alarm)
    refs = [decode(s) for s in seeds]
    lims = [limits_for(s) for s in seeds]
    while True:
        job = conn.recv()
        if job is None:
            return
        k, data = job
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        try:
            outcome = classify(data, seeds[k], refs[k], lims[k])
        except _Timeout:
            outcome = ("hang", "")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        conn.send((outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


class Runner:
    """A forked worker decoding one codec's inputs; restarted after a hang or a crash."""

    def __init__(self, seeds: list[bytes], mem_mb: int) -> None:
        self.seeds, self.mem_mb = seeds, mem_mb
        self.proc = None
        self.peak_mb = 0.0

    def _start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, self.seeds, self.mem_mb), daemon=True)
        self.proc.start()

    def run(self, k: int, data: bytes) -> tuple[str, str]:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((k, data))
        if self.conn.poll(3.0):
            try:
                outcome, rss = self.conn.recv()
                self.peak_mb = max(self.peak_mb, rss)
                return outcome
            except EOFError:
                pass
        dead = not self.proc.is_alive()
        self.stop(kill=True)
        return ("memory", "killed") if dead else ("hang", "killed")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.conn.send(None)
        self.proc.join(5)
        self.proc = None


def _save_regression(codec_id: str, kind: str, outcome: str, data: bytes) -> None:
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    name = f"{codec_id}-{outcome}-{kind}-{hashlib.sha256(data).hexdigest()[:10]}.scb"
    (REGRESSIONS / name).write_bytes(data)


def fuzz_codec(codec_id: str, n: int, mem_mb: int, rng: random.Random) -> dict:
    seeds = [p.read_bytes() for p in sorted((FIXTURES / codec_id).glob("*.scb"))]
    counts = collections.Counter()
    silent = collections.Counter()
    details = collections.Counter()
    wrapped = collections.Counter()  # clean errors that wrap another library's (or a decoder's) exception
    runner = Runner(seeds, mem_mb)
    t0 = time.time()
    for _ in range(n):
        k = rng.randrange(len(seeds))
        kind, data = mutate(seeds[k], rng)
        (outcome, detail) = runner.run(k, data)
        counts[outcome] += 1
        if outcome == "silent_altered":
            silent[kind] += 1
        if outcome in ("other_exception", "hang", "memory"):
            details[f"{outcome}:{detail}:{kind}"] += 1
        elif "<-" in detail:
            wrapped[detail.split("<-")[1]] += 1
        if outcome in ("other_exception", "hang", "memory") or (outcome == "silent_altered" and kind.endswith("keepcrc")):
            _save_regression(codec_id, kind, outcome, data)
    runner.stop()
    row = {"inputs": n, **{o: counts[o] for o in OUTCOMES}, "peak_rss_mb": round(runner.peak_mb, 1)}
    row["silent_by_kind"] = dict(silent)
    row["failures"] = dict(details)
    row["clean_error_causes"] = dict(wrapped)
    row["seconds"] = round(time.time() - t0, 1)
    return row


def run_atheris(codec_id: str, runs: int) -> dict | None:
    """Coverage-guided fuzzing of one decoder in a child process (libFuzzer: 1 s, RSS limit)."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        return None
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        corpus, stats_path = Path(tmp) / "corpus", Path(tmp) / "stats.json"
        corpus.mkdir()
        for p in (FIXTURES / codec_id).glob("*.scb"):
            shutil.copy(p, corpus)
        cmd = [sys.executable, str(Path(__file__).with_name("fuzz_atheris.py")), codec_id, str(stats_path),
               "-timeout=1", "-rss_limit_mb=3000", f"-runs={runs}", "-max_len=8192",
               f"-artifact_prefix={tmp}/", str(corpus)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(300, runs // 10))
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        for crash in Path(tmp).glob("crash-*"):
            _save_regression(codec_id, "atheris", "crash", crash.read_bytes())
    stats["returncode"] = proc.returncode  # 0: every input ended cleanly
    stats["done"] = next((ln for ln in proc.stderr.splitlines() if ln.startswith("Done ")), proc.stderr[-300:])
    return stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=3000, help="structured mutations per fast decoder")
    ap.add_argument("--modeled-inputs", type=int, default=1000, help="per nearlossless/lightweight decoder")
    ap.add_argument("--anchor-inputs", type=int, default=300, help="per decoder that runs an external binary")
    ap.add_argument("--atheris-runs", type=int, default=0, help="coverage-guided inputs per fast decoder")
    ap.add_argument("--mem-mb", type=int, default=1024, help="address space a worker may add to its start size")
    ap.add_argument("--codecs", default="", help="comma-separated codec ids (default: all registered)")
    ap.add_argument("--counts", default="", help="per-codec overrides, e.g. nearlossless=20000,lightweight=50000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--merge", action="store_true", help="update the decoders of an existing fuzz.json")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    wanted = [c for c in args.codecs.split(",") if c] or list(available_codecs())
    overrides = {k: int(v) for k, _, v in (item.partition("=") for item in args.counts.split(",") if item)}
    result = {"meta": {"inputs_per_fast_decoder": args.inputs, "inputs_per_modeled_decoder": args.modeled_inputs,
                       "inputs_per_anchor": args.anchor_inputs, "atheris_runs": args.atheris_runs,
                       "time_limit_s": 1.0, "mem_limit_mb_over_start": args.mem_mb, "seed": args.seed, "counts": overrides,
                       "mutations": sorted(MUTATIONS), "limits": "4x the seed's elements and bytes"},
              "decoders": {}, "undetectable_with_recomputed_crc": UNDETECTABLE}
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text())
        result["decoders"] = old.get("decoders", {})
        result["meta"]["merged_runs"] = [*old.get("meta", {}).get("merged_runs", [old.get("meta")]), dict(result["meta"])]
    for codec_id in wanted:
        if available_codecs().get(codec_id) is not None:
            continue
        n = args.inputs if codec_id in FAST else args.modeled_inputs if codec_id in MODELED else args.anchor_inputs
        n = overrides.get(codec_id, n)
        row = fuzz_codec(codec_id, n, args.mem_mb, rng)
        if args.atheris_runs and codec_id in ATHERIS:
            row["atheris"] = run_atheris(codec_id, args.atheris_runs)
        result["decoders"][codec_id] = row
        print(codec_id, json.dumps(row), flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
