"""Build a model without drawing its random initialisation, for when the checkpoint replaces every value.

The verification builds the source architecture only to give it the checkpoint's tensors, so the
random numbers its constructor draws (``kaiming_normal_``, ``trunc_normal_``, ``uniform_`` ...) are
thrown away. On the meta device they still run through torch's Python decompositions (about half of
a timm EfficientNet's meta build); on the CPU, where a model cannot be built on meta (torchvision's
RegNet computes its widths with ``.tolist()``), they are most of the build. Under
:class:`SkipRandomInit` those calls return their tensor untouched. Only random draws are skipped,
never computed values (``arange``, ``fill_``, ``zeros_``), and the tensors they would have filled are
remembered, so that a caller can tell whether any of them is left once the checkpoint is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.overrides import TorchFunctionMode

if TYPE_CHECKING:
    from torch import nn

#: In-place random draws (``Tensor`` methods), skipped.
RANDOM_METHODS = frozenset({"normal_", "uniform_", "bernoulli_", "exponential_", "geometric_", "cauchy_",
                            "log_normal_", "random_"})


def _init_functions() -> frozenset[Any]:
    """``torch.nn.init`` functions that dispatch as torch functions and only draw random numbers."""
    from torch.nn import init

    return frozenset(getattr(init, n) for n in ("normal_", "uniform_", "kaiming_normal_", "kaiming_uniform_",
                                                "trunc_normal_", "xavier_normal_", "xavier_uniform_", "orthogonal_")
                     if hasattr(init, n))


class SkipRandomInit(TorchFunctionMode):
    """A torch function mode in which random initialisation returns its tensor unchanged.

    Attributes:
        skipped: The storages (data pointers) of the real tensors whose random draw was skipped: they hold
            uninitialised memory until something overwrites them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.skipped: set[int] = set()
        self._init = _init_functions()

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in self._init or getattr(func, "__name__", None) in RANDOM_METHODS:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor):
                if not tensor.is_meta:
                    self.skipped.add(tensor.untyped_storage().data_ptr())
                return tensor
        return func(*args, **kwargs)


def build_without_init(build: Callable[[], nn.Module]) -> tuple[nn.Module, set[int]]:
    """``build()`` under :class:`SkipRandomInit`: the model, and the storages left uninitialised."""
    mode = SkipRandomInit()
    with mode:
        model = build()
    return model, mode.skipped


def uninitialised_left(model: nn.Module, skipped: set[int]) -> str | None:
    """The name of a tensor of ``model`` that still holds a skipped draw, once the checkpoint is loaded.

    A loaded state dict overwrites every parameter and persistent buffer; a non-persistent buffer or a
    tensor kept as a plain attribute is not loaded, so it must not be one the build left uninitialised.
    """
    if not skipped:
        return None
    for path, sub in model.named_modules():
        held = [(n, sub._buffers.get(n)) for n in getattr(sub, "_non_persistent_buffers_set", ())]
        held += [(n, v) for n, v in vars(sub).items() if isinstance(v, torch.Tensor)]
        for name, tensor in held:
            if isinstance(tensor, torch.Tensor) and not tensor.is_meta \
                    and tensor.untyped_storage().data_ptr() in skipped:
                return f"{path + '.' if path else ''}{name}"
    return None
