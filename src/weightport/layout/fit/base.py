"""Fitters (tensor transforms): named, registered units that make a checkpoint tensor fit its target.

Called "tensor adapters" before 0.2 ("adapter" now only means a source adapter); the old names warn.

The planner pairs a checkpoint tensor with a target tensor; when the shapes differ it asks each
registered fitter in order whether it applies, and the first that does changes the tensor. Each
fitter can be turned off by name (``load_weights(..., fitters={"channels": False})``) and every
run is recorded in the report against the key it changed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from weightport.registry.table import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from weightport.registry.source import Source


@dataclass
class FitContext:
    """What a fitter may look at when deciding and adapting.

    Attributes:
        source_key: The tensor's key in the (canonicalised) checkpoint.
        target_key: The key it goes to in the target module's state dict.
        target_shape: The shape the target needs.
        module: The target module (the root the load is into).
        source: The resolved source, when there is one (for ``first_conv``, ``classes``...).
        roles: Roles of the target key, decided once by the planner (:mod:`weightport.layout.roles`):
            ``head``, ``first_conv``, ``pos_embed``. A fitter reads them; it never decides a role.
        options: Fitter-specific options (e.g. ``classes`` for the class-subset head fitter).
    """

    source_key: str
    target_key: str
    target_shape: tuple[int, ...]
    module: nn.Module | None = None
    source: Source | None = None
    roles: frozenset[str] = frozenset()
    options: Mapping[str, Any] = field(default_factory=dict)


class Fitter(Protocol):
    """A named way to turn a checkpoint tensor into the target's shape."""

    name: str

    def applies(self, tensor: torch.Tensor, ctx: FitContext) -> bool:
        """Whether this fitter knows how to adapt ``tensor`` for ``ctx`` (cheap, no copies)."""
        ...

    def adapt(self, tensor: torch.Tensor, ctx: FitContext) -> torch.Tensor:
        """The adapted tensor, of shape ``ctx.target_shape``."""
        ...

    def describe(self, tensor: torch.Tensor, ctx: FitContext) -> str:
        """One line for the report: what was done (``"channels 3->1 (sum)"``)."""
        ...


#: The fitters weightport ships, in the order they are tried (data: in place before any call).
BUILTIN_FITTERS: dict[str, str] = {
    "reshape": "weightport.layout.fit.builtin:RESHAPE",
    "channels": "weightport.layout.fit.builtin:CHANNELS",
    "pos_embed": "weightport.layout.fit.builtin:POS_EMBED",
    "patch_embed": "weightport.layout.fit.builtin:PATCH_EMBED",
    "classes": "weightport.layout.fit.builtin:CLASSES",
    "flatten": "weightport.layout.fit.builtin:FLATTEN",
}

FITTERS: Registry[Fitter] = Registry("fitter", BUILTIN_FITTERS)


def register_fitter(fitter: Fitter, *, override: bool = False) -> Fitter:
    """Register ``fitter`` under ``fitter.name``: tried after the built-ins, or in the place of the
    built-in it replaces (``override=True``).

    Raises:
        DuplicateRegistrationError: The name is taken and ``override`` is false.
    """
    return FITTERS.register(fitter.name, fitter, override=override)


def fitters() -> list[Fitter]:
    """The registered fitters, in the order they are tried."""
    return [fitter for _, fitter in FITTERS.items()]


#: Names from before tensor adapters were called fitters; importing one warns (gone in 0.3).
_DEPRECATED: dict[str, str] = {
    "register_tensor_adapter": "register_fitter",
    "tensor_adapters": "fitters",
    "TensorAdapter": "Fitter",
    "AdaptContext": "FitContext",
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(f"weightport.layout.fit.base.{name} is now {new}; the old name goes in weightport 0.3",
                      DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
