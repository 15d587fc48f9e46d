"""The public functions: ``plan``, ``apply``, ``load_weights``, ``build_and_load`` and ``read_state_dict``."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from weightport.errors import UsageError
from weightport.loading.apply import apply_plan
from weightport.loading.gc_pause import cyclic_gc_paused
from weightport.loading.options import LoadOptions
from weightport.loading.planner import Planned, Production, build_plan
from weightport.loading.runner import run_load
from weightport.loading.source_io import fetch_source, open_source
from weightport.loading.trained import warn_replaced
from weightport.registry.resolve import SourceLike
from weightport.report import LoadPlan, LoadReport

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger("weightport")

M = TypeVar("M", bound="nn.Module")


@dataclass(frozen=True)
class _Pending:
    """What carries out a plan made by :func:`plan`, kept beside it (the plan itself is data)."""

    plan: weakref.ref[LoadPlan]
    producers: dict[str, Production]
    options: LoadOptions
    layout: dict[str, tuple[tuple[int, ...], str]]  # the planned module's keys -> (shape, dtype)


#: Plans made in this process that :func:`apply` can carry out, by ``id(plan)``; an entry goes with its plan.
_PENDING: dict[int, _Pending] = {}


@cyclic_gc_paused()
def plan(module: nn.Module, source: SourceLike, *, options: LoadOptions | Mapping[str, Any] | None = None,
         **kwargs: Any) -> LoadPlan:
    """Plan loading ``source`` into ``module`` without changing it (a dry run).

    Args:
        module: The model to load into.
        source: A source string (``"resnet18"``, ``"hf:org/repo"``, a path...), a path or a ``Source``.
        options: A :class:`LoadOptions` or mapping of options; keyword arguments override it.
        **kwargs: Any :class:`LoadOptions` field (``into``, ``strict``, ``rename``, ``include``,
            ``exclude``, ``reinit``, ...).

    Returns:
        The plan: print it, assert on it, ``to_dict()`` it; ``plan.ok`` says whether a load would succeed;
        :func:`apply` carries it out.
    """
    opts = LoadOptions.build(options, **kwargs)
    planned = build_plan(module, open_source(source, opts), opts)
    _remember(planned, module, opts)
    return planned.plan


def apply(plan: LoadPlan, module: nn.Module) -> LoadReport:
    """Carry out a plan made by :func:`plan` on ``module`` (by copy), and report what was done.

    ``module`` is the model the plan was made against, or one with exactly its keys, shapes and
    dtypes. Nothing in ``module`` changes when the plan would fail.

    Raises:
        UsageError: The plan was not made by :func:`plan` in this process (a copy, or read back from
            JSON), or ``module`` is laid out differently from the model it was made against.
        ShapeMismatchError: The plan has tensors that do not fit (``plan.ok`` is false).
        StrictLoadError: ``strict`` and the plan leaves model weights missing, or nothing matched.
    """
    pending = _PENDING.get(id(plan))
    if pending is None or pending.plan() is not plan:
        raise UsageError("this plan was not made by weightport.plan() in this process (a copy, or read from JSON)",
                         hint="plan again with weightport.plan(module, source), or load with "
                         "weightport.load_weights(module, source)")
    if _layout(module) != pending.layout:
        raise UsageError("the module is laid out differently (keys, shapes or dtypes) from the one the plan was "
                         "made against", hint="plan against this module: weightport.plan(module, source)")
    t0 = time.perf_counter()
    apply_plan(module, Planned(plan, pending.producers), check_finite=pending.options.check_finite)
    seconds = time.perf_counter() - t0
    report = LoadReport.from_plan(plan, timings={"apply": seconds, "total": seconds}, path="copy")
    logger.info("%s", report)
    return report


def _remember(planned: Planned, module: nn.Module, opts: LoadOptions) -> None:
    key = id(planned.plan)
    _PENDING[key] = _Pending(weakref.ref(planned.plan), planned.producers, opts, _layout(module))
    weakref.finalize(planned.plan, _PENDING.pop, key, None)


def _layout(module: nn.Module) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (tuple(v.shape), str(v.dtype)) for k, v in module.state_dict(keep_vars=True).items()}


def load_weights(module: nn.Module, source: SourceLike, *, options: LoadOptions | Mapping[str, Any] | None = None,
                 **kwargs: Any) -> LoadReport:
    """Load ``source`` into ``module`` in place and report what was done.

    Takes the same options as :func:`plan`. Nothing in ``module`` changes when the load fails.

    A module whose parameters are DTensors (sharded with FSDP2 ``fully_shard`` or tensor parallel,
    on meta or materialised) is loaded by every rank together: the same plan on the global shapes,
    each rank reading only its own shards from the memory-mapped file, one fetch per machine (see
    :mod:`weightport.loading.sharded`). Every rank of the process group must call it.

    Raises:
        ShapeMismatchError: A tensor does not fit and no rule adapts or re-initialises it.
        StrictLoadError: ``strict`` and some model weights are not in the checkpoint, or nothing matched.
        WeightportError: Any other failure to resolve, fetch or read the source.
    """
    from weightport.loading.sharded import flattened_by_fsdp1, holds_dtensors, load_sharded

    opts = LoadOptions.build(options, **kwargs)
    if holds_dtensors(module):  # FSDP2 / tensor parallel: each rank reads only its shards
        report = load_sharded(module, source, opts, lambda: fetch_source(source, opts))
    else:
        fsdp1 = flattened_by_fsdp1(module)  # refused unless its full state dict loads right
        report = run_load(source, opts, module=module)[1]
        if fsdp1:
            report.notes.append("FSDP1 (FullyShardedDataParallel): loaded through its full state dict; every rank "
                                "read the whole checkpoint (FSDP2 fully_shard reads only each rank's shards)")
    if not opts.reinit:
        warn_replaced(report, advice="build the model with the checkpoint's shapes to keep them, or pass "
                      "reinit=[...] to say it is on purpose")
    return report


def build_and_load(factory: Callable[[], M], source: SourceLike, *,
                   options: LoadOptions | Mapping[str, Any] | None = None,
                   adjust: Callable[[M, LoadOptions], LoadOptions] | None = None,
                   **kwargs: Any) -> tuple[M, LoadReport]:
    """Build a model with ``factory`` and load ``source`` into it, on the fast path when possible.

    The fast path builds the model on the meta device and assigns the checkpoint's tensors (no
    random initialisation, no second copy); what the checkpoint does not cover gets its module's
    normal initialisation. Models that cannot take it are built normally and loaded by copy; the
    report's ``path`` says which ran and ``fallback_reason`` why. The RNG state is the same for
    re-initialisation on both paths, so both give identical models. ``adjust`` may change the options
    once the model is built (the mixin applies a LightningModule's ``strict_loading``).
    """
    module, report = run_load(source, LoadOptions.build(options, **kwargs), factory=factory,
                              adjust=adjust)  # type: ignore[arg-type]
    return module, report  # type: ignore[return-value]  # the factory's own type


def read_state_dict(source: SourceLike, *, options: LoadOptions | Mapping[str, Any] | None = None,
                    **kwargs: Any) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors with clean keys (container found, wrapper prefixes stripped).

    Accepts ``ema``, ``allow_globals`` and ``fetch`` options.
    """
    opts = LoadOptions.build(options, **kwargs)
    return dict(open_source(source, opts).tensors)
