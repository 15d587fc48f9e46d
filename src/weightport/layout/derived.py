"""Buffers a model computes from its configuration rather than learns: index tables, masks, position ids.

torchvision's Swin keeps ``relative_position_index`` as a persistent buffer (so it is in its
checkpoints), timm recomputes it (a non-persistent buffer); Swin V2's ``relative_coords_table``,
Swin's ``attn_mask`` and Hugging Face's ``position_ids`` are alike. Such a tensor carries no
learnt information. In a checkpoint it is *derived*: structural alignment leaves it out of module
signatures (so the blocks holding it still meet), and when the model recomputes it the planner
drops it with a note instead of calling it unexpected. A model that keeps it persistent and does
not find it in the checkpoint keeps the value it computed itself, also with a note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

_DERIVED: set[str] = {"relative_position_index", "relative_coords_table", "attn_mask", "position_ids"}


def register_derived_buffer(leaf_name: str) -> None:
    """Declare that a buffer named ``leaf_name`` is computed by the models that hold it."""
    _DERIVED.add(leaf_name)


def is_derived(key: str) -> bool:
    """Whether the state-dict key names a derived buffer (by its last segment)."""
    return key.rpartition(".")[2] in _DERIVED


def recomputed_buffers(module: nn.Module) -> set[str]:
    """Leaf names of the derived buffers ``module`` holds: it computes them itself."""
    names: set[str] = set()
    for sub in module.modules():
        names.update(n for n in sub._buffers if n in _DERIVED)
    return names
