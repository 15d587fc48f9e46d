"""Carry out a plan on a module (the copy path): produce the tensors, check them, load, re-initialise."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from weightport.errors import NonFiniteWeightsError
from weightport.keys import parent
from weightport.loading.state import load_state

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.planner import Planned


def produce_tensors(planned: Planned, *, check_finite: bool = True) -> dict[str, Any]:
    """Every tensor the plan loads, fitted and cast, keyed by target key.

    Raises:
        NonFiniteWeightsError: A tensor holds NaN or infinite values and ``check_finite`` is set.
    """
    plan = planned.plan
    tensors = {key: produce() for key, produce in planned.producers.items()}
    if check_finite:
        # One pass over the values: what the plan already checked (an unfitted tensor, cast) is not read again.
        bad = [k for k, t in tensors.items() if not _checked(planned.producers[k]) and not all_finite(t)]
        if bad:
            sources = {r.target_key: r.source_key for r in plan.loaded}
            raise NonFiniteWeightsError(
                f"{len(bad)} tensor(s) in {plan.source.uri} hold NaN or infinite values: "
                + ", ".join(sources.get(k, k) for k in bad[:10]),
                hint="the checkpoint is damaged or diverged; pass check_finite=False to load it anyway",
            )
    return tensors


def _checked(production: Any) -> bool:
    return bool(getattr(production, "finite_checked", False)) and production.fitter is None


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


class FiniteScan:
    """:func:`all_finite` of a checkpoint's tensors, computed on a thread of its own while the model
    is built on the meta device (the sums release the GIL, so a free core reads the weights while
    Python builds the model). The planner asks :meth:`finite` for each tensor it loads; it waits for
    the scan, and a tensor the scan did not cover (or failed on) is checked on the calling thread.
    The check is the same; only when it runs changes.
    """

    def __init__(self, tensors: Iterable[Any]) -> None:
        import threading

        self._tensors = list(tensors)  # kept alive, so an id() below is never reused
        self._results: dict[int, bool] = {}
        self._thread = threading.Thread(target=self._run, name="weightport-finite-scan", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for tensor in self._tensors:
                self._results[id(tensor)] = all_finite(tensor)
        except Exception:
            return

    def finite(self, tensor: Any) -> bool:
        """Whether ``tensor`` holds no NaN or infinity (from the scan, or checked now)."""
        self._thread.join()
        known = self._results.get(id(tensor))
        return all_finite(tensor) if known is None else known


def _numpy_accumulator(tensor: Any) -> Any:
    """The numpy dtype to sum ``tensor`` in on the calling thread, or None when torch must sum it."""
    import numpy as np
    import torch

    if tensor.device.type != "cpu" or tensor.requires_grad:
        return None
    return {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float32}.get(tensor.dtype)


def apply_plan(module: nn.Module, planned: Planned, *, check_finite: bool = True,
               before_init: Callable[[], None] | None = None) -> None:
    """Copy the plan's tensors into ``module`` and re-initialise what the plan names.

    Nothing in ``module`` changes when the plan would fail or a tensor is refused.

    Args:
        module: The module to load into.
        planned: A plan made against ``module``, with its producers.
        check_finite: Refuse NaN/Inf weights.
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
