"""Position embeddings: ViT-style absolute embeddings resampled to the target's grid of patches.

A checkpoint trained at 224 px with 16 px patches has a ``(1, 1 + 14*14, D)`` position embedding; a
model built for 384 px needs ``(1, 1 + 24*24, D)``. The prefix tokens (class, distillation,
registers) are kept as they are; the grid part is reshaped to ``(H, W)``, resampled (bicubic,
antialias off, ``align_corners=False``) to the target grid and flattened again.

Grids and the number of prefix tokens are taken, in this order, from ``options`` (``grid``,
``source_grid``, ``num_prefix_tokens``), from the target module that owns the key (timm's
``num_prefix_tokens`` and ``patch_embed.grid_size``, torchvision's ``image_size // patch_size``), and
finally inferred assuming square grids (the smallest prefix count, up to 8, that makes both token
counts squares). A non-square source grid must be given as ``options["source_grid"]``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from weightport.errors import AdaptError
from weightport.layout.fit.base import FitContext

if TYPE_CHECKING:
    import torch
    from torch import nn

_POS_EMBED_LEAVES = ("pos_embed", "position_embeddings", "pos_embedding", "position_embedding")
_MAX_PREFIX = 8


def resample_position_embedding(
    embedding: torch.Tensor,
    new_grid: tuple[int, int],
    old_grid: tuple[int, int],
    num_prefix_tokens: int,
    *,
    mode: str = "bicubic",
) -> torch.Tensor:
    """``embedding`` (``1, prefix + old_h*old_w, D``) resampled to ``new_grid``, prefix tokens kept."""
    import torch
    import torch.nn.functional as F

    prefix, grid = embedding[:, :num_prefix_tokens], embedding[:, num_prefix_tokens:]
    batch, _, dim = grid.shape
    image = grid.float().reshape(batch, *old_grid, dim).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=new_grid, mode=mode, antialias=False, align_corners=False)
    grid = image.permute(0, 2, 3, 1).reshape(batch, new_grid[0] * new_grid[1], dim).to(embedding.dtype)
    return torch.cat([prefix, grid], dim=1)


def _is_square(n: int) -> bool:
    return n >= 0 and math.isqrt(n) ** 2 == n


def _owner(module: nn.Module | None, key: str) -> nn.Module | None:
    if module is None:
        return None
    path = key.rpartition(".")[0]
    try:
        return module.get_submodule(path) if path else module
    except AttributeError:
        return None


def _grid_of(owner: nn.Module | None) -> tuple[int, int] | None:
    """The patch grid a module was built for, when it says (timm ``grid_size``, torchvision sizes)."""
    if owner is None:
        return None
    for sub in owner.modules():
        grid = getattr(sub, "grid_size", None)
        if isinstance(grid, (tuple, list)) and len(grid) == 2 and all(isinstance(g, int) for g in grid):
            return int(grid[0]), int(grid[1])
    image, patch = getattr(owner, "image_size", None), getattr(owner, "patch_size", None)
    if isinstance(image, int) and isinstance(patch, int) and patch:
        return image // patch, image // patch
    return None


def _as_grid(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


class PosEmbedResample:
    """Resamples an absolute position embedding to another grid of patches."""

    name = "pos_embed"

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        shape, target = tuple(tensor.shape), ctx.target_shape
        if len(shape) != 3 or len(target) != 3 or shape[0] != target[0] or shape[2] != target[2]:
            return False
        if shape[1] == target[1]:
            return False
        leaves = (ctx.source_key.rpartition(".")[2], ctx.target_key.rpartition(".")[2])
        return "pos_embed" in ctx.roles or any(leaf in _POS_EMBED_LEAVES for leaf in leaves)

    def plan(self, tensor: torch.Tensor, ctx: FitContext) -> tuple[tuple[int, int], tuple[int, int], int]:
        """The (old grid, new grid, prefix tokens) the fitter will use."""
        old_tokens, new_tokens = tensor.shape[1], ctx.target_shape[1]
        owner = _owner(ctx.module, ctx.target_key)
        new_grid = _as_grid(ctx.options["grid"]) if "grid" in ctx.options else _grid_of(owner)
        prefix: int | None = ctx.options.get("num_prefix_tokens")
        declared = getattr(owner, "num_prefix_tokens", None)
        if prefix is None and isinstance(declared, int):
            prefix = declared
        if prefix is None and new_grid is not None:
            prefix = new_tokens - new_grid[0] * new_grid[1]
        if prefix is None:
            prefix = next(
                (p for p in range(_MAX_PREFIX + 1) if _is_square(old_tokens - p) and _is_square(new_tokens - p)), None
            )
        if prefix is None or prefix < 0:
            raise AdaptError(
                f"cannot tell the prefix tokens of position embedding {ctx.target_key!r} "
                f"({old_tokens} -> {new_tokens} tokens)",
                hint="pass options num_prefix_tokens=…, grid=(h, w) and source_grid=(h, w)",
            )
        if new_grid is None:
            side = math.isqrt(new_tokens - prefix)
            new_grid = (side, side)
        if "source_grid" in ctx.options:
            old_grid = _as_grid(ctx.options["source_grid"])
        elif _is_square(old_tokens - prefix):
            side = math.isqrt(old_tokens - prefix)
            old_grid = (side, side)
        else:
            raise AdaptError(
                f"position embedding {ctx.source_key!r} has {old_tokens - prefix} grid tokens, not a square grid",
                hint="pass the checkpoint's grid as options source_grid=(h, w)",
            )
        if old_grid[0] * old_grid[1] + prefix != old_tokens or new_grid[0] * new_grid[1] + prefix != new_tokens:
            raise AdaptError(
                f"position embedding {ctx.source_key!r}: grids {old_grid} -> {new_grid} with {prefix} prefix "
                f"token(s) do not give {old_tokens} -> {new_tokens} tokens",
                hint="pass options num_prefix_tokens=…, grid=(h, w) and source_grid=(h, w)",
            )
        return old_grid, new_grid, prefix

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        old_grid, new_grid, prefix = self.plan(tensor, ctx)
        return resample_position_embedding(tensor, new_grid, old_grid, prefix)

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        (oh, ow), (nh, nw), prefix = self.plan(tensor, ctx)
        return f"pos_embed {oh}x{ow}->{nh}x{nw} (bicubic, {prefix} prefix token(s) kept)"
