"""Tensor adapters: named, registered units that make a checkpoint tensor fit its target.

The planner pairs a checkpoint tensor with a target tensor; when the shapes differ it asks each
registered adapter in order whether it applies, and the first that does changes the tensor. Each
adapter can be turned off by name (``load_weights(..., adapters={"channels": False})``) and every
run is recorded in the report against the key it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from weightport.registry.table import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from weightport.registry.source import Source


@dataclass
class AdaptContext:
    """What an adapter may look at when deciding and adapting.

    Attributes:
        source_key: The tensor's key in the (canonicalised) checkpoint.
        target_key: The key it goes to in the target module's state dict.
        target_shape: The shape the target needs.
        module: The target module (the root the load is into).
        source: The resolved source, when there is one (for ``first_conv``, ``classes``...).
        roles: Roles of the target key found by the planner: ``head``, ``first_conv``, ``pos_embed``.
        options: Adapter-specific options (e.g. ``classes`` for the class-subset head adapter).
    """

    source_key: str
    target_key: str
    target_shape: tuple[int, ...]
    module: nn.Module | None = None
    source: Source | None = None
    roles: frozenset[str] = frozenset()
    options: Mapping[str, Any] = field(default_factory=dict)


class TensorAdapter(Protocol):
    """A named way to turn a checkpoint tensor into the target's shape."""

    name: str

    def applies(self, tensor: torch.Tensor, ctx: AdaptContext) -> bool:
        """Whether this adapter knows how to adapt ``tensor`` for ``ctx`` (cheap, no copies)."""
        ...

    def adapt(self, tensor: torch.Tensor, ctx: AdaptContext) -> torch.Tensor:
        """The adapted tensor, of shape ``ctx.target_shape``."""
        ...

    def describe(self, tensor: torch.Tensor, ctx: AdaptContext) -> str:
        """One line for the report: what was done (``"channels 3->1 (sum)"``)."""
        ...


#: The adapters weightport ships, in the order they are tried (data: in place before any call).
BUILTIN_TENSOR_ADAPTERS: dict[str, str] = {
    "reshape": "weightport.layout.adapt.builtin:RESHAPE",
    "channels": "weightport.layout.adapt.builtin:CHANNELS",
    "pos_embed": "weightport.layout.adapt.builtin:POS_EMBED",
    "patch_embed": "weightport.layout.adapt.builtin:PATCH_EMBED",
    "classes": "weightport.layout.adapt.builtin:CLASSES",
}

TENSOR_ADAPTERS: Registry[TensorAdapter] = Registry("tensor adapter", BUILTIN_TENSOR_ADAPTERS)


def register_tensor_adapter(adapter: TensorAdapter, *, override: bool = False) -> TensorAdapter:
    """Register ``adapter`` under ``adapter.name``: tried after the built-ins, or in the place of the
    built-in it replaces (``override=True``).

    Raises:
        DuplicateRegistrationError: The name is taken and ``override`` is false.
    """
    return TENSOR_ADAPTERS.register(adapter.name, adapter, override=override)


def tensor_adapters() -> list[TensorAdapter]:
    """The registered adapters, in the order they are tried."""
    return [adapter for _, adapter in TENSOR_ADAPTERS.items()]
