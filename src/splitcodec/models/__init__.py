"""Reference networks and loaders, by name: ``splitcodec.models.load("ref-resnet")``.

Registered models (one file each in this package, found automatically):
``ref-resnet`` and ``ref-darknet`` (Fashion-MNIST classifiers with committed weights), ``ref-yolo``
(a detector for the ``fashion-detect`` canvases) and
``mobilenetv2-imagenet`` (an ImageNet MobileNetV2 backbone giving 1280-d embeddings).
``load("torchvision:<arch>", weights="my.pth")`` wraps any torchvision architecture.
"""

from __future__ import annotations

from splitcodec.models.registry import (
    ModelCfg,
    create_model,
    get_model_cfg,
    list_models,
    load,
    register_model,
)

__all__ = ["ModelCfg", "register_model", "load", "create_model", "list_models", "get_model_cfg"]
