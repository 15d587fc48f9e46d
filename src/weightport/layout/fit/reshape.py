"""Reshape when only singleton dimensions differ: ``(C, 1, 1)`` ↔ ``(C,)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from weightport.layout.fit.base import FitContext

if TYPE_CHECKING:
    import torch


def squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without its size-1 dimensions."""
    return tuple(d for d in shape if d != 1)


class SingletonReshape:
    """Adapts tensors whose shapes are equal once size-1 dimensions are removed (unambiguous)."""

    name = "reshape"

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        shape = tuple(tensor.shape)
        return shape != ctx.target_shape and squeezed(shape) == squeezed(ctx.target_shape)

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        return tensor.reshape(ctx.target_shape)

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        return f"reshape {tuple(tensor.shape)}->{ctx.target_shape}"
