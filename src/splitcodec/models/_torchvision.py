"""``load("torchvision:<arch>", weights=...)``: a torchvision architecture around a user state dict.

The architecture comes from ``torchvision.models.get_model(arch, weights=None, num_classes=...)`` with
``num_classes`` read from the state dict's last weight of rank >= 2 (the classifier), so fine-tuned
heads load.  Nothing is downloaded.  The cfg assumes ImageNet-style 3×224×224 input.
"""

from __future__ import annotations

import difflib
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from splitcodec.errors import SplitcodecError, UnknownModelError
from splitcodec.models.registry import TORCHVISION_PREFIX, ModelCfg, load_state_dict_file

__all__ = ["build", "make_cfg", "infer_num_classes", "check_arch"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_cfg(arch: str, num_classes: int | None, weights: str | None) -> ModelCfg:
    return ModelCfg(
        name=TORCHVISION_PREFIX + arch,
        description=f"torchvision {arch}" + (f" with weights {weights}" if weights else " (random weights)"),
        dataset=None,
        input_size=(3, 224, 224),
        num_classes=num_classes,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_split=None,
        weights=weights,
    )


def infer_num_classes(state: dict[str, torch.Tensor]) -> int | None:
    """Output size of the last weight of rank >= 2 (a Linear or 1×1-conv classifier), else None."""
    for key in reversed(list(state)):
        if key.endswith("weight") and state[key].ndim >= 2:
            return int(state[key].shape[0])
    return None


def check_arch(arch: str) -> None:
    """Raise UnknownModelError (with close matches) unless torchvision has a model ``arch``."""
    import torchvision

    known = torchvision.models.list_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"torchvision has no model {arch!r}{hint} (see torchvision.models.list_models())")


def build(arch: str, weights: str | os.PathLike[str] | None, **kwargs: Any) -> tuple[nn.Module, ModelCfg]:
    """Build ``arch`` and load ``weights`` strictly; random init with a warning when ``weights`` is None."""
    import torchvision

    check_arch(arch)
    if weights is None:
        warnings.warn(
            f"{TORCHVISION_PREFIX}{arch} loaded without weights: its parameters are random",
            stacklevel=3,
        )
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    else:
        path = Path(weights)
        if not path.is_file():
            raise SplitcodecError(f"{TORCHVISION_PREFIX}{arch}: weights file {path} does not exist")
        if "num_classes" not in kwargs:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise SplitcodecError(f"{TORCHVISION_PREFIX}{arch}: cannot read weights file {path}: {e}") from e
            if isinstance(state, dict):
                state = state.get("state_dict", state.get("model", state))
            n = infer_num_classes(state) if isinstance(state, dict) else None
            if n is not None:
                kwargs["num_classes"] = n
        try:
            model = torchvision.models.get_model(arch, weights=None, **kwargs)
        except (TypeError, ValueError) as e:
            raise SplitcodecError(f"{TORCHVISION_PREFIX}{arch}: cannot build with {kwargs}: {e}") from e
        load_state_dict_file(model, path, what=f"{TORCHVISION_PREFIX}{arch}")
    num_classes = kwargs.get("num_classes", _default_num_classes(model))
    return model, make_cfg(arch, num_classes, None if weights is None else str(weights))


def _default_num_classes(model: nn.Module) -> int | None:
    return infer_num_classes(model.state_dict())
