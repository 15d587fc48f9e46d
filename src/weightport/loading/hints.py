"""What to change so that the model computes what the source architecture computes (a hint that works).

A verification refused for a hyper-parameter the state dict does not hold (norm ``eps``) names the
difference; this module says how to build the model with the source's value, in the model's own
library when weightport knows it: ``timm.create_model(name, bn_eps=...)`` for the timm families whose
builders take it, ``norm_layer=partial(nn.BatchNorm2d, eps=...)`` for torchvision builders that take a
``norm_layer``. A library call is suggested only after building the model that way (on the meta
device, nothing initialised) and finding the difference gone; otherwise the hint says what to set on
the built model, which always works for ``eps``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from weightport.loading.hyperparams import Difference, _norm_kind, hyperparameter_differences

if TYPE_CHECKING:
    from torch import nn

GENERIC = "build the model with the source's values named above"

#: Norm kinds (as :func:`~weightport.loading.hyperparams.hyperparameter_differences` names them) → the
#: torch class whose eps a hint sets.
_NORM_CLASSES = {"BatchNorm": "nn.BatchNorm2d", "LayerNorm": "nn.LayerNorm", "GroupNorm": "nn.GroupNorm"}


def hyperparameter_hint(differences: list[Difference], reference: nn.Module, target: nn.Module,
                        pairs: Mapping[str, str]) -> str:
    """How to build ``target`` with the source's hyper-parameters, as specific as weightport can prove."""
    eps = _single_eps(differences)
    if eps is None:
        return GENERIC
    kind, value = eps
    for call, build in _library_calls(target, kind, value):
        rebuilt = _meta_build(build)
        if rebuilt is not None and _holds(rebuilt, pairs.values()) \
                and not hyperparameter_differences(reference, rebuilt, pairs):
            return f"build the model as {call} (with its other arguments as they are)"
    cls = _NORM_CLASSES.get(kind)
    if cls is None:
        return GENERIC
    from torch import nn

    differing = {d.target_module for d in differences}
    norms = {n: m for n, m in target.named_modules() if _norm_kind(m) == kind}
    if kind == "BatchNorm" and not all(isinstance(m, nn.BatchNorm2d) for m in norms.values()):
        cls = "nn.modules.batchnorm._BatchNorm"
    if differing == set(norms):
        return (f"set eps={value} on the model's {kind} layers after building it: "
                f"for m in model.modules(): isinstance(m, {cls}) and setattr(m, 'eps', {value})")
    return f"set eps={value} on the {len(differing)} {kind} layers named above"


def _holds(model: nn.Module, paths: Any) -> bool:
    """Whether ``model`` has a module at every path (a hint is proven only on the modules the load paired)."""
    for path in paths:
        try:
            model.get_submodule(path)
        except AttributeError:
            return False
    return True


def _single_eps(differences: list[Difference]) -> tuple[str, float] | None:
    """``(norm kind, source eps)`` when every difference is one norm kind's eps with one source value."""
    kinds = {(d.kind, d.source_value) for d in differences}
    if len(kinds) != 1:
        return None
    ((kind, value),) = kinds
    if not kind.endswith(" eps"):
        return None
    try:
        return kind[: -len(" eps")], float(value)
    except ValueError:
        return None


def _library_calls(target: nn.Module, kind: str, value: float) -> list[tuple[str, Callable[[], nn.Module]]]:
    """Calls of the model's own library that might build it with ``kind`` eps ``value``: ``(text, builder)``."""
    arch = (getattr(target, "pretrained_cfg", None) or {}).get("architecture")
    if arch and type(target).__module__.startswith("timm."):
        if kind != "BatchNorm":
            return []

        def timm_build() -> nn.Module:
            import timm

            return timm.create_model(arch, pretrained=False, bn_eps=value)

        return [(f"timm.create_model({arch!r}, bn_eps={value})", timm_build)]
    if type(target).__module__.startswith("torchvision.") and kind == "BatchNorm":
        return [(f"torchvision.models.{name}(norm_layer=partial(nn.BatchNorm2d, eps={value}))", build)
                for name, build in _torchvision_builders(target, value)]
    return []


def _torchvision_builders(target: nn.Module, eps: float) -> list[tuple[str, Callable[[], nn.Module]]]:
    """torchvision's builders of ``target``'s architecture (by its key layout), each with a norm_layer of ``eps``."""
    from functools import partial

    from weightport.layout.known import recognise_names

    # By key names only: a re-initialised head has another shape than the architecture's own.
    names = [a.name for a in recognise_names(target.state_dict()) if a.library == "torchvision"]

    def builder(name: str) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            import torchvision
            from torch import nn

            return torchvision.models.get_model(name, weights=None, norm_layer=partial(nn.BatchNorm2d, eps=eps))

        return build

    return [(name, builder(name)) for name in names]


def _meta_build(build: Callable[[], nn.Module]) -> nn.Module | None:
    from weightport.loading.noinit import build_without_init

    try:
        from weightport.loading.fast import build_on_meta

        return build_on_meta(lambda: build_without_init(build)[0])
    except Exception:
        try:
            return build_without_init(build)[0]  # torchvision's RegNet: not on meta; on the CPU, nothing drawn
        except Exception:  # the builder does not take the argument: no such hint
            return None
