"""``ref-darknet``: a small YOLO-style Darknet backbone (Redmon & Farhadi 2018, arXiv:1804.02767)
for 1×28×28 Fashion-MNIST.

::

    x 1×28×28 -> stem   conv3×3-BN-LeakyReLU                                   16×28×28
              -> stage1 down: conv3×3/2-BN-LeakyReLU, 1 residual block       32×14×14
              -> stage2 down: conv3×3/2-BN-LeakyReLU  <- default split       64×7×7
                        2 residual blocks
              -> stage3 down: conv3×3/2-BN-LeakyReLU, 1 residual block       128×4×4
              -> avgpool, flatten, fc                                        10 logits

A Darknet residual block is ``x + CBL3×3(CBL1×1(x))`` with no activation after the add, so stage
outputs are "other" activations, while each ``stageN.down`` output is right after a LeakyReLU(0.1).
Weights: ``weights/ref-darknet.pt`` from ``scripts/train_reference.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from splitcodec.data.fashion_mnist import MEAN, STD
from splitcodec.models.registry import ModelCfg, register_model

__all__ = ["ConvBNLeaky", "DarkResidual", "DarkStage", "RefDarknet", "CFG", "NEGATIVE_SLOPE"]

NEGATIVE_SLOPE = 0.1


class ConvBNLeaky(nn.Sequential):
    """Darknet's basic unit: conv (no bias), BatchNorm, LeakyReLU(0.1)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.LeakyReLU(NEGATIVE_SLOPE),
        )


class DarkResidual(nn.Module):
    """``x + conv3×3(conv1×1(x))`` with a channel bottleneck of one half."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.reduce = ConvBNLeaky(ch, ch // 2, 1)
        self.expand = ConvBNLeaky(ch // 2, ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.reduce(x))


class DarkStage(nn.Module):
    """A stride-2 downsampling ConvBNLeaky (``down``) followed by residual ``blocks``."""

    def __init__(self, in_ch: int, out_ch: int, n_blocks: int) -> None:
        super().__init__()
        self.down = ConvBNLeaky(in_ch, out_ch, 3, stride=2)
        self.blocks = nn.Sequential(*[DarkResidual(out_ch) for _ in range(n_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class RefDarknet(nn.Module):
    """Stem plus three :class:`DarkStage` s with widths ``2·width, 4·width, 8·width``."""

    def __init__(self, num_classes: int = 10, width: int = 16, blocks: tuple[int, int, int] = (1, 2, 1)) -> None:
        super().__init__()
        self.stem = ConvBNLeaky(1, width, 3)
        self.stage1 = DarkStage(width, 2 * width, blocks[0])
        self.stage2 = DarkStage(2 * width, 4 * width, blocks[1])
        self.stage3 = DarkStage(4 * width, 8 * width, blocks[2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(8 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=NEGATIVE_SLOPE, mode="fan_out", nonlinearity="leaky_relu")
        for m in self.modules():  # zero-init the last BN of each residual branch
            if isinstance(m, DarkResidual):
                nn.init.zeros_(m.expand[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(self.flatten(self.avgpool(x)))


CFG = ModelCfg(
    name="ref-darknet",
    description="small Darknet-style backbone (CBL units, residual blocks, LeakyReLU 0.1) trained on Fashion-MNIST",
    dataset="fashion-mnist",
    input_size=(1, 28, 28),
    num_classes=10,
    mean=MEAN,
    std=STD,
    default_split="stage2.down",
    weights="ref-darknet.pt",
    test_top1=92.50,  # benchmarks/results/reference_models.json
)


@register_model(CFG.name, CFG)
def ref_darknet(**kwargs: object) -> RefDarknet:
    return RefDarknet(**kwargs)  # type: ignore[arg-type]
