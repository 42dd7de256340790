"""``ref-resnet``: a small ResNet (He et al. 2016, arXiv:1512.03385) for 1×28×28 Fashion-MNIST.

::

    x 1×28×28 -> stem (conv3×3, BN, ReLU)      16×28×28
              -> layer1 (2 BasicBlocks)         16×28×28
              -> layer2 (2 BasicBlocks, /2)     32×14×14   <- default split, after a ReLU
              -> layer3 (2 BasicBlocks, /2)     64×7×7
              -> avgpool, flatten, fc           10 logits

Every block ends in ``relu(out + identity)``, so block and stage outputs are valid split points
right after a ReLU.  Weights: ``weights/ref-resnet.pt`` from ``scripts/train_reference.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from splitcodec.data.fashion_mnist import MEAN, STD
from splitcodec.models.registry import ModelCfg, register_model

__all__ = ["BasicBlock", "RefResNet", "CFG"]


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus the (1×1-conv-BN projected) input, then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class RefResNet(nn.Module):
    """Three stages of BasicBlocks with widths ``width, 2·width, 4·width``."""

    def __init__(self, num_classes: int = 10, width: int = 16, blocks: tuple[int, int, int] = (2, 2, 2)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        widths = (width, 2 * width, 4 * width)
        in_ch = width
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = [BasicBlock(in_ch, w, stride=1 if i == 0 else 2)]
            layers += [BasicBlock(w, w) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            in_ch = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: blocks start as identities
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


CFG = ModelCfg(
    name="ref-resnet",
    description="small ResNet (3 stages × 2 BasicBlocks, widths 16/32/64) trained on Fashion-MNIST",
    dataset="fashion-mnist",
    input_size=(1, 28, 28),
    num_classes=10,
    mean=MEAN,
    std=STD,
    default_split="layer2",
    weights="ref-resnet.pt",
    test_top1=93.34,  # benchmarks/results/reference_models.json
)


@register_model(CFG.name, CFG)
def ref_resnet(**kwargs: object) -> RefResNet:
    return RefResNet(**kwargs)  # type: ignore[arg-type]
