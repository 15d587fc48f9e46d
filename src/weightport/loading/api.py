"""The public functions: ``load_weights``, ``plan`` and ``read_state_dict``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from weightport.loading.apply import apply_plan
from weightport.loading.conversion import (
    Conversion,
    cached_fetch,
    conversion_for,
    options_for_converted,
    store_conversion,
)
from weightport.loading.fast import FastPathUnavailable, apply_fast, build_on_meta
from weightport.loading.options import LoadOptions
from weightport.loading.planner import build_plan
from weightport.loading.source_io import FetchedSource, OpenedSource, fetch_source, open_source, read_source
from weightport.loading.state import load_state
from weightport.loading.trained import warn_replaced
from weightport.registry.resolve import SourceLike
from weightport.report import LoadPlan, LoadReport

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger("weightport")

M = TypeVar("M", bound="nn.Module")


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
        The plan: print it, assert on it, ``to_dict()`` it; ``plan.ok`` says whether a load would succeed.
    """
    opts = LoadOptions.build(options, **kwargs)
    return build_plan(module, open_source(source, opts), opts)


def load_weights(module: nn.Module, source: SourceLike, *, options: LoadOptions | Mapping[str, Any] | None = None,
                 **kwargs: Any) -> LoadReport:
    """Load ``source`` into ``module`` in place and report what was done.

    Takes the same options as :func:`plan`. Nothing in ``module`` changes when the load fails.

    Raises:
        ShapeMismatchError: A tensor does not fit and no rule adapts or re-initialises it.
        StrictLoadError: ``strict`` and some model weights are not in the checkpoint, or nothing matched.
        WeightportError: Any other failure to resolve, fetch or read the source.
    """
    opts = LoadOptions.build(options, **kwargs)
    t0 = time.perf_counter()
    fs = fetch_source(source, opts)
    prepared = _prepare(module, fs, opts)
    the_plan = _plan(module, prepared)
    opened, conversion = prepared.opened, prepared.conversion
    t1 = time.perf_counter()
    snapshot = {k: v.detach().clone() for k, v in module.state_dict().items()} if opts.verify else None
    apply_plan(module, the_plan, check_finite=opts.check_finite)
    t2 = time.perf_counter()
    report = LoadReport.from_plan(the_plan, path="copy",
                                  timings={**opened.timings, "plan": t1 - t0 - sum(opened.timings.values()),
                                           "apply": t2 - t1, "total": t2 - t0})
    if opts.verify:
        try:
            report.verification = _verify(module, report, opened, opts)
        except Exception:
            load_state(module, snapshot or {})  # a failed verification leaves the module as it was
            raise
    _store(conversion, module, the_plan)
    logger.info("%s", report)
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
    report's ``path`` says which ran and why. The RNG state is the same for re-initialisation on
    both paths, so both give identical models. ``adjust`` may change the options once the model is
    built (the mixin applies a LightningModule's ``strict_loading``).
    """
    import torch

    opts = LoadOptions.build(options, **kwargs)
    rng = torch.get_rng_state()

    def restore_rng() -> None:
        torch.set_rng_state(rng)

    t0 = time.perf_counter()
    fs = fetch_source(source, opts)
    module: M | None = None
    prepared: _Prepared | None = None
    path = "copy"
    if opts.fast:
        try:
            module = build_on_meta(factory)  # type: ignore[assignment]
            if adjust is not None:
                opts, adjust = adjust(module, opts), None  # type: ignore[arg-type]
            prepared = _prepare(module, fs, opts)  # type: ignore[arg-type]
            the_plan = _plan(module, prepared)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            apply_fast(module, the_plan, check_finite=opts.check_finite, before_init=restore_rng)  # type: ignore[arg-type]
            path = "assign"
        except FastPathUnavailable as exc:
            logger.info("weightport: fast path unavailable, building normally: %s", exc)
            module, path = None, f"copy (fast path unavailable: {exc})"
    if module is None:
        module = factory()
        if adjust is not None:
            opts = adjust(module, opts)
        # The meta build has the same keys and shapes: what was already read is planned again, not re-read.
        prepared = prepared or _prepare(module, fs, opts)
        the_plan = _plan(module, prepared)
        t1 = time.perf_counter()
        apply_plan(module, the_plan, check_finite=opts.check_finite, before_init=restore_rng)
    assert prepared is not None  # for the type checker: both paths above prepared the source
    opened, conversion = prepared.opened, prepared.conversion
    t2 = time.perf_counter()
    timings = {**opened.timings, "plan": t1 - t0 - sum(opened.timings.values()), "build_and_apply": t2 - t1,
               "total": t2 - t0}
    report = LoadReport.from_plan(the_plan, timings=timings, path=path)
    if opts.verify:
        report.verification = _verify(module, report, opened, opts)
    _store(conversion, module, the_plan)
    logger.info("%s", report)
    return module, report


@dataclass
class _Prepared:
    """A source read for one model layout: what to plan with, and where a conversion would go."""

    opened: OpenedSource
    plan_options: LoadOptions
    conversion: Conversion | None  # a conversion to store after the load (None on a hit)
    note: str | None = None


def _prepare(module: nn.Module, fs: FetchedSource, opts: LoadOptions) -> _Prepared:
    """Read the source, or its cached conversion for this model's layout."""
    conversion = conversion_for(fs, module, opts)
    if conversion is not None and conversion.hit:
        opened = read_source(fs, opts, fetched=cached_fetch(fs, conversion))
        return _Prepared(opened, options_for_converted(opts), None,
                         f"read from the cached conversion {conversion.path}")
    return _Prepared(read_source(fs, opts), opts, conversion)


def _plan(module: nn.Module, prepared: _Prepared) -> LoadPlan:
    the_plan = build_plan(module, prepared.opened, prepared.plan_options)
    if prepared.note:
        the_plan.notes.append(prepared.note)
    return the_plan


def _store(conversion: Conversion | None, module: nn.Module, the_plan: LoadPlan) -> None:
    if conversion is not None:
        stored = store_conversion(conversion, module, the_plan)
        the_plan.notes.append(f"stored a cached conversion at {stored}")


def _verify(module: nn.Module, report: LoadReport, opened: Any, opts: LoadOptions) -> dict[str, Any]:
    from weightport.loading.equivalence import verify_load

    result = verify_load(module, report, opened.source, opened.tensors, opts.verify,
                         tolerance=opts.verify_tolerance, input_shape=opts.verify_input_shape)
    return result.to_dict()


def read_state_dict(source: SourceLike, *, options: LoadOptions | Mapping[str, Any] | None = None,
                    **kwargs: Any) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors with clean keys (container found, wrapper prefixes stripped).

    Accepts ``ema``, ``allow_globals`` and ``fetch`` options.
    """
    opts = LoadOptions.build(options, **kwargs)
    return dict(open_source(source, opts).tensors)
