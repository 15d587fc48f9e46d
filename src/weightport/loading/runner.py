"""The one load runner behind ``load_weights`` and ``build_and_load``.

Both run the same stages, written once here::

    fetch ─> read (or the cached conversion) ─> plan ─> fill the module ─> report
          ─> verify (optional) ─> store the conversion (optional) ─> log

and differ only in how the module is filled: an existing module is filled by copy; a module the
runner builds takes the fast path (meta build, tensors assigned) when it can, else it is built
normally and filled by copy, and the report says why (``fallback_reason``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightport.errors import UsageError
from weightport.loading.apply import apply_plan
from weightport.loading.conversion import (
    Conversion,
    cached_fetch,
    conversion_for,
    options_for_converted,
    store_conversion,
)
from weightport.loading.fast import FastPathUnavailable, _blockers, apply_fast, build_on_meta
from weightport.loading.gc_pause import cyclic_gc_paused
from weightport.loading.options import LoadOptions
from weightport.loading.planner import Planned, build_plan
from weightport.loading.source_io import FetchedSource, OpenedSource, fetch_source, read_source
from weightport.loading.state import load_state
from weightport.registry.resolve import SourceLike
from weightport.report import LoadPath, LoadReport

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger("weightport")


@dataclass
class _Prepared:
    """A source read for one model layout: what to plan with, and where a conversion would go."""

    opened: OpenedSource
    plan_options: LoadOptions
    conversion: Conversion | None  # a conversion to store after the load (None on a hit)
    note: str | None = None


@dataclass
class _Filled:
    """A module with the plan carried out on it, and how."""

    module: nn.Module
    planned: Planned
    prepared: _Prepared
    path: LoadPath
    planned_at: float  # perf_counter when planning ended and filling began
    fallback_reason: str | None = None
    snapshot: dict[str, Any] | None = None  # what a failed verification or store restores (an existing module)
    verify: Any = None  # a builder of the source architecture (or True) when the load is to be verified


#: Changes the options once the model is built (the mixin applies a LightningModule's ``strict_loading``).
Adjust = Callable[["nn.Module", LoadOptions], LoadOptions]


@cyclic_gc_paused()
def run_load(source: SourceLike, opts: LoadOptions, *, module: nn.Module | None = None,
             factory: Callable[[], nn.Module] | None = None,
             adjust: Adjust | None = None) -> tuple[nn.Module, LoadReport]:
    """Load ``source`` into ``module`` (by copy), or into a model ``factory`` builds (fast path when it can).

    Exactly one of ``module`` and ``factory`` is given. Nothing in an existing ``module`` changes
    when the load (or its verification) fails. ``adjust`` sees the built model before planning.
    """
    t0 = time.perf_counter()
    fs = fetch_source(source, opts)
    filled = _copy_into(module, fs, opts) if module is not None else _build(factory, fs, opts, adjust)
    t2 = time.perf_counter()
    opened, plan = filled.prepared.opened, filled.planned.plan
    fill_stage = "apply" if module is not None else "build_and_apply"
    timings = {**opened.timings, "plan": filled.planned_at - t0 - sum(opened.timings.values()),
               fill_stage: t2 - filled.planned_at, "total": t2 - t0}
    report = LoadReport.from_plan(plan, timings=timings, path=filled.path, fallback_reason=filled.fallback_reason)
    if filled.verify is not None:
        t3 = time.perf_counter()
        _verify(filled.module, report, opened, opts, filled.verify, restore=filled.snapshot)
        report.timings["verify"] = time.perf_counter() - t3
        report.timings["total"] += report.timings["verify"]
    if filled.prepared.conversion is not None:
        # Stored only after the load (and its verification) succeeded: a conversion in the cache is always
        # one that loaded right. A failed store leaves an existing module as it was.
        state = filled.module.state_dict()
        try:
            stored = store_conversion(filled.prepared.conversion,
                                      {r.target_key: state[r.target_key] for r in plan.loaded}, plan)
        except Exception:
            if filled.snapshot is not None:
                load_state(filled.module, filled.snapshot)
            raise
        report.notes.append(f"stored a cached conversion at {stored}")
    logger.info("%s", report)
    return filled.module, report


def _copy_into(module: nn.Module, fs: FetchedSource, opts: LoadOptions) -> _Filled:
    prepared = _prepare(module, fs, opts)
    planned = _plan(module, prepared)
    t1 = time.perf_counter()
    if _on_meta(module):
        # A copy into meta tensors is a no-op: a module built on meta (in configure_model) takes the
        # checkpoint's tensors by assignment, and what it does not cover gets its normal initialisation.
        try:
            blocker = _blockers(module)
            if blocker:
                raise FastPathUnavailable(blocker)
            apply_fast(module, planned, check_finite=opts.check_finite)
        except FastPathUnavailable as exc:
            raise UsageError(
                f"the module is on the meta device and cannot be filled from {planned.plan.source.uri}: {exc}",
                hint="build it on a real device, or load a checkpoint that covers every tensor on meta",
            ) from exc
        return _Filled(module, planned, prepared, "assign", t1)
    verify = _verification(module, planned, prepared, opts)
    # What a failed verification or conversion store puts back.
    keep = verify is not None or prepared.conversion is not None
    snapshot = {k: v.detach().clone() for k, v in module.state_dict().items()} if keep else None
    apply_plan(module, planned, check_finite=opts.check_finite)
    return _Filled(module, planned, prepared, "copy", t1, snapshot=snapshot, verify=verify)


def _on_meta(module: nn.Module) -> bool:
    return any(t.is_meta for t in [*module.parameters(), *module.buffers()])


def _build(factory: Callable[[], nn.Module] | None, fs: FetchedSource, opts: LoadOptions,
           adjust: Adjust | None = None) -> _Filled:
    import torch

    if factory is None:
        raise TypeError("run_load needs a module or a factory")
    rng = torch.get_rng_state()

    def restore_rng() -> None:  # re-initialisation draws the same numbers on both paths
        torch.set_rng_state(rng)

    prepared: _Prepared | None = None
    reason = None
    if opts.fast:
        try:
            module = build_on_meta(factory)
            if adjust is not None:
                opts, adjust = adjust(module, opts), None
            prepared = _prepare(module, fs, opts)
            planned = _plan(module, prepared)
            t1 = time.perf_counter()
            apply_fast(module, planned, check_finite=opts.check_finite, before_init=restore_rng)
            verify = _verification(module, planned, prepared, opts)
            return _Filled(module, planned, prepared, "assign", t1, verify=verify)
        except FastPathUnavailable as exc:
            logger.info("weightport: fast path unavailable, building normally: %s", exc)
            reason = str(exc)
    module = factory()
    if adjust is not None:
        opts = adjust(module, opts)
    # The meta build has the same keys and shapes: what was already read is planned again, not re-read.
    prepared = prepared or _prepare(module, fs, opts)
    planned = _plan(module, prepared)
    t1 = time.perf_counter()
    apply_plan(module, planned, check_finite=opts.check_finite, before_init=restore_rng)
    return _Filled(module, planned, prepared, "copy", t1, reason, verify=_verification(module, planned, prepared, opts))


def _prepare(module: nn.Module, fs: FetchedSource, opts: LoadOptions) -> _Prepared:
    """Read the source, or its cached conversion for this model's layout."""
    conversion = conversion_for(fs, module, opts)
    if conversion is not None and conversion.hit:
        opened = read_source(fs, opts, fetched=cached_fetch(fs, conversion))
        return _Prepared(opened, options_for_converted(opts), None,
                         f"read from the cached conversion {conversion.path}")
    return _Prepared(read_source(fs, opts), opts, conversion)


def _plan(module: nn.Module, prepared: _Prepared) -> Planned:
    planned = build_plan(module, prepared.opened, prepared.plan_options)
    if prepared.note:
        planned.plan.notes.append(prepared.note)
    return planned


def _verification(module: nn.Module, planned: Planned, prepared: _Prepared, opts: LoadOptions) -> Any:
    """What to verify the load against: the user's builder (or ``True``), the source architecture when
    ``verify="auto"`` finds it, or ``None``."""
    if opts.verify is False or opts.verify is None:
        return None
    if opts.verify != "auto":
        return opts.verify
    if not planned.plan.maps_another_layout:  # decided here: a load by its own names imports no verification
        return None
    from weightport.loading.equivalence import auto_verification

    decided = auto_verification(prepared.opened.source, prepared.opened.tensors, module)
    if decided.note:
        planned.plan.notes.append(decided.note)
    if decided.builder is None:
        return None
    planned.plan.notes.append(f"verified by default against {decided.against} (verify=False turns it off)")
    return decided.builder


def _verify(module: nn.Module, report: LoadReport, opened: OpenedSource, opts: LoadOptions, builder: Any, *,
            restore: dict[str, Any] | None) -> None:
    from weightport.loading.equivalence import verify_load

    try:
        result = verify_load(module, report, opened.source, opened.tensors, builder,
                             tolerance=opts.verify_tolerance, input_shape=opts.verify_input_shape)
    except BaseException:  # an interrupt too: a half-verified load is not left in the module
        if restore is not None:
            load_state(module, restore)  # a failed verification leaves an existing module as it was
        raise
    report.verification = {**result.to_dict(), **({"against": builder.against} if hasattr(builder, "against") else {})}


