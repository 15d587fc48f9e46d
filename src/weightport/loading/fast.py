"""The fast path: build the model on the meta device, place checkpoint tensors without a copy.

A normal build randomly initialises every parameter (most of the time of a naive load) and then
``load_state_dict`` copies the checkpoint over it (a second copy in memory). Here the model is built
under ``torch.device("meta")`` (no memory, no init), the checkpoint tensors — memory-mapped from the
file and already in the target dtype — are *assigned* as the parameters, and only what the
checkpoint does not cover is materialised and given its module's normal initialisation.

When a model cannot take this path (tied parameters, non-persistent buffers nothing can rebuild,
a module without ``reset_parameters`` holding uncovered weights, a constructor that fails on meta),
the caller builds it normally and copies; the report says which path ran and why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from weightport.loading.apply import produce_tensors
from weightport.loading.meta_init import skip_meta_init
from weightport.loading.state import load_state

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.planner import Planned


class FastPathUnavailable(Exception):
    """Internal signal: this model must take the slow path (the message says why)."""


def build_on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """Call ``factory`` with every tensor created on the meta device (no memory, no initialisation).

    Raises:
        FastPathUnavailable: The constructor failed on meta, or made real tensors anyway.
    """
    import torch

    try:
        with torch.device("meta"), skip_meta_init():  # no values on meta: initialising them is wasted work
            module = factory()
    except Exception as exc:  # any constructor that needs real values
        raise FastPathUnavailable(f"the model cannot be built on the meta device ({type(exc).__name__}: {exc})")\
            from exc
    blockers = _blockers(module)
    if blockers:
        raise FastPathUnavailable(blockers)
    return module


def _blockers(module: nn.Module) -> str | None:
    import torch

    seen: dict[int, str] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            return f"tied parameters ({seen[id(param)]} and {name})"
        seen[id(param)] = name
    for path, sub in module.named_modules():
        stray = _meta_attribute(sub)
        if stray is not None:
            # e.g. torchmetrics states: tensors held as plain attributes, which no load or init reaches
            return f"{type(sub).__name__} at {path or 'the root'} holds tensor {stray!r} outside its parameters " \
                "and buffers"
        for name in getattr(sub, "_non_persistent_buffers_set", ()):
            buf = sub._buffers.get(name)
            rebuildable = hasattr(sub, "init_non_persistent_buffers")
            if buf is not None and buf.device == torch.device("meta") and not rebuildable:
                return f"non-persistent buffer {path + '.' if path else ''}{name} cannot be rebuilt"
    return None


#: Attribute values that are never a tensor nor hold one: skipped without a look (a meta build's
#: modules have ~20 attributes each, hundreds of modules; this check runs on every fast load).
_PLAIN = frozenset({bool, int, float, str, type(None)})


@functools.cache
def _module_own() -> frozenset[str]:
    """The attributes every ``nn.Module`` has: its parameters, buffers and submodules (registered, so
    not strays) and torch's hook tables and flags, which hold no tensors."""
    from torch import nn

    return frozenset(vars(nn.Module()))


def _meta_attribute(sub: nn.Module) -> str | None:
    """The name of a meta tensor ``sub`` keeps as a plain attribute (or in a dict/list attribute)."""
    import torch

    own = _module_own()
    for name, value in vars(sub).items():
        if type(value) in _PLAIN or name in own:
            continue
        if isinstance(value, torch.Tensor):
            if value.is_meta:
                return name
            continue
        values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        for v in values:
            if isinstance(v, torch.Tensor) and v.is_meta:
                return name
    return None


def apply_fast(module: nn.Module, planned: Planned, *, check_finite: bool = False,
               before_init: Callable[[], None] | None = None) -> None:
    """Assign the plan's tensors to a meta-built ``module`` and initialise everything else.

    Args:
        module: A model built with :func:`build_on_meta`.
        planned: The plan, made against ``module``, with its producers.
        check_finite: Also refuse NaN/Inf in the checkpoint's own values (reads them all).
        before_init: Called once before the first initialisation (to set the RNG state).

    Raises:
        FastPathUnavailable: Something uncovered has no way to be initialised.
    """
    planned.plan.check()
    tensors = produce_tensors(planned, check_finite=check_finite)
    _check_initialisable(module, set(tensors))
    load_state(module, tensors, assign=True)
    if before_init is not None:
        before_init()
    _materialise_rest(module)


def _direct_meta(sub: nn.Module) -> list[tuple[str, Any]]:
    tensors = list(sub._parameters.items()) + list(sub._buffers.items())
    return [(n, t) for n, t in tensors if t is not None and t.is_meta]


def _check_initialisable(module: nn.Module, loaded: set[str]) -> None:
    for path, sub in module.named_modules():
        prefix = f"{path}." if path else ""
        uncovered = [n for n, _ in _direct_meta(sub) if prefix + n not in loaded
                     and n not in getattr(sub, "_non_persistent_buffers_set", ())]
        if uncovered and not callable(getattr(sub, "reset_parameters", None)):
            raise FastPathUnavailable(
                f"{prefix}{uncovered[0]} is not in the checkpoint and {type(sub).__name__} has no reset_parameters()"
            )


def materialise(module: nn.Module) -> None:
    """Give every tensor of ``module`` still on the meta device real (CPU) memory and its module's
    normal initialisation (``reset_parameters``, ``init_non_persistent_buffers``); the rest is kept."""
    _materialise_rest(module)


def _materialise_rest(module: nn.Module) -> None:
    """Give every tensor still on meta real memory and its module's normal initialisation."""
    import torch
    from torch import nn

    for _, sub in module.named_modules():
        pending = _direct_meta(sub)
        if not pending:
            continue
        # reset_parameters() initialises all of a module's tensors: park the loaded ones meanwhile.
        loaded = {n: t for n, t in list(sub._parameters.items()) + list(sub._buffers.items())
                  if t is not None and not t.is_meta}
        for name, tensor in list(sub._parameters.items()):
            if tensor is not None:
                sub._parameters[name] = nn.Parameter(torch.empty_like(tensor, device="cpu"),
                                                     requires_grad=tensor.requires_grad)
        for name, tensor in list(sub._buffers.items()):
            if tensor is not None:
                sub._buffers[name] = torch.empty_like(tensor, device="cpu")
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            with torch.no_grad():
                reset()
        rebuild = getattr(sub, "init_non_persistent_buffers", None)
        if callable(rebuild):
            rebuild()
        for name, tensor in loaded.items():
            if name in sub._parameters:
                sub._parameters[name] = tensor
            else:
                sub._buffers[name] = tensor
