"""The codec registry: one dict from codec id to class, filled at each codec's definition site.

Built-in codecs are the modules of the :mod:`splitcodec.codecs` package (each registers itself with
``@register_codec``); they are imported on the first lookup, so adding a codec is adding one file.
Third-party codecs plug in through the entry-point group ``splitcodec.codecs`` (value: the module or
class to import), loaded on the same first lookup.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import itertools
import json
import pkgutil
import warnings
from importlib.metadata import entry_points
from typing import Any, TypeVar

from splitcodec.codecs.base import Codec
from splitcodec.errors import CodecError, SplitcodecError, UnknownCodecError

__all__ = [
    "ENTRY_POINT_GROUP",
    "register_codec",
    "get_codec",
    "create_codec",
    "codec_class",
    "list_codecs",
    "available_codecs",
    "default_settings",
    "parse_codec_spec",
]

ENTRY_POINT_GROUP = "splitcodec.codecs"
_REGISTRY: dict[str, type[Codec]] = {}
_NOT_CODEC_MODULES = {"base", "registry"}
_discovered = False

C = TypeVar("C", bound=type[Codec])


def register_codec(cls: C) -> C:
    """Class decorator: register ``cls`` under ``cls.codec_id``.  A duplicate id is an error."""
    codec_id = getattr(cls, "codec_id", None)
    if not isinstance(codec_id, str) or not codec_id:
        raise CodecError(f"{cls.__name__} must set a non-empty string codec_id")
    existing = _REGISTRY.get(codec_id)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise CodecError(f"codec id {codec_id!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    _REGISTRY[codec_id] = cls
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import splitcodec.codecs as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_CODEC_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the built-in codecs
            warnings.warn(f"splitcodec codec plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if isinstance(obj, type) and issubclass(obj, Codec):
            register_codec(obj)


def codec_class(codec_id: str) -> type[Codec]:
    """The class registered under ``codec_id``."""
    _discover()
    try:
        return _REGISTRY[codec_id]
    except KeyError:
        close = difflib.get_close_matches(codec_id, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownCodecError(
            f"unknown codec {codec_id!r}{hint} (registered: {', '.join(sorted(_REGISTRY))})"
        ) from None


def get_codec(spec: str | dict[str, Any], **params: Any) -> Codec:
    """Build a codec by id with parameters (``get_codec("uniform", bits=4)``) or from a config dict."""
    if isinstance(spec, dict):
        if params:
            raise CodecError("give parameters inside the config dict or as keywords, not both")
        if not isinstance(spec.get("id"), str):
            raise CodecError('a codec config needs a string "id"')
        return codec_class(spec["id"]).from_config(spec)
    if not isinstance(spec, str):
        raise CodecError(f"codec spec must be an id string or a config dict, got {type(spec).__name__}")
    return codec_class(spec).from_config({"id": spec, **params})


create_codec = get_codec


def list_codecs(pattern: str = "*") -> list[str]:
    """Registered codec ids matching a glob pattern, sorted."""
    _discover()
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def available_codecs() -> dict[str, str | None]:
    """Each codec id -> None when usable here, else why not (missing binary or package)."""
    out: dict[str, str | None] = {}
    for name in list_codecs():
        try:
            _REGISTRY[name].check_available()
            out[name] = None
        except SplitcodecError as exc:
            out[name] = str(exc)
    return out


def default_settings(codec_id: str) -> list[dict[str, Any]]:
    """The codec's default sweep (its ``sweep`` class attribute), as a list of parameter dicts."""
    return [dict(p) for p in codec_class(codec_id).sweep]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_codec_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse ``"name"`` or ``"name:key=v1,v2:other=v"`` into settings (cartesian product of the values).

    A bare name means the codec's default sweep.  Values are JSON where they parse (numbers, true/false),
    else strings.

    >>> parse_codec_spec("uniform:bits=8,2")
    [('uniform', {'bits': 8}), ('uniform', {'bits': 2})]
    """
    name, *parts = spec.strip().split(":")
    codec_class(name)  # fail early with the registry's message
    if not parts:
        return [(name, p) for p in default_settings(name)]
    keys: list[str] = []
    choices: list[list[Any]] = []
    for part in parts:
        key, sep, values = part.partition("=")
        if not sep or not key or not values:
            raise CodecError(f"bad codec spec {spec!r}: expected name:key=value[,value...][:key=value...]")
        if key.strip() in keys:
            raise CodecError(f"bad codec spec {spec!r}: {key.strip()!r} is given twice; give each key once")
        keys.append(key.strip())
        choices.append([_parse_value(v.strip()) for v in values.split(",")])
    return [(name, dict(zip(keys, combo))) for combo in itertools.product(*choices)]
