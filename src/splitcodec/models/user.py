"""Bring your own model: ``file.py:Class``, plug-ins of the ``splitcodec.models`` entry-point group.

:func:`resolve_model` turns a model spec into an ``nn.Module`` in eval mode:

- a registered name or ``torchvision:<arch>``: :func:`splitcodec.models.load`;
- ``path/to/file.py:Name``: the file is imported and ``Name`` (an ``nn.Module`` class or any callable
  returning one) is called without arguments;
- a name published by an installed package under the ``splitcodec.models`` entry-point group (the
  entry point is a callable returning an ``nn.Module``, like a ``splitcodec.codecs`` plug-in).

``weights`` (a state-dict file) is loaded strictly into the built module.  A user model may carry a
``splitcodec_cfg`` (:class:`~splitcodec.models.ModelCfg`) attribute giving its input size, normalisation,
dataset and default split; without it the evaluator needs ``--dataset`` and ``--split``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from torch import nn

from splitcodec.errors import SplitcodecError, UnknownModelError
from splitcodec.models.registry import TORCHVISION_PREFIX, list_models, load, load_state_dict_file

__all__ = ["ENTRY_POINT_GROUP", "resolve_model", "load_from_file", "plugin_models"]

ENTRY_POINT_GROUP = "splitcodec.models"


def plugin_models() -> dict[str, Any]:
    """Entry points of the ``splitcodec.models`` group, by name (not loaded)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _build(factory: Callable[[], Any], what: str) -> nn.Module:
    try:
        model = factory()
    except TypeError as exc:
        raise SplitcodecError(f"{what}: cannot be built without arguments ({exc}); wrap it in a function") from exc
    if not isinstance(model, nn.Module):
        raise SplitcodecError(f"{what} returned a {type(model).__name__}, not a torch nn.Module")
    return model


def load_from_file(spec: str) -> nn.Module:
    """Build ``Name`` from ``path/to/file.py:Name`` (the file is imported under a private module name)."""
    file, _, attr = spec.rpartition(":")
    path = Path(file).expanduser()
    if not path.is_file():
        raise SplitcodecError(f"--model {spec}: file {path} does not exist")
    module_name = f"_splitcodec_user_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SplitcodecError(f"--model {spec}: cannot import {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file may raise anything while importing
        del sys.modules[module_name]
        raise SplitcodecError(f"--model {spec}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        names = sorted(n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module))
        raise SplitcodecError(f"--model {spec}: {path} has no {attr!r} (nn.Module classes there: {', '.join(names) or 'none'})")
    return _build(factory, f"--model {spec}")


def resolve_model(spec: str | nn.Module, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """An ``nn.Module`` in eval mode from a name, ``torchvision:<arch>``, ``file.py:Name`` or a plug-in name."""
    if isinstance(spec, nn.Module):
        model = spec
    elif spec.startswith(TORCHVISION_PREFIX) or spec in list_models():
        return load(spec, weights=weights)
    elif ".py:" in spec:
        model = load_from_file(spec)
    elif spec in (plugins := plugin_models()):
        try:
            factory = plugins[spec].load()
        except Exception as exc:  # a broken plug-in package
            raise SplitcodecError(f"model plug-in {spec!r} failed to load: {type(exc).__name__}: {exc}") from exc
        model = _build(factory, f"model plug-in {spec!r}")
    else:
        known = ", ".join(list_models() + sorted(plugins))
        raise UnknownModelError(
            f"unknown model {spec!r}. Give --model one of: {known}; torchvision:<arch> with --weights; "
            f"or your own path/to/file.py:ClassName"
        )
    if weights is not None:
        load_state_dict_file(model, weights, what=f"--model {spec if isinstance(spec, str) else type(spec).__name__}")
    return model.eval()
