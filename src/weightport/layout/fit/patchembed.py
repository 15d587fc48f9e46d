"""Patch embedding: a ViT patch-projection kernel resized to another patch size.

Resizing the kernel by plain interpolation changes what the layer computes. Instead, the new
kernel ``w'`` is chosen so that the layer gives the same output on a patch resized with bilinear
interpolation (antialias off) as the original kernel ``w`` on the original patch:
``<resize(x), w'> = <x, w>`` for every patch ``x``. With ``B`` the matrix of that resize,
``w' = pinv(Bᵀ) w`` (the idea of FlexiViT's PI-resize). Limits: it is exact for patches that are
*enlarged* with that same resize; for smaller patches it is the least-squares best and outputs
only approximate the original; whole images resized as one are close but not equal (neighbouring
patches blend at their borders); the kernel must be square or rectangular 2-D (no 3-D patches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weightport.layout.fit.base import FitContext

if TYPE_CHECKING:
    import torch

_PATCH_KEYS = ("patch_embed.proj.weight", "conv_proj.weight", "patch_embeddings.projection.weight")


def resize_patch_kernel(weight: torch.Tensor, new_size: tuple[int, int]) -> torch.Tensor:
    """``weight`` (``out, in, h, w``) resized to ``new_size`` so outputs on bilinearly resized patches are kept."""
    import torch
    import torch.nn.functional as F

    old_size = tuple(weight.shape[-2:])
    basis = torch.eye(old_size[0] * old_size[1], dtype=torch.float64).reshape(-1, 1, *old_size)
    resized = F.interpolate(basis, size=new_size, mode="bilinear", antialias=False, align_corners=False)
    resize_matrix = resized.reshape(basis.shape[0], -1).T  # (new_h*new_w, old_h*old_w): x -> resize(x)
    flat = weight.double().reshape(-1, old_size[0] * old_size[1])
    new = flat @ torch.linalg.pinv(resize_matrix)  # rows of pinv(Bᵀ) w
    return new.reshape(*weight.shape[:2], *new_size).to(weight.dtype)


class PatchEmbedResize:
    """Resizes a patch-embedding kernel when the patch size differs."""

    name = "patch_embed"

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        shape, target = tuple(tensor.shape), ctx.target_shape
        if len(shape) != 4 or len(target) != 4 or shape[:2] != target[:2] or shape[2:] == target[2:]:
            return False
        return "patch_embed" in ctx.roles or any(
            key.endswith(k) for key in (ctx.source_key, ctx.target_key) for k in _PATCH_KEYS
        )

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        return resize_patch_kernel(tensor, (ctx.target_shape[2], ctx.target_shape[3]))

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        (oh, ow), (nh, nw) = tuple(tensor.shape[2:]), ctx.target_shape[2:]
        return f"patch kernel {oh}x{ow}->{nh}x{nw} (pseudo-inverse of bilinear resize)"
