"""Plug a bottleneck into a model at a split point: ``tail(bottleneck(head(x)))``, trainable end to end.

A *bottleneck* is any ``nn.Module`` mapping features to features of the same shape.  If it has a
``last_rate`` attribute (a tensor of bits per feature element, per sample) and optionally
``last_distortion`` after its forward pass, :func:`splitcodec.nn.fine_tune` adds them to the loss.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
>>> x = torch.randn(2, 1, 8, 8)
>>> m = insert(net, at="1", bottleneck=nn.Identity(), example_input=x)
>>> bool(torch.allclose(m(x), net(x)))
True
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from splitcodec.pipeline import cut

__all__ = ["Inserted", "insert"]


class Inserted(nn.Module):
    """``tail(bottleneck(head(x)))`` with the uncut model kept for reference outputs (distillation)."""

    def __init__(self, head: nn.Module, bottleneck: nn.Module, tail: nn.Module, reference: nn.Module, point=None) -> None:
        super().__init__()
        self.head, self.bottleneck, self.tail = head, bottleneck, tail
        self._reference = [reference]  # a list: not a submodule, so not in state_dict() or parameters()
        self.point = point

    @property
    def reference(self) -> nn.Module:
        """The uncut model (frozen, eval mode) whose outputs the fine-tune loop may distil."""
        return self._reference[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.bottleneck(self.head(x)))

    def train(self, mode: bool = True) -> "Inserted":
        super().train(mode)
        for part in (self.head, self.tail):  # frozen parts keep their BatchNorm statistics
            if not any(p.requires_grad for p in part.parameters()):
                part.eval()
        return self


def _freeze(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


def insert(
    model: nn.Module,
    at: str,
    bottleneck: nn.Module,
    example_input: torch.Tensor,
    freeze_head: bool = True,
    freeze_tail: bool = True,
) -> Inserted:
    """Cut ``model`` at ``at`` and put ``bottleneck`` between head and tail.

    Head and tail are frozen (no gradients, BatchNorm in eval mode) unless told otherwise; the uncut
    model is kept, frozen, as ``.reference`` for distillation (a copy, when head or tail will train).
    """
    reference = model if (freeze_head and freeze_tail) else copy.deepcopy(model)
    _freeze(reference)
    c = cut(model, at=at, example_input=example_input)
    if freeze_head:
        _freeze(c.head)
    if freeze_tail:
        _freeze(c.tail)
    return Inserted(c.head, bottleneck, c.tail, reference, point=c.point)
