"""The server's codec configs: shared by reference, capped per owner and in all, least recently used go.

A config registered by several owners (client addresses) is held once.  An owner past its cap loses
its own least recently used config; past the global cap the least recently used config of anyone goes.
So one client cannot fill the store for the others, and registration never fails for lack of room: a
stream whose config was evicted gets ``unknown_config`` and its client registers it again.

>>> from splitcodec.codecs import get_codec
>>> cache = ConfigCache(max_total=2, max_per_owner=1)
>>> a, b = get_codec("uniform", bits=2), get_codec("uniform", bits=3)
>>> ra, rb = cache.add(a, "x"), cache.add(b, "x")   # "x" may hold one: a goes
>>> (ra in cache, rb in cache, len(cache))
(False, True, 1)
"""

from __future__ import annotations

from collections import OrderedDict

from splitcodec.codecs.base import Codec
from splitcodec.errors import UnknownConfigError

__all__ = ["ConfigCache"]


class ConfigCache:
    """Codecs by their 4-byte config reference, with per-owner and total LRU caps."""

    def __init__(self, max_total: int = 256, max_per_owner: int = 16) -> None:
        if max_total < 1 or max_per_owner < 1:
            raise ValueError("max_total and max_per_owner must be >= 1")
        self.max_total = max_total
        self.max_per_owner = max_per_owner
        self._codecs: OrderedDict[bytes, Codec] = OrderedDict()
        self._owners: dict[bytes, set[str]] = {}
        self._by_owner: dict[str, OrderedDict[bytes, None]] = {}
        self.evicted = 0

    def _drop(self, ref: bytes) -> None:
        self._codecs.pop(ref, None)
        for owner in self._owners.pop(ref, set()):
            refs = self._by_owner.get(owner)
            if refs is not None:
                refs.pop(ref, None)
                if not refs:
                    del self._by_owner[owner]
        self.evicted += 1

    def _disown(self, owner: str, ref: bytes) -> None:
        self._by_owner[owner].pop(ref, None)
        owners = self._owners.get(ref, set())
        owners.discard(owner)
        if not owners:
            self._drop(ref)

    def add(self, codec: Codec, owner: str = "") -> bytes:
        """Hold ``codec`` for ``owner``; returns its reference (evicting to stay under the caps)."""
        ref = codec.config_ref
        refs = self._by_owner.setdefault(owner, OrderedDict())
        if ref not in refs and len(refs) >= self.max_per_owner:
            self._disown(owner, next(iter(refs)))
            refs = self._by_owner.setdefault(owner, OrderedDict())
        if ref not in self._codecs:
            while len(self._codecs) >= self.max_total:
                self._drop(next(iter(self._codecs)))
                refs = self._by_owner.setdefault(owner, refs)
            self._codecs[ref] = codec
        self._codecs.move_to_end(ref)
        self._owners.setdefault(ref, set()).add(owner)
        refs[ref] = None
        refs.move_to_end(ref)
        return ref

    def get(self, ref: bytes) -> Codec:
        """The codec of ``ref`` (now the most recently used), or UnknownConfigError."""
        codec = self._codecs.get(ref)
        if codec is None:
            raise UnknownConfigError(
                f"stream refers to codec config {ref.hex()}, which this server does not hold "
                "(never registered, or evicted): register it again (POST /v1/configs)"
            )
        self._codecs.move_to_end(ref)
        return codec

    def __contains__(self, ref: bytes) -> bool:
        return ref in self._codecs

    def __len__(self) -> int:
        return len(self._codecs)
