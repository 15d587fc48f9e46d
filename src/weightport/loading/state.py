"""``load_state_dict`` with the per-module metadata torch's own ``state_dict()`` carries.

A state dict made by ``module.state_dict()`` has a ``_metadata`` attribute: each submodule's
``_version``. Modules that migrate old checkpoints in ``_load_from_state_dict`` read it, and some
(torchvision's MNASNet) refuse a state dict without it. The tensors weightport loads are already in
the model's own layout (renamed, adapted), so the version they have is the model's own: each
module is given ``{"version": module._version}``, as ``state_dict()`` would write it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


def with_module_metadata(module: nn.Module, tensors: Mapping[str, Any]) -> OrderedDict[str, Any]:
    """``tensors`` as an ordered dict carrying ``module``'s per-submodule versions as ``_metadata``."""
    state: OrderedDict[str, Any] = OrderedDict(tensors)
    metadata: OrderedDict[str, dict[str, Any]] = OrderedDict(
        (name, {"version": sub._version}) for name, sub in module.named_modules(remove_duplicate=False)
    )
    state._metadata = metadata  # type: ignore[attr-defined]
    return state


def load_state(module: nn.Module, tensors: Mapping[str, Any], *, strict: bool = False, assign: bool = False) -> Any:
    """``module.load_state_dict(tensors)`` with the module's own version metadata attached.

    Returns:
        What ``load_state_dict`` returns (missing and unexpected keys).
    """
    return module.load_state_dict(with_module_metadata(module, tensors), strict=strict, assign=assign)
