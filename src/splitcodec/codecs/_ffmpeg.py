"""Running the ``x265`` and ``ffmpeg`` binaries (Debian packages ``x265``, ``ffmpeg``) as subprocesses.

Shared by the HEVC, AV1 and FFV1 anchors.  Frames travel through stdin/stdout pipes (no temporary
files); every call has a timeout; a missing binary raises :class:`DependencyError` naming the Debian
package, a failing one :class:`CodecError` with the tail of the tool's stderr.  ``SPLITCODEC_FFMPEG``
and ``SPLITCODEC_X265`` override the binaries' paths.

Each call starts a process, and process start-up (mostly ffmpeg loading its ~100 shared libraries) is a
real part of what these anchors cost per sample: :func:`startup_ms` measures it on its own.
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
    "ffmpeg_decode",
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


def ffmpeg_decode(
    data: bytes,
    demuxer_args: list[str],
    size: tuple[int, int],
    pix_fmt: str,
    *,
    what: str,
) -> np.ndarray:
    """Decode one picture with ffmpeg into raw ``pix_fmt`` samples (uint8 or little-endian uint16 array).

    ``size`` is (height, width); ``pix_fmt`` is one of the gray formats or yuv420p (planar, 4:2:0).  The decoded stream must announce exactly that size and pixel format
    (so no rescaling or conversion happens in ffmpeg), and yield exactly one picture's bytes.
    """
    h, w = size
    args = ["-hide_banner", "-nostats", "-loglevel", "info", "-threads", "1", *demuxer_args, "-i", "pipe:0",
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
    dtype = np.dtype("<u2") if pix_fmt.endswith("le") else np.dtype(np.uint8)
    samples = h * w if pix_fmt.startswith("gray") else h * w + 2 * ((h + 1) // 2) * ((w + 1) // 2)
    expected = samples * dtype.itemsize
    if len(out) != expected:
        raise BitstreamError(f"{what}: ffmpeg decoded {len(out)} bytes, expected {expected} ({w}x{h} {pix_fmt})")
    return np.frombuffer(out, dtype=dtype).copy()


def startup_ms(tool: Tool = FFMPEG, repeat: int = 5) -> float:
    """Median wall time (ms) of starting ``tool`` and letting it exit: the per-call floor of these anchors."""
    args = ["-hide_banner", "-version"] if tool is FFMPEG else ["--version"]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([tool.path(), *args], capture_output=True, check=False, timeout=30)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)
