"""Carry out a plan on a module (the copy path): produce the tensors, check them, load, re-initialise."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from weightport.errors import NonFiniteWeightsError
from weightport.keys import parent
from weightport.loading.state import load_state
from weightport.report import NONFINITE_HINT

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.planner import Planned


def produce_tensors(planned: Planned, *, check_finite: bool = False) -> dict[str, Any]:
    """Every tensor the plan loads, fitted and cast, keyed by target key.

    Raises:
        NonFiniteWeightsError: A tensor holds NaN or infinite values and ``check_finite`` is set, or
            fitting and a narrowing cast made a finite tensor infinite (refused either way).
    """
    plan = planned.plan
    tensors = {key: produce() for key, produce in planned.producers.items()}
    if check_finite:
        # One pass over the values: what the plan already checked (an unfitted tensor, cast) is not read again.
        bad = [k for k, t in tensors.items() if not _checked(planned.producers[k]) and not all_finite(t)]
    else:
        # The plan checked each source tensor a narrowing cast could overflow; a fitted one
        # (interpolated) may reach past its source's values, so its result is looked at too.
        bad = [k for k, t in tensors.items() if _fitted_overflow(planned.producers[k], t)]
    if bad:
        sources = {r.target_key: r.source_key for r in plan.loaded}
        raise NonFiniteWeightsError(
            f"{len(bad)} tensor(s) in {plan.source.uri} hold NaN or infinite values (or overflow the model's "
            "dtype): " + ", ".join(sources.get(k, k) for k in bad[:10]),
            hint=NONFINITE_HINT,
        )
    return tensors


def _checked(production: Any) -> bool:
    return bool(getattr(production, "finite_checked", False)) and production.fitter is None


def _fitted_overflow(production: Any, made: Any) -> bool:
    fitter = getattr(production, "fitter", None)
    if fitter is None or not narrowing(production.tensor, made.dtype) or all_finite(made):
        return False
    return all_finite(production.tensor)  # finite before, infinite after: the cast overflowed


def narrowing(tensor: Any, dtype: Any) -> bool:
    """Whether casting the float ``tensor`` to ``dtype`` can turn a finite value infinite."""
    import torch

    if tensor.dtype == dtype:  # most tensors: no cast at all
        return False
    return bool(tensor.is_floating_point() and dtype.is_floating_point and tensor.numel()
                and torch.finfo(tensor.dtype).max > torch.finfo(dtype).max)


def overflows(tensor: Any, dtype: Any) -> bool:
    """Whether a finite value of ``tensor`` is beyond what ``dtype`` holds (the cast would make it infinite).

    Reads the values only for a narrowing cast (float32 into float16, ...), which copies them anyway;
    NaN and infinities already in the checkpoint are not an overflow (``check_finite`` is about them).
    """
    import math

    import torch

    if not narrowing(tensor, dtype):
        return False
    limit = torch.finfo(dtype).max
    high = max(-float(tensor.amin()), float(tensor.amax()))  # no copy of the tensor
    if high <= limit:
        return False
    if math.isfinite(high):
        return True
    return bool(((tensor.abs() > limit) & torch.isfinite(tensor)).any())  # NaN/Inf present: the finite ones


def all_finite(tensor: Any) -> bool:
    """Whether a tensor holds no NaN or infinity (integer tensors always do).

    A sum is finite exactly when no element is NaN or infinite, unless it overflows; so the sum (in
    float32 for 16-bit types) is checked first, which streams the data once without allocating a
    mask, and only a non-finite sum pays for the exact element-wise check. CPU float32/float64/
    float16 tensors are summed by numpy, on the calling thread: torch's parallel reduction was ~10×
    slower on a busy machine (threads waiting on each other), see the README's "Loading speed".
    """
    import torch

    if not (tensor.is_floating_point() or tensor.is_complex()):
        return True
    accumulator = _numpy_accumulator(tensor)
    if accumulator is not None:
        import numpy as np

        values = tensor.numpy()
        if bool(np.isfinite(values.sum(dtype=accumulator))):
            return True
        return bool(np.isfinite(values).all())
    wide = torch.float32 if tensor.dtype in (torch.float16, torch.bfloat16) else None
    if bool(torch.isfinite(tensor.sum(dtype=wide))):
        return True
    return bool(torch.isfinite(tensor).all())


def _numpy_accumulator(tensor: Any) -> Any:
    """The numpy dtype to sum ``tensor`` in on the calling thread, or None when torch must sum it."""
    import numpy as np
    import torch

    if tensor.device.type != "cpu" or tensor.requires_grad:
        return None
    return {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float32}.get(tensor.dtype)


def apply_plan(module: nn.Module, planned: Planned, *, check_finite: bool = False,
               before_init: Callable[[], None] | None = None) -> None:
    """Copy the plan's tensors into ``module`` and re-initialise what the plan names.

    Nothing in ``module`` changes when the plan would fail or a tensor is refused.

    Args:
        module: The module to load into.
        planned: A plan made against ``module``, with its producers.
        check_finite: Also refuse NaN/Inf in the checkpoint's own values (reads them all).
        before_init: Called once before re-initialising (to set the RNG state).
    """
    plan = planned.plan
    plan.check()
    tensors = produce_tensors(planned, check_finite=check_finite)
    load_state(module, tensors)
    if before_init is not None:
        before_init()
    kept = reinitialize(module, [r.key for r in plan.reinitialized])
    if kept:
        plan.notes.append("no reset_parameters(), so these kept their current values instead of a re-initialisation: "
                          + ", ".join(kept))


def reinitialize(module: nn.Module, keys: list[str]) -> list[str]:
    """Give the modules owning ``keys`` their normal initialisation (``reset_parameters``).

    Returns:
        The module paths that have no ``reset_parameters`` and kept their current values.
    """
    import torch

    kept = []
    owners = dict.fromkeys(parent(k) for k in keys)
    for path in owners:
        owner = module.get_submodule(path) if path else module
        reset = getattr(owner, "reset_parameters", None)
        if callable(reset):
            with torch.no_grad():
                reset()
        else:
            kept.append(path)
    return kept
