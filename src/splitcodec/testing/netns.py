"""Kernel link shaping: the server in its own network namespace, reached over a shaped veth pair (root only).

See :mod:`splitcodec.testing.link` for what is emulated and how; :func:`kernel_qdiscs` says which
``tc`` qdiscs this kernel accepts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from splitcodec.errors import DependencyError, SplitcodecError
from splitcodec.testing.link import TBF_BURST, LinkSpec, ShapingProxy

__all__ = ["NetnsLink", "kernel_qdiscs"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def kernel_qdiscs() -> dict[str, str | None]:
    """Which of netem/tbf the kernel accepts here: ``{"netem": None | why not, "tbf": …}`` (root only)."""
    why = _why_no_netns()
    if why:
        return {"netem": why, "tbf": why}
    out: dict[str, str | None] = {}
    name = f"scq{os.getpid() % 100000}"
    try:
        r = _run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"])
        if r.returncode != 0:
            return {"netem": r.stderr.strip(), "tbf": r.stderr.strip()}
        for kind, args in (("netem", ["delay", "1ms"]), ("tbf", ["rate", "1mbit", "burst", "4kb", "latency", "50ms"])):
            r = _run(["tc", "qdisc", "replace", "dev", name, "root", kind, *args])
            out[kind] = None if r.returncode == 0 else (r.stderr.strip() or f"tc exited {r.returncode}")
    finally:
        _run(["ip", "link", "del", name])
    return out


def _why_no_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    for tool, pkg in (("ip", "iproute2"), ("tc", "iproute2")):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing (Debian package {pkg})"
    return None


class NetnsLink:
    """A network namespace with a veth pair to this one, shaped with ``tc`` (see the module docstring).

    ``prefix`` runs a command inside the namespace (``ServerProcess(..., prefix=link.prefix)``),
    ``server_host`` is the address a server there listens on, and ``front(url)`` gives the URL the edge
    uses (through a delay-only :class:`ShapingProxy` when the kernel lacks netem).
    """

    HOST_ADDR = "169.254.77.1"
    NS_ADDR = "169.254.77.2"

    def __init__(self, spec: LinkSpec, *, name: str | None = None) -> None:
        self.spec = spec
        self.name = name or f"scnet{os.getpid() % 100000}"
        self.veth = (f"{self.name}a"[-15:], f"{self.name}b"[-15:])
        self.mode = "down"
        self.residual: LinkSpec | None = None  # what the kernel could not apply
        self._proxy: ShapingProxy | None = None

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    @property
    def server_host(self) -> str:
        return self.NS_ADDR

    def _must(self, cmd: list[str]) -> None:
        r = _run(cmd)
        if r.returncode != 0:
            raise SplitcodecError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")

    def _shape(self, dev: str, ns: bool) -> str:
        """Apply the spec on one veth end; returns the mode used ("netem" or "tbf" or "none")."""
        pre = self.prefix if ns else []
        s = self.spec
        netem = ["delay", f"{s.rtt_ms / 2:.3f}ms", "limit", "100000"]
        if s.loss:
            netem += ["loss", f"{s.loss * 100:.4f}%"]
        if s.bandwidth_bps:
            netem += ["rate", f"{int(s.bandwidth_bps)}bit"]
        r = _run([*pre, "tc", "qdisc", "replace", "dev", dev, "root", "netem", *netem])
        if r.returncode == 0:
            return "netem"
        if "unknown" not in r.stderr.lower():
            raise SplitcodecError(f"tc netem on {dev} failed: {r.stderr.strip()}")
        if not s.bandwidth_bps:
            return "none"
        # One MTU of burst: a token bucket lets a full bucket through at line rate, so a larger burst
        # would hide the serialisation time of small requests (the first packet still goes unshaped).
        self._must([*pre, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", f"{int(s.bandwidth_bps)}bit",
                    "burst", str(TBF_BURST), "latency", "2000ms"])
        return "tbf"

    def up(self) -> "NetnsLink":
        why = _why_no_netns()
        if why:
            raise DependencyError(f"kernel link emulation {why}; use ShapingProxy (in-process) instead")
        a, b = self.veth
        _run(["ip", "netns", "del", self.name])  # a namespace of ours left behind by a killed run
        _run(["ip", "link", "del", a])
        try:
            self._must(["ip", "netns", "add", self.name])
            self._must(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
            self._must(["ip", "link", "set", b, "netns", self.name])
            self._must(["ip", "addr", "add", f"{self.HOST_ADDR}/30", "dev", a])
            self._must(["ip", "link", "set", a, "up"])
            self._must([*self.prefix, "ip", "addr", "add", f"{self.NS_ADDR}/30", "dev", b])
            self._must([*self.prefix, "ip", "link", "set", b, "up"])
            self._must([*self.prefix, "ip", "link", "set", "lo", "up"])
            modes = {self._shape(a, ns=False), self._shape(b, ns=True)}
        except BaseException:
            self.down()
            raise
        mode = modes.pop() if len(modes) == 1 else "mixed"
        self.mode = mode
        if mode == "netem":
            self.residual = None
        elif mode == "tbf":  # kernel does the bandwidth, a proxy the delay/loss
            self.residual = replace(self.spec, bandwidth_bps=None) if (self.spec.rtt_ms or self.spec.loss) else None
        else:  # "none": no bandwidth asked and no netem: the proxy does it all
            self.residual = self.spec if (self.spec.rtt_ms or self.spec.loss) else None
        if self.residual is not None:
            self.mode = f"{mode}+proxy" if mode != "none" else "proxy"
        return self

    def front(self, server_url: str) -> str:
        """The URL the edge should use for a server listening at ``server_url`` inside the namespace."""
        if self.residual is None:
            return server_url
        if self._proxy is None:
            parts = urlsplit(server_url)
            self._proxy = ShapingProxy(self.residual, (parts.hostname or self.NS_ADDR, parts.port or 80)).start()
        return self._proxy.url(server_url)

    def down(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        _run(["ip", "netns", "del", self.name])  # removes the veth pair with it
        _run(["ip", "link", "del", self.veth[0]])
        self.mode = "down"

    def __enter__(self) -> "NetnsLink":
        return self.up()

    def __exit__(self, *exc: Any) -> None:
        self.down()


