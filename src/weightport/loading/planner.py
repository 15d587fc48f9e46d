"""Build a :class:`LoadPlan`: which checkpoint tensor goes to which target key, and what is done to it.

Stages, in order: rename rules (the source's registered layout, then the user's) → exact names →
the best submodule prefix → structural alignment of what is left (``match="auto"``) → selection
(``include``/``exclude``) → per pair: re-initialise, adapt the shape, or report a mismatch → cast to
the target dtype → missing / unexpected / coverage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from weightport.errors import DtypeError
from weightport.keys import matches_any
from weightport.layout.adapt.base import AdaptContext, tensor_adapters
from weightport.layout.head import head_keys
from weightport.layout.match import Match, match_keys
from weightport.layout.rename import apply_rules, load_rules
from weightport.loading.options import LoadOptions
from weightport.loading.source_io import OpenedSource
from weightport.report import LoadPlan, Mismatch, Reinit, TensorRecord

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger("weightport")

#: Buffers that older checkpoints lack and whose absence changes nothing worth failing for.
HARMLESS_MISSING = ("num_batches_tracked",)


def build_plan(module: nn.Module, opened: OpenedSource, options: LoadOptions) -> LoadPlan:
    """Plan loading ``opened`` into ``module`` under ``options`` without touching the module."""
    target = {k: v for k, v in module.state_dict(keep_vars=True).items()}
    keys, ops = _renamed_keys(opened, options)
    matches = _match(list(keys), list(target), options, opened)
    plan = LoadPlan(source=opened.info(), into=options.into or _common_into(matches), strict=options.strict,
                    min_coverage=options.min_coverage)
    plan.notes.extend(opened.extracted.notes)
    if opened.extracted.dropped:
        plan.notes.append(f"ignored {len(opened.extracted.dropped)} non-weight entries (training state)")
    heads = head_keys(module, list(target), into=options.into, reinit=options.reinit)
    explicit = set(heads) if options.reinit else set()
    used_targets: set[str] = set()
    used_sources: set[str] = set()
    excluded = 0
    for m in matches:
        orig = keys[m.source_key]
        if not _selected(orig, m.target_key, options):
            excluded += 1
            used_sources.add(m.source_key)
            continue
        used_sources.add(m.source_key)
        used_targets.add(m.target_key)
        tensor = opened.tensors[orig]
        dest = target[m.target_key]
        record_ops = list(opened.key_ops.get(orig, [])) + ops.get(m.source_key, [])
        if m.detail:
            record_ops.append(m.detail)
        if m.target_key in explicit:
            plan.reinitialized.append(Reinit(m.target_key, "named in reinit"))
            continue
        producer, shape_ops = _fit_shape(tensor, dest, m, module, opened, options, heads)
        if producer is None:
            if m.target_key in heads and tuple(tensor.shape) != tuple(dest.shape):
                plan.reinitialized.append(Reinit(m.target_key, _head_reason(tuple(tensor.shape), tuple(dest.shape))))
            else:
                plan.mismatched.append(Mismatch(opened.original_keys[orig], m.target_key,
                                                tuple(tensor.shape), tuple(dest.shape)))
            continue
        cast = _cast_op(tensor, dest, opened.original_keys[orig], options)
        plan.loaded.append(TensorRecord(
            source_key=opened.original_keys[orig], target_key=m.target_key,
            source_shape=tuple(tensor.shape), target_shape=tuple(dest.shape),
            source_dtype=_dt(tensor), target_dtype=_dt(dest), how=_how(m, ops),
            ops=record_ops + shape_ops + ([cast] if cast else []), confidence=m.confidence,
        ))
        plan._producers[m.target_key] = _with_cast(producer, dest.dtype)
    if excluded:
        plan.notes.append(f"left out {excluded} tensors by include/exclude")
    _missing_and_unexpected(plan, target, used_targets, used_sources, keys, opened, heads, explicit, options)
    plan.coverage = _coverage(module, {r.target_key for r in plan.loaded})
    return plan


def _head_reason(source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> str:
    if source_shape[1:] == target_shape[1:] and source_shape and target_shape:
        return f"head: {source_shape[0]} classes in the checkpoint, {target_shape[0]} in the model"
    return f"head: shape {source_shape} in the checkpoint, {target_shape} in the model"


def _renamed_keys(opened: OpenedSource, options: LoadOptions) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Apply the source's layout rules and the user's rename rules: ``{renamed: canonical}``, ops."""
    keys = {k: k for k in opened.tensors}
    ops: dict[str, list[str]] = {k: [] for k in keys}
    rules = load_rules(options.rename)
    if rules:
        renamed, rule_ops = apply_rules(list(keys), rules)
        keys = {new: keys[old] for new, old in renamed.items()}
        ops = {new: ops[old] + rule_ops[new] for new, old in renamed.items()}
    return keys, ops


def _match(source: list[str], target: list[str], options: LoadOptions, opened: OpenedSource) -> list[Match]:
    if options.match == "structural":
        return _structural(source, target, [], opened, options)
    matches = match_keys(source, target, into=options.into)
    if options.match == "auto":
        matches += _structural(source, target, matches, opened, options)
    return matches


def _structural(source: list[str], target: list[str], found: list[Match], opened: OpenedSource,
                options: LoadOptions) -> list[Match]:
    """Hook for structural alignment of the leftovers (see :mod:`weightport.layout.structural`)."""
    try:
        from weightport.layout.structural_match import align_leftovers
    except ImportError:
        return []
    return align_leftovers(source, target, found, opened, options)


def _common_into(matches: list[Match]) -> str | None:
    """The submodule most matches were placed under, when the prefix search found one."""
    from collections import Counter

    adds = Counter(m.add for m in matches if m.how in ("prefix", "exact"))
    if not adds:
        return None
    add, _ = adds.most_common(1)[0]
    return add.rstrip(".") or None


def _selected(source_key: str, target_key: str, options: LoadOptions) -> bool:
    if options.include and not (matches_any(source_key, options.include) or matches_any(target_key, options.include)):
        return False
    return not (options.exclude and (matches_any(source_key, options.exclude) or matches_any(target_key, options.exclude)))


def _fit_shape(tensor: torch.Tensor, dest: torch.Tensor, m: Match, module: nn.Module, opened: OpenedSource,
               options: LoadOptions, heads: set[str]) -> tuple[Callable[[], Any] | None, list[str]]:
    """A producer of the tensor in the target's shape, and the adapter ops; ``None`` when nothing fits."""
    target_shape = tuple(dest.shape)
    if tuple(tensor.shape) == target_shape:
        return (lambda: tensor), []
    ctx = AdaptContext(
        source_key=m.source_key, target_key=m.target_key, target_shape=target_shape, module=module,
        source=opened.source, roles=frozenset({"head"} if m.target_key in heads else set()),
        options={"classes": options.classes},
    )
    for adapter in tensor_adapters():
        if not options.adapters.get(adapter.name, True):
            continue
        if adapter.applies(tensor, ctx):
            return (lambda a=adapter: a.adapt(tensor, ctx)), [adapter.describe(tensor, ctx)]
    return None, []


def _dt(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _cast_op(tensor: torch.Tensor, dest: torch.Tensor, key: str, options: LoadOptions) -> str | None:
    if tensor.dtype == dest.dtype:
        return None
    if not tensor.dtype.is_floating_point and tensor.dtype != dest.dtype and dest.dtype.is_floating_point \
            and not tensor.dtype.is_complex and tensor.dtype != _bool():
        raise DtypeError(
            f"checkpoint tensor {key!r} is {_dt(tensor)} but the model expects {_dt(dest)}: "
            "integer weights would change meaning as floats",
            hint="exclude it with exclude=[...] or convert the checkpoint explicitly",
        )
    op = f"cast {_dt(tensor)}->{_dt(dest)}"
    if _lossy(tensor.dtype, dest.dtype):
        if options.lossy_cast == "error":
            raise DtypeError(f"casting {key!r} from {_dt(tensor)} to {_dt(dest)} loses precision",
                             hint="pass lossy_cast='allow' (or 'warn') to accept it")
        if options.lossy_cast == "warn":
            from weightport.warnings import LossyCastWarning, warn

            warn(f"casting {key!r} from {_dt(tensor)} to {_dt(dest)} loses precision", LossyCastWarning)
        op += " (lossy)"
    return op


def _bool() -> Any:
    import torch

    return torch.bool


def _lossy(src: Any, dst: Any) -> bool:
    import torch

    if not (src.is_floating_point and dst.is_floating_point):
        return False
    return torch.finfo(dst).bits < torch.finfo(src).bits or (
        torch.finfo(dst).bits == torch.finfo(src).bits and src != dst
    )


def _with_cast(producer: Callable[[], Any], dtype: Any) -> Callable[[], Any]:
    def produce() -> Any:
        value = producer()
        return value if value.dtype == dtype else value.to(dtype)

    return produce


def _how(m: Match, ops: dict[str, list[str]]) -> str:
    if m.how == "structural":
        return "structural"
    if ops.get(m.source_key):
        return "rename"
    return m.how


def _missing_and_unexpected(plan: LoadPlan, target: dict[str, Any], used_targets: set[str], used_sources: set[str],
                            keys: dict[str, str], opened: OpenedSource, heads: set[str], explicit: set[str],
                            options: LoadOptions) -> None:
    reinit_done = {r.key for r in plan.reinitialized}
    for key in target:
        if key in used_targets or key in reinit_done:
            continue
        if key in explicit:
            plan.reinitialized.append(Reinit(key, "named in reinit"))
        elif key in heads:
            plan.reinitialized.append(Reinit(key, "head not in checkpoint"))
        elif key.rsplit(".", 1)[-1] in HARMLESS_MISSING:
            continue
        elif options.include and not matches_any(key, options.include):
            continue  # a selective load leaves the rest on purpose
        elif options.exclude and matches_any(key, options.exclude):
            continue
        else:
            plan.missing.append(key)
    plan.unexpected = [opened.original_keys[keys[k]] for k in keys if k not in used_sources]


def _coverage(module: nn.Module, loaded: set[str]) -> float:
    total = 0
    covered = 0
    for name, param in module.named_parameters():
        total += param.numel()
        if name in loaded:
            covered += param.numel()
    return covered / total if total else 1.0
