"""The model registry: ``@register_model(name, cfg)`` at the definition site, ``load(name)`` to use.

Model files in this package are imported automatically (``pkgutil``) on the first lookup, so adding a
model is one new file with a decorated factory.  Files whose name starts with ``_`` are not scanned.

``load`` builds the network with ``factory(**kwargs)``, loads weights (``cfg.weights`` or the ``weights``
argument), puts it in ``eval()`` mode and attaches ``model.splitcodec_cfg``.  The name
``"torchvision:<arch>"`` builds a torchvision architecture around a user state dict
(see :mod:`splitcodec.models._torchvision`).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from splitcodec.errors import SplitcodecError, UnknownModelError

__all__ = [
    "ModelCfg",
    "register_model",
    "load",
    "create_model",
    "list_models",
    "get_model_cfg",
    "load_state_dict_file",
    "WEIGHTS_DIR",
    "TORCHVISION_PREFIX",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
TORCHVISION_PREFIX = "torchvision:"


@dataclass(frozen=True)
class ModelCfg:
    """What a model expects and where its weights are.

    Attributes:
        name: registry name.
        description: one line for ``list`` outputs.
        dataset: the splitcodec dataset it was trained/evaluated on, None for user models.
        input_size: (C, H, W) of one input.
        num_classes: number of logits, or None when the output is an embedding.
        mean, std: per-channel input normalisation in [0, 1] pixel units.
        default_split: a mid-network split name accepted by :func:`splitcodec.split.split`.
        weights: file name under ``models/weights``, or an absolute path; None when the factory loads
            its own weights (or there are none).
        test_top1: measured top-1 accuracy in % on ``dataset``'s test split with the stored weights.
        task: ``"classification"`` (outputs are logits or an embedding) or ``"detection"`` (outputs are
            raw detector tensors, turned into boxes by :func:`splitcodec.eval.detection.postprocessor`).
    """

    name: str
    description: str
    dataset: str | None
    input_size: tuple[int, int, int]
    num_classes: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_split: str | None
    weights: str | None
    test_top1: float | None = None
    task: str = "classification"


Factory = Callable[..., nn.Module]
_MODELS: dict[str, tuple[ModelCfg, Factory]] = {}
_discovered = False


def register_model(name: str, cfg: ModelCfg) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory(**kw) -> nn.Module`` under ``name``.

    Raises ValueError if ``name`` is taken, uses the ``torchvision:`` prefix, or differs from ``cfg.name``.
    """
    if name != cfg.name:
        raise ValueError(f"register_model({name!r}): cfg.name is {cfg.name!r}")
    if name.startswith(TORCHVISION_PREFIX):
        raise ValueError(f"register_model({name!r}): the prefix {TORCHVISION_PREFIX!r} is reserved")

    def decorator(factory: Factory) -> Factory:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered (by {_MODELS[name][1].__module__})")
        _MODELS[name] = (cfg, factory)
        return factory

    return decorator


def _discover() -> None:
    """Import every public module of this package once, so their decorators run."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "registry" and not info.ispkg:
            importlib.import_module(f"{__package__}.{info.name}")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the shell-style ``pattern``, sorted.

    ``"torchvision:<arch>"`` names are accepted by :func:`load` but not listed.
    """
    _discover()
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def _lookup(name: str) -> tuple[ModelCfg, Factory]:
    _discover()
    if name not in _MODELS:
        known = sorted(_MODELS)
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} Known models: {', '.join(known)}, "
            f"or {TORCHVISION_PREFIX}<arch> for a torchvision architecture with your weights."
        )
    return _MODELS[name]


def get_model_cfg(name: str) -> ModelCfg:
    """The :class:`ModelCfg` of a registered model (or of ``torchvision:<arch>``, with 1000 classes)."""
    if name.startswith(TORCHVISION_PREFIX):
        from splitcodec.models import _torchvision

        _torchvision.check_arch(name[len(TORCHVISION_PREFIX) :])
        return _torchvision.make_cfg(name[len(TORCHVISION_PREFIX) :], num_classes=1000, weights=None)
    return _lookup(name)[0]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """The bare architecture from the factory: no weights loaded by the registry, training mode."""
    return _lookup(name)[1](**kwargs)


def load(name: str, weights: str | os.PathLike[str] | None = None, **kwargs: Any) -> nn.Module:
    """Build model ``name``, load its weights, return it in eval mode with ``.splitcodec_cfg`` attached.

    Args:
        name: a registered name (see :func:`list_models`) or ``"torchvision:<arch>"``.
        weights: a state-dict file overriding ``cfg.weights`` (required in practice for torchvision
            names: without it they get random weights and a warning).
        **kwargs: passed to the factory.
    """
    if name.startswith(TORCHVISION_PREFIX):
        from splitcodec.models import _torchvision

        model, cfg = _torchvision.build(name[len(TORCHVISION_PREFIX) :], weights, **kwargs)
    else:
        cfg, factory = _lookup(name)
        model = factory(**kwargs)
        path = weights if weights is not None else cfg.weights
        if path is not None:
            resolved = Path(path) if weights is not None else _resolve_packaged(cfg)
            load_state_dict_file(model, resolved, what=f"model {name!r}")
    model.eval()
    model.splitcodec_cfg = cfg
    return model


def _resolve_packaged(cfg: ModelCfg) -> Path:
    assert cfg.weights is not None
    path = Path(cfg.weights)
    path = path if path.is_absolute() else WEIGHTS_DIR / path
    if not path.is_file():
        raise SplitcodecError(
            f"weights of model {cfg.name!r} not found at {path}; "
            f"train them with: python scripts/train_reference.py --model {cfg.name}"
        )
    return path


def load_state_dict_file(model: nn.Module, path: str | os.PathLike[str], what: str = "model") -> None:
    """Load a state dict file into ``model`` strictly, casting floating tensors to the model's dtypes.

    Accepts a bare state dict or a checkpoint dict with a ``"state_dict"`` or ``"model"`` entry, and
    strips a DataParallel ``module.`` prefix.  Raises SplitcodecError naming the file and the keys
    that are missing, unexpected or of the wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise SplitcodecError(f"{what}: weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, non-tensor payloads
        raise SplitcodecError(f"{what}: cannot read weights file {path}: {e}") from e
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SplitcodecError(f"{what}: {path} does not hold a state dict of tensors")
    state = dict(state)
    consume_prefix_in_state_dict_if_present(state, "module.")
    check_state_dict(model, state, f"{what} ({path})")
    target = model.state_dict()
    state = {k: v.to(target[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Raise SplitcodecError unless ``state`` has exactly ``model``'s keys with the same shapes."""
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})")
        raise SplitcodecError(f"{what}: the state dict does not match the architecture: {'; '.join(parts)}")
