"""The ``x265`` and ``ffmpeg`` binaries (Debian packages ``x265``, ``ffmpeg``), and decoding their streams.

Shared by the HEVC, AV1 and FFV1 anchors.  *Encoding* always runs the Debian binaries as subprocesses,
so the bytes (the rates) never depend on what else is installed: frames travel through stdin/stdout pipes
(no temporary files), every call has a timeout, a missing binary raises :class:`DependencyError` naming
the Debian package, a failing one :class:`CodecError` with the tail of the tool's stderr.
``SPLITCODEC_FFMPEG`` and ``SPLITCODEC_X265`` override the binaries' paths.

*Decoding* is normative (every conforming decoder outputs the same samples), so it runs libavcodec
in-process through PyAV (package ``av``) when that is installed, and the ``ffmpeg`` binary otherwise;
``SPLITCODEC_DECODER=pyav|ffmpeg`` forces one.  Each binary call starts a process, and that start-up
(ffmpeg loads ~200 shared libraries; x265 very few) is part of what an encode costs here:
:func:`startup_ms` measures it on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from splitcodec.errors import BitstreamError, CodecError, DependencyError

__all__ = [
    "TIMEOUT_S",
    "Tool",
    "FFMPEG",
    "X265",
    "run",
    "ffmpeg_has_encoder",
    "DECODERS",
    "decoder_backend",
    "check_decoder",
    "decode_picture",
    "gray_pix_fmt",
    "container_depth",
    "startup_ms",
]

#: Seconds a single encode/decode call may take before it is killed.
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Tool:
    """An external binary: its name, the env var overriding its path, the Debian package shipping it."""

    name: str
    env: str
    package: str

    def path(self) -> str:
        """Absolute path of the binary; DependencyError naming the Debian package when it is missing."""
        override = os.environ.get(self.env)
        if override:
            if os.path.isfile(override) and os.access(override, os.X_OK):
                return override
            raise DependencyError(f"{self.env}={override!r} is not an executable file")
        found = shutil.which(self.name)
        if found is None:
            raise DependencyError(
                f"the {self.name} binary is not installed: install the Debian package {self.package} "
                f"(apt-get install {self.package}) or set {self.env}"
            )
        return found


FFMPEG = Tool("ffmpeg", "SPLITCODEC_FFMPEG", "ffmpeg")
X265 = Tool("x265", "SPLITCODEC_X265", "x265")


def run(tool: Tool, args: list[str], data: bytes, *, what: str, timeout: float = TIMEOUT_S) -> tuple[bytes, str]:
    """Run ``tool args`` with ``data`` on stdin; returns (stdout, stderr text).  CodecError on failure."""
    cmd = [tool.path(), *args]
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CodecError(f"{what}: {tool.name} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise DependencyError(f"{what}: cannot start {cmd[0]}: {exc}") from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in stderr.strip().splitlines()[-4:]) or "(no message)"
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with {proc.returncode}"
        raise CodecError(f"{what}: {tool.name} {how}: {tail}")
    return proc.stdout, stderr


@lru_cache(maxsize=None)
def _ffmpeg_codecs(kind: str) -> str:
    out, _ = run(FFMPEG, ["-hide_banner", f"-{kind}"], b"", what=f"listing ffmpeg {kind}", timeout=30)
    return out.decode("utf-8", "replace")


def ffmpeg_has_encoder(name: str, package: str = "ffmpeg") -> None:
    """DependencyError unless this ffmpeg has the encoder ``name`` (e.g. libaom-av1)."""
    if not re.search(rf"^\s*\S+\s+{re.escape(name)}\s", _ffmpeg_codecs("encoders"), re.MULTILINE):
        raise DependencyError(f"this ffmpeg has no {name} encoder (Debian package {package} provides one)")


def container_depth(bits: int, depths: tuple[int, ...]) -> int:
    """The smallest sample depth in ``depths`` that holds ``bits``-bit codes."""
    for depth in depths:
        if bits <= depth:
            return depth
    raise CodecError(f"{bits}-bit samples exceed the largest depth supported ({max(depths)})")


def gray_pix_fmt(depth: int) -> str:
    """ffmpeg's name of the one-plane (4:0:0) pixel format with ``depth`` bits per sample."""
    return {8: "gray", 10: "gray10le", 12: "gray12le", 16: "gray16le"}[depth]


_STREAM = re.compile(r"Input #0.*?Stream #0:0[^\n]*?Video: [^\n]*?, (\w+)(?:\([^)]*\))?, (\d+)x(\d+)", re.DOTALL)

#: How each picture codec is demuxed by the ffmpeg binary (FFV1: see _decode_ffmpeg), and PyAV's decoder.
_DEMUX = {"hevc": ["-f", "hevc"], "av1": ["-f", "obu"]}
_PYAV_DECODER = {"hevc": "hevc", "av1": "libdav1d", "ffv1": "ffv1"}
DECODERS = ("auto", "pyav", "ffmpeg")


def decoder_backend() -> str:
    """The decoding backend: "pyav" (libavcodec in-process) or "ffmpeg" (the binary); ``SPLITCODEC_DECODER`` forces one."""
    choice = os.environ.get("SPLITCODEC_DECODER", "auto")
    if choice not in DECODERS:
        raise DependencyError(f"SPLITCODEC_DECODER must be one of {', '.join(DECODERS)}, got {choice!r}")
    if choice == "auto":
        return "pyav" if _pyav() is not None else "ffmpeg"
    if choice == "pyav" and _pyav() is None:
        raise DependencyError("SPLITCODEC_DECODER=pyav but the Python package av is not installed (pip install av)")
    return choice


@lru_cache(maxsize=None)
def _pyav():
    try:
        import av
    except ImportError:
        return None
    return av


def _samples(size: tuple[int, int], pix_fmt: str) -> tuple[int, np.dtype]:
    h, w = size
    dtype = np.dtype("<u2") if pix_fmt.endswith("le") else np.dtype(np.uint8)
    n = h * w if pix_fmt.startswith("gray") else h * w + 2 * ((h + 1) // 2) * ((w + 1) // 2)
    return n, dtype


def check_decoder() -> None:
    """DependencyError unless pictures can be decoded here (PyAV, or the ffmpeg binary)."""
    if decoder_backend() == "ffmpeg":
        FFMPEG.path()


def decode_picture(data: bytes, codec: str, size: tuple[int, int], pix_fmt: str, *, what: str) -> np.ndarray:
    """Decode one ``codec`` ("hevc", "av1", "ffv1") picture into its raw ``pix_fmt`` samples, planar, flat.

    ``size`` is (height, width); ``pix_fmt`` a gray format or yuv420p.  The stream must hold exactly one
    picture of that size and pixel format (nothing is rescaled or converted).  Decoding is normative, so
    both backends give the same samples: libavcodec in-process through PyAV when it is installed (no
    process start-up per picture), else the ffmpeg binary.  Returns uint8 or uint16 samples.
    """
    if decoder_backend() == "pyav":
        return _decode_pyav(data, codec, size, pix_fmt, what=what)
    return _decode_ffmpeg(data, codec, size, pix_fmt, what=what)


def _decode_pyav(data: bytes, codec: str, size: tuple[int, int], pix_fmt: str, *, what: str) -> np.ndarray:
    av = _pyav()
    h, w = size
    try:
        ctx = av.CodecContext.create(_PYAV_DECODER[codec], "r")
        ctx.thread_count = 1
        if codec == "ffv1":  # FFV1 frames do not carry their size
            ctx.width, ctx.height = w, h
        frames = list(ctx.decode(av.Packet(data)))
        frames += ctx.decode(None)
    except av.FFmpegError as exc:
        raise BitstreamError(f"{what}: {exc}") from None
    if len(frames) != 1:
        raise BitstreamError(f"{what}: payload holds {len(frames)} pictures, expected 1")
    frame = frames[0]
    if (frame.height, frame.width) != (h, w) or frame.format.name != pix_fmt:
        raise BitstreamError(
            f"{what}: payload holds a {frame.width}x{frame.height} {frame.format.name} picture, expected {w}x{h} {pix_fmt}"
        )
    n, dtype = _samples(size, pix_fmt)
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        out.append(rows[:, : plane.width * dtype.itemsize].reshape(-1))
    flat = np.concatenate(out).view(dtype)
    if flat.size != n:
        raise BitstreamError(f"{what}: decoded {flat.size} samples, expected {n} ({w}x{h} {pix_fmt})")
    return flat


def _decode_ffmpeg(data: bytes, codec: str, size: tuple[int, int], pix_fmt: str, *, what: str) -> np.ndarray:
    h, w = size
    if codec == "ffv1":  # bare FFV1 frame: one "image" of the given size
        demux = ["-f", "image2pipe", "-frame_size", str(len(data)), "-video_size", f"{w}x{h}", "-c:v", "ffv1"]
    else:
        demux = _DEMUX[codec]
    args = ["-hide_banner", "-nostats", "-loglevel", "info", "-threads", "1", *demux, "-i", "pipe:0",
            "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    try:
        out, log = run(FFMPEG, args, data, what=what)
    except DependencyError:
        raise
    except CodecError as exc:
        raise BitstreamError(str(exc)) from None
    m = _STREAM.search(log)
    if m is None:
        raise BitstreamError(f"{what}: ffmpeg found no video stream in the payload")
    got_fmt, got_w, got_h = m.group(1), int(m.group(2)), int(m.group(3))
    if (got_h, got_w) != (h, w) or got_fmt != pix_fmt:
        raise BitstreamError(f"{what}: payload holds a {got_w}x{got_h} {got_fmt} picture, expected {w}x{h} {pix_fmt}")
    n, dtype = _samples(size, pix_fmt)
    if len(out) != n * dtype.itemsize:
        raise BitstreamError(f"{what}: ffmpeg decoded {len(out)} bytes, expected {n * dtype.itemsize} ({w}x{h} {pix_fmt})")
    return np.frombuffer(out, dtype=dtype).copy()


def startup_ms(tool: Tool = FFMPEG, repeat: int = 5) -> float:
    """Median wall time (ms) of starting ``tool`` and letting it exit: the per-call floor of these anchors."""
    args = ["-hide_banner", "-version"] if tool is FFMPEG else ["--help"]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([tool.path(), *args], capture_output=True, check=False, timeout=30)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)
