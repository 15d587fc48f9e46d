"""A convolution kernel ↔ the ``Linear`` that computes the same map on the flattened input.

VGG's first classifier layer is a ``Linear(512 * 7 * 7, 4096)`` after ``flatten`` in torchvision and
a 7×7 ``Conv2d(512, 4096)`` on the 7×7 feature map in timm. On an ``(N, C, H, W)`` map flattened in
``C, H, W`` order (``torch.flatten``) both compute the same outputs, and the Linear's ``(out, C·H·W)``
weight is the kernel's ``(out, C, H, W)`` in the same memory order: the fit is a reshape.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from weightport.layout.fit.base import FitContext

if TYPE_CHECKING:
    import torch


def kernel_and_linear(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether one shape is a conv kernel ``(O, I, *k)`` and the other a Linear weight ``(O, I·∏k)``."""
    if len(a) == 2 and len(b) > 2:
        a, b = b, a
    return (len(b) == 2 and len(a) > 2 and a[0] == b[0] and math.prod(a) == math.prod(b)
            and math.prod(a[2:]) > 1)


class KernelLinear:
    """Fits a conv kernel to an equal-numel ``Linear`` weight with the same outputs, and back."""

    name = "flatten"

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        return kernel_and_linear(tuple(tensor.shape), ctx.target_shape)

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        return tensor.reshape(ctx.target_shape)

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        kind = "conv->linear" if tensor.dim() > 2 else "linear->conv"
        return f"flatten {kind} {tuple(tensor.shape)}->{ctx.target_shape}"
