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

from weightport.errors import DuplicateRegistrationError

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


_ADAPTERS: dict[str, TensorAdapter] = {}


def register_tensor_adapter(adapter: TensorAdapter, *, override: bool = False) -> TensorAdapter:
    """Register ``adapter`` under ``adapter.name`` (tried in registration order).

    Raises:
        DuplicateRegistrationError: The name is taken and ``override`` is false.
    """
    if adapter.name in _ADAPTERS and not override:
        raise DuplicateRegistrationError(
            f"tensor adapter {adapter.name!r} is already registered", hint="pass override=True to replace it"
        )
    _ADAPTERS[adapter.name] = adapter
    return adapter


def tensor_adapters() -> list[TensorAdapter]:
    """The registered adapters, in the order they are tried."""
    import weightport.layout.adapt.builtin  # noqa: F401 - registers the built-in adapters

    return list(_ADAPTERS.values())
