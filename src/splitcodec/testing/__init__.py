"""Harness for tests and benchmarks of the runtime; nothing here runs in a deployment.

* :mod:`~splitcodec.testing.link`: link emulation between edge and server (:class:`LinkSpec`, the
  in-process :class:`ShapingProxy`); ``splitcodec edge --link`` uses the proxy.
* :mod:`~splitcodec.testing.netns`: the same links shaped by the kernel (:class:`NetnsLink`, root).
* :mod:`~splitcodec.testing.faults`: one bad stream of each kind, with the answer the server owes.
* :mod:`~splitcodec.testing.process`: ``splitcodec serve`` as a child process (:class:`ServerProcess`).
"""

from __future__ import annotations

from splitcodec.testing.faults import FAULT_KINDS, BadStream, bad_streams
from splitcodec.testing.link import LinkSpec, ShapingProxy
from splitcodec.testing.netns import NetnsLink, kernel_qdiscs
from splitcodec.testing.process import ServerProcess

__all__ = [
    "BadStream",
    "bad_streams",
    "FAULT_KINDS",
    "LinkSpec",
    "ShapingProxy",
    "NetnsLink",
    "kernel_qdiscs",
    "ServerProcess",
]
