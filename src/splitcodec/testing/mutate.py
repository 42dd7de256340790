"""Structured mutations of splitcodec streams, as an attacker (or a broken link) would make them.

Each mutation returns ``(kind, bytes)``; ``kind`` names what was changed, so a fuzzer can tell which
silent alterations are undetectable by design.  Mutations that touch what the checksum covers recompute
it (``crc`` in the kind) unless the kind is ``*_keepcrc``: the parser and the codecs behind the checksum
are attacked too.

>>> import random, torch
>>> from splitcodec.codecs import get_codec
>>> data = get_codec("raw").encode(torch.zeros(1, 2, 2))
>>> kind, bad = mutate(data, random.Random(0))
>>> isinstance(kind, str) and isinstance(bad, bytes)
True
"""

from __future__ import annotations

import random
import zlib
from typing import Callable

from splitcodec.bitstream import CRC_BYTES, DTYPES, MAX_NDIM, Frame, pack, unpack
from splitcodec.entropy import write_varint
from splitcodec.errors import SplitcodecError

__all__ = ["MUTATIONS", "mutate", "recrc"]

_HUGE_DIMS = (0, 1, 2, 255, 256, 1 << 16, 1 << 20, 1 << 31, (1 << 35) - 1)


def recrc(body: bytes) -> bytes:
    """``body`` with a correct CRC-32 appended."""
    return body + zlib.crc32(body).to_bytes(CRC_BYTES, "little")


def _frame(data: bytes) -> Frame | None:
    try:
        return unpack(data)
    except SplitcodecError:
        return None


def _repack(f: Frame, *, payload: bytes | None = None, shape: tuple[int, ...] | None = None,
            dtype: str | None = None, config: dict | None = None) -> bytes:
    payload = f.payload if payload is None else payload
    shape = f.shape if shape is None else shape
    dtype = f.dtype if dtype is None else dtype
    if config is None and f.config is None:
        return pack(payload, shape, dtype, ref=f.config_ref)
    return pack(payload, shape, dtype, config=f.config if config is None else config)


def _flip_keepcrc(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]


def _flip_crc(data: bytes, rng: random.Random) -> bytes:
    return recrc(_flip_keepcrc(data[:-CRC_BYTES], rng))


def _bytes_crc(data: bytes, rng: random.Random) -> bytes:
    body = bytearray(data[:-CRC_BYTES])
    i = rng.randrange(len(body))
    n = rng.randint(1, 8)
    body[i : i + n] = rng.randbytes(n)
    return recrc(bytes(body))


def _payload_bytes_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None or not f.payload:
        return _bytes_crc(data, rng)
    p = bytearray(f.payload)
    for _ in range(rng.randint(1, 4)):
        p[rng.randrange(len(p))] = rng.randrange(256)
    return _repack(f, payload=bytes(p))


def _truncate_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None or not f.payload:
        return recrc(data[: rng.randrange(len(data) - CRC_BYTES + 1)])
    k = rng.choice((1, 2, 3, 4, 8, rng.randint(1, len(f.payload))))
    return _repack(f, payload=f.payload[: max(0, len(f.payload) - k)])


def _extend_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    tail = rng.choice((bytes(rng.choice((1, 4, 8))), rng.randbytes(rng.randint(1, 64))))
    if f is None:
        return recrc(data[:-CRC_BYTES] + tail)
    return _repack(f, payload=f.payload + tail)


def _shape_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None or not f.shape:
        return _bytes_crc(data, rng)
    shape = list(f.shape)
    axis = rng.randrange(len(shape))
    shape[axis] = rng.choice((shape[axis] + 1, max(shape[axis] - 1, 0), shape[axis] * 2, rng.choice(_HUGE_DIMS)))
    if rng.random() < 0.2:
        rng.shuffle(shape)
    return _repack(f, shape=tuple(shape))


def _ndim_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None:
        return _bytes_crc(data, rng)
    shape = list(f.shape)
    if shape and (len(shape) >= MAX_NDIM or rng.random() < 0.5):
        del shape[rng.randrange(len(shape))]
    else:
        shape.insert(rng.randrange(len(shape) + 1), rng.choice((1, 2, 0, 1 << 20)))
    return _repack(f, shape=tuple(shape))


def _dtype_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None:
        return _bytes_crc(data, rng)
    return _repack(f, dtype=rng.choice(DTYPES))


def _config_value(rng: random.Random) -> object:
    return rng.choice((
        0, -1, 1, 2, 3, 7, 8, 12, 16, 17, 255, 1 << 40, 0.5, -0.0, 1e300, "", "x", None, True, [], {},
        [1] * 64, {"a": [1, 2]}, "float16", "bfloat16", "relu", "other",
    ))


def _mutate_json(value: object, rng: random.Random, depth: int = 0) -> object:
    """A copy of JSON ``value`` with one random change somewhere inside."""
    if isinstance(value, dict) and value and depth < 6 and rng.random() < 0.8:
        out = dict(value)
        key = rng.choice(sorted(out))
        action = rng.random()
        if action < 0.15:
            del out[key]
        elif action < 0.25:
            out[rng.choice(("extra", "bits", "state", "id", "dtype"))] = _config_value(rng)
        else:
            out[key] = _mutate_json(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and depth < 6 and rng.random() < 0.8:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        action = rng.random()
        if action < 0.15:
            del out_list[i]
        elif action < 0.25:
            out_list.insert(i, _config_value(rng))
        else:
            out_list[i] = _mutate_json(out_list[i], rng, depth + 1)
        return out_list
    return _config_value(rng)


def _config_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None or f.config is None:
        return _bytes_crc(data, rng)
    config = _mutate_json(f.config, rng)
    if not isinstance(config, dict):
        config = {"id": f.config["id"], "x": config}
    try:
        return _repack(f, config=config)
    except SplitcodecError:
        return _bytes_crc(data, rng)


def _config_text_crc(data: bytes, rng: random.Random) -> bytes:
    """A hostile inline config written as raw text (what json.dumps would never produce)."""
    f = _frame(data)
    cid = "uniform" if f is None or f.config is None else f.config.get("id", "uniform")
    n = rng.choice((20, 200, 5000))
    text = rng.choice((
        '{"id":"%s","bits":%s}' % (cid, "9" * n),
        '{"id":"%s","bits":%s}' % (cid, rng.choice(("NaN", "Infinity", "-Infinity", "1e999", "-1e999"))),
        '{"id":"%s","state":%s1%s}' % (cid, "[" * n, "]" * n),
        '{"id":"%s","state":%s}' % (cid, '{"a":' * n + "1" + "}" * n),
        '{"id":"%s"}' % cid,
        '{"id":"%s","state":{}}' % cid,
        '{"id":"%s","state":null}' % cid,
        '{"id":"%s","state":"%s"}' % (cid, "x" * n),
        '{"id":%d}' % n,
        "[]",
        '{"id":"\\ud800"}',
    )).encode()
    tail = b"\x04\x01\x01\x01\x01"  # float32, 4-D, 1×1×1×1, no payload
    if f is not None:  # keep the original tensor description and payload after the new config
        tail = _repack(f, config={"id": "x"})[3 + 1 + len(b'{"id":"x"}') : -CRC_BYTES]
    return recrc(b"SC\x10" + write_varint(len(text)) + text + tail)


def _ref_crc(data: bytes, rng: random.Random) -> bytes:
    f = _frame(data)
    if f is None:
        return _bytes_crc(data, rng)
    return pack(f.payload, f.shape, f.dtype, ref=rng.randbytes(4))


def _random(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return rng.randbytes(rng.randint(0, 64))
    return recrc(b"SC\x10" + rng.randbytes(rng.randint(0, 64)))


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "flip_keepcrc": _flip_keepcrc,
    "flip_crc": _flip_crc,
    "bytes_crc": _bytes_crc,
    "payload_crc": _payload_bytes_crc,
    "truncate_crc": _truncate_crc,
    "extend_crc": _extend_crc,
    "shape_crc": _shape_crc,
    "ndim_crc": _ndim_crc,
    "dtype_crc": _dtype_crc,
    "config_crc": _config_crc,
    "config_text_crc": _config_text_crc,
    "ref_crc": _ref_crc,
    "random": _random,
}
_WEIGHTS = {"payload_crc": 3, "shape_crc": 2, "config_crc": 2, "truncate_crc": 2, "extend_crc": 2}


def mutate(data: bytes, rng: random.Random, kind: str | None = None) -> tuple[str, bytes]:
    """One mutation of a valid stream ``data`` (a random kind unless ``kind`` is given)."""
    if kind is None:
        names = list(MUTATIONS)
        kind = rng.choices(names, weights=[_WEIGHTS.get(n, 1) for n in names])[0]
    return kind, MUTATIONS[kind](data, rng)

