"""Run-time helpers for learned codecs: a deterministic, single-threaded scope for the float networks.

PyTorch's CPU convolutions split their work by thread count, and the summation order (hence the last
bits of the result) can change with it.  A decoder must give the same features whatever the caller's
``torch.set_num_threads``, so the learned codecs run their networks inside :func:`one_thread`.  (It also
avoids thread start-up cost on single-sample tensors.)  A lock serialises the scope across Python
threads, since the thread count is process-wide.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from splitcodec._lazy import lazy_module

torch = lazy_module("torch")  # imported on first use: the edge runtime lists codecs without torch

__all__ = ["one_thread"]

_LOCK = threading.RLock()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)`` and gradients off; restore the caller's setting."""
    with _LOCK, torch.no_grad():
        before = torch.get_num_threads()
        if before != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if before != 1:
                torch.set_num_threads(before)
