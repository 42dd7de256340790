"""``splitcodec serve`` as a child process, for tests and benchmarks that need a real server process.

:class:`ServerProcess` starts ``python -m splitcodec serve ARGS``, optionally inside a network namespace,
waits until it prints its ready line, and always stops it on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from splitcodec.errors import SplitcodecError
from splitcodec.serve.server import READY_LINE

__all__ = ["ServerProcess"]


class ServerProcess:
    """``python -m splitcodec serve ARGS`` as a child process (optionally under ``prefix``, e.g.
    ``["ip", "netns", "exec", "ns0"]``); waits for its ready line and stops it on exit."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        prefix: Sequence[str] = (),
        startup_timeout: float = 120.0,
        env: dict[str, str] | None = None,
        grace: float = 30.0,
    ) -> None:
        self.cmd = [*prefix, sys.executable, "-m", "splitcodec", "serve", *args]
        self.startup_timeout = startup_timeout
        self.env = {**os.environ, **(env or {})}
        self.grace = grace
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._lines: list[str] = []

    def start(self) -> "ServerProcess":
        src = str(Path(__file__).resolve().parents[2])
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (src, self.env.get("PYTHONPATH")) if p)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, start_new_session=True
        )
        found: list[str] = []

        def reader() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self._lines.append(line.rstrip())
                if len(self._lines) > 200:
                    del self._lines[:100]
                if not found and line.startswith(READY_LINE):
                    found.append(line[len(READY_LINE) :].split()[0])

        threading.Thread(target=reader, name="splitcodec-server-log", daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not found:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self._lines[-20:])
                self.stop()
                raise SplitcodecError(f"server process did not start ({' '.join(self.cmd)}):\n{tail}")
            time.sleep(0.05)
        self.url = found[0]
        return self

    @property
    def output(self) -> str:
        return "\n".join(self._lines)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server (it shuts down cleanly), SIGKILL its process group after ``grace`` s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever it started and left behind goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
