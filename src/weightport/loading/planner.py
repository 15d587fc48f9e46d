"""Build a :class:`LoadPlan`: which checkpoint tensor goes to which target key, and what is done to it.

Stages, in order: rename rules (the source's registered layout, then the user's) → timm's own
checkpoint filter for a timm model in the target, when names alone do not place the checkpoint and
the filter's output fits exactly (:mod:`weightport.layout.timm_filters`) → exact names →
the best submodule prefix → structural alignment of what is left (``match="auto"``) → selection
(``include``/``exclude``) → per pair: re-initialise, adapt the shape, or report a mismatch → cast to
the target dtype → missing / unexpected / coverage.
"""

from __future__ import annotations

import difflib
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightport.errors import AmbiguousMappingError, InvalidOptionError
from weightport.keys import fold_keys, is_training_state, matches_any, parent
from weightport.layout.derived import is_derived, recomputed_buffers
from weightport.layout.fit.base import FitContext, Fitter, fitters
from weightport.layout.head import HEAD_NAMES, head_keys, rival_heads
from weightport.layout.match import Match, match_keys
from weightport.layout.qkv_bias import harmonise_qkv_bias
from weightport.layout.rename import apply_rules, load_rules
from weightport.layout.roles import find_roles
from weightport.layout.structural_match import align_leftovers
from weightport.loading.apply import all_finite, overflows
from weightport.loading.gc_pause import cyclic_gc_paused
from weightport.loading.options import LoadOptions
from weightport.loading.proof import LoadProver
from weightport.loading.source_io import OpenedSource
from weightport.report import LoadPlan, Mismatch, Reinit, TensorRecord, Uncastable

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger("weightport")



@dataclass
class Renamed:
    """The checkpoint's tensors under the keys matching works on, after layout and rename rules.

    Attributes:
        tensors: Key → tensor (a layout op such as a q/k/v split makes new tensors).
        origin: Key → the checkpoint key it came from, as written in the file.
        ops: Key → every renaming applied so far (wrapper prefixes, layout, user rules).
    """

    tensors: dict[str, Any]
    origin: dict[str, str]
    ops: dict[str, list[str]]


@dataclass(frozen=True)
class Production:
    """How one target tensor is made: the (lazy, memory-mapped) checkpoint tensor, the fitter that fits
    it to the target's shape (if any), and the target's dtype. Calling it makes the whole tensor; a
    sharded load (:mod:`weightport.loading.sharded`) reads only slices of ``tensor`` instead.
    """

    tensor: Any
    dtype: Any
    fitter: Fitter | None = None
    ctx: FitContext | None = None
    #: The plan already found every value of ``tensor`` finite (``check_finite``; an overflowing cast is in
    #: ``plan.nonfinite`` either way): with no fitter the made tensor is that one cast, so producing it
    #: need not read every value again.
    finite_checked: bool = False

    def __call__(self) -> Any:
        return self.make(self.tensor, self.ctx)

    def make(self, tensor: Any, ctx: FitContext | None) -> Any:
        """This production applied to ``tensor`` (the checkpoint tensor or a slice of it), cast."""
        value = tensor if self.fitter is None else self.fitter.adapt(tensor, ctx)  # type: ignore[arg-type]
        return value if value.dtype == self.dtype else value.to(self.dtype)


@dataclass
class Planned:
    """A plan and what carries it out, kept apart: the plan is data, the productions make its tensors.

    Attributes:
        plan: The plan (printable, comparable, JSON-serialisable; no callables in it).
        producers: Target key → how its tensor is made (renamed, fitted and cast), one per record of
            ``plan.loaded``; a sharded load cuts slices from them instead of calling them.
    """

    plan: LoadPlan
    producers: dict[str, Production]


@cyclic_gc_paused()
def build_plan(module: nn.Module, opened: OpenedSource, options: LoadOptions) -> Planned:
    """Plan loading ``opened`` into ``module`` under ``options`` without touching the module."""
    target = dict(module.state_dict(keep_vars=True))
    _check_into(module, options.into)
    _check_reinit(module, list(target), options)
    producers: dict[str, Production] = {}
    plan = LoadPlan(source=opened.info(), into=options.into, strict=options.strict, min_coverage=options.min_coverage,
                    finite_checked=options.check_finite)
    renamed, excluded = _without_excluded(_renamed(opened, options, plan.notes), options)
    heads = head_keys(module, list(target), into=options.into, reinit=options.reinit)
    renamed = _ecosystem_converted(renamed, module, target, heads, options, plan.notes)
    renamed = _qkv_bias_harmonised(renamed, target, options, plan.notes)
    matches = _match(renamed, target, options, LoadProver(module, opened, renamed.origin, options))
    plan.into = options.into or _common_into(matches)
    plan.notes.extend(opened.extracted.notes)
    if opened.extracted.dropped:
        plan.notes.append(f"ignored {len(opened.extracted.dropped)} non-weight entries (training state)")
    explicit = set(heads) if options.reinit else set()
    roles_of = find_roles(module, [(m.source_key, m.target_key) for m in matches], heads,
                          declared_head=opened.source.head, declared_first_conv=opened.source.first_conv,
                          user_named_head=bool(options.reinit))
    used_targets: set[str] = set()
    used_sources: set[str] = set()
    for m in matches:
        origin = renamed.origin[m.source_key]
        used_sources.add(m.source_key)
        if not _selected(origin, m.target_key, options):
            excluded += 1
            continue
        used_targets.add(m.target_key)
        if m.target_key in explicit:
            plan.reinitialized.append(Reinit(m.target_key, "named in reinit"))
            continue
        tensor, dest = renamed.tensors[m.source_key], target[m.target_key]
        roles = roles_of.of(m.target_key)
        fit, shape_ops = _fit_shape(tensor, dest, m, module, opened, options, roles)
        if fit is None:
            if "head" in roles:
                _refuse_rival_heads(module, m.target_key, options)
                plan.reinitialized.append(Reinit(m.target_key, _head_reason(tuple(tensor.shape), tuple(dest.shape)),
                                                 replaced=origin))
            else:
                plan.mismatched.append(Mismatch(origin, m.target_key, tuple(tensor.shape), tuple(dest.shape)))
            continue
        cast, uncastable = _cast_op(tensor, dest, m, origin, options)
        if uncastable is not None:
            plan.uncastable.append(uncastable)
            continue
        plan.loaded.append(TensorRecord(
            source_key=origin, target_key=m.target_key,
            source_shape=tuple(tensor.shape), target_shape=tuple(dest.shape),
            source_dtype=_dt(tensor), target_dtype=_dt(dest), how=_how(m, renamed.ops[m.source_key]),
            ops=renamed.ops[m.source_key] + ([m.detail] if m.detail else []) + shape_ops + ([cast] if cast else []),
            confidence=m.confidence,
        ))
        finite = options.check_finite and all_finite(tensor)
        if (options.check_finite and not finite) or overflows(tensor, dest.dtype):
            plan.nonfinite.append(origin)
        fitter, ctx = fit if fit else (None, None)
        producers[m.target_key] = Production(tensor, dest.dtype, fitter, ctx, finite_checked=finite)
    if excluded:
        plan.notes.append(f"left out {excluded} tensors by include/exclude")
    plan.excluded = excluded
    _missing(plan, module, target, used_targets, heads, explicit, options)
    left = [k for k in renamed.tensors if k not in used_sources and _selected(renamed.origin[k], k, options)]
    plan.dropped_head = _checkpoint_head(left, renamed, plan, module, heads)
    plan.unexpected = [renamed.origin[k] for k in left if renamed.origin[k] not in plan.dropped_head]
    _derived(plan, module)
    _headless(plan, module)
    plan.coverage, reinit_share = _shares(module, {r.target_key for r in plan.loaded},
                                          {r.key for r in plan.reinitialized})
    if not explicit:
        plan.reinit_share = reinit_share
    return Planned(plan, producers)


def _check_into(module: nn.Module, into: str | None) -> None:
    """``into`` must name a submodule: a name that is none would be reported while weights went elsewhere."""
    if into is None:
        return
    names = [n for n, _ in module.named_modules() if n]
    if into in names:
        return
    close = difflib.get_close_matches(into, names, n=3, cutoff=0.5)
    tops = [n for n in names if "." not in n]
    raise InvalidOptionError(
        f"into={into!r} is not a submodule of {type(module).__name__}"
        + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ""),
        hint="name one of its submodules (" + ", ".join(tops[:10]) + "), or leave into out to find it by key overlap",
    )


def _check_reinit(module: nn.Module, target_keys: list[str], options: LoadOptions) -> None:
    """Every ``reinit`` pattern must name something: ``reinit=["fcc"]`` would re-initialise nothing."""
    for pattern in options.reinit or ():
        if head_keys(module, target_keys, into=options.into, reinit=[pattern]):
            continue
        modules = [n for n, _ in module.named_modules() if n]
        close = difflib.get_close_matches(pattern, modules + target_keys, n=3, cutoff=0.5)
        raise InvalidOptionError(
            f"reinit pattern {pattern!r} matches no key or module of {type(module).__name__}"
            + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ""),
            hint="name modules by their path in the model (reinit=['backbone.fc']) or use globs (reinit=['*.fc'])",
        )


def _refuse_rival_heads(module: nn.Module, key: str, options: LoadOptions) -> None:
    """The default head is a guess; with two candidates (``aux_head``, ``cls_head``) refuse to make it."""
    if options.reinit:
        return
    rivals = rival_heads(module)
    if rivals:
        raise AmbiguousMappingError(
            f"{key} would be re-initialised as the head, but {type(module).__name__} has "
            f"{len(rivals)} modules that could each be the head: {', '.join(rivals)}",
            hint=f"name what to re-initialise: reinit={rivals!r} (or only those whose shape changed)",
        )


def _checkpoint_head(left: list[str], renamed: Renamed, plan: LoadPlan, module: nn.Module,
                     heads: set[str]) -> list[str]:
    """The checkpoint's own classification layer, when it goes nowhere because the model's head is new.

    Only the last module of the checkpoint, holding a weight (a matrix or 1×1 kernel) and maybe a bias,
    and only when the model's head is re-initialised or the model has no head: a checkpoint's class
    layer has nothing to go into then. Anything else left over is ``unexpected``.
    """
    if not left or not renamed.tensors:
        return []
    last = parent(next(reversed([k for k in renamed.tensors if not is_training_state(k)]), ""))
    keys = [k for k in left if parent(k) == last]
    leaves = sorted(k.rpartition(".")[2] for k in keys)
    if leaves not in (["bias", "weight"], ["weight"]):
        return []
    weight = renamed.tensors[f"{last}.weight" if last else "weight"]
    if weight.dim() not in (2, 4) or (weight.dim() == 4 and tuple(weight.shape[2:]) != (1, 1)):
        return []
    model_head_new = bool(heads) and all(k in {r.key for r in plan.reinitialized} for k in heads)
    if not (model_head_new or not heads):
        return []
    return [renamed.origin[k] for k in keys]


def _head_reason(source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> str:
    if source_shape[1:] == target_shape[1:] and source_shape and target_shape:
        return f"head: {source_shape[0]} classes in the checkpoint, {target_shape[0]} in the model"
    return f"head: shape {source_shape} in the checkpoint, {target_shape} in the model"


def _renamed(opened: OpenedSource, options: LoadOptions, notes: list[str]) -> Renamed:
    """Apply the source's registered layout rules, then the user's rename rules."""
    tensors = dict(opened.tensors)
    origin = {k: opened.original_keys[k] for k in tensors}
    ops = {k: list(opened.key_ops.get(k, [])) for k in tensors}
    if opened.source.layout:
        tensors, origin, ops = _apply_source_layout(opened.source.layout, tensors, origin, ops, notes)
    rules = load_rules(options.rename)
    if rules:
        new_keys, rule_ops = apply_rules(list(tensors), rules)
        tensors = {new: tensors[old] for new, old in new_keys.items()}
        origin = {new: origin[old] for new, old in new_keys.items()}
        ops = {new: ops[old] + rule_ops[new] for new, old in new_keys.items()}
    return Renamed(tensors, origin, ops)


def _apply_source_layout(name: str, tensors: dict[str, Any], origin: dict[str, str], ops: dict[str, list[str]],
                         notes: list[str]) -> tuple[dict[str, Any], dict[str, str], dict[str, list[str]]]:
    from weightport.layout.rules import apply_layout, layouts

    if name not in layouts():
        notes.append(f"the source declares layout {name!r}, which has no registered rules; matched by structure")
        return tensors, origin, ops
    out, records = apply_layout(name, tensors)
    derived: dict[str, tuple[str, str]] = {}  # new key -> (old key, op description)
    for record in records:
        for new in record.target_keys:
            derived[new] = (record.source_keys[0], record.step)
    new_origin, new_ops = {}, {}
    for key in out:
        old, description = derived.get(key, (key, ""))
        new_origin[key] = origin.get(old, old)
        new_ops[key] = ops.get(old, []) + ([f"layout {description}"] if description else [])
    return out, new_origin, new_ops


def _ecosystem_converted(renamed: Renamed, module: nn.Module, target: dict[str, Any], heads: set[str],
                         options: LoadOptions, notes: list[str]) -> Renamed:
    """The checkpoint converted by timm's own filter for a timm model in the target, when one maps it
    exactly and names and prefixes alone do not place the whole checkpoint (``match="exact"``: never)."""
    if options.match == "exact" or not _needs_mapping(renamed, target, options):
        return renamed
    from weightport.layout.timm_filters import convert_with_timm_filter

    converted = convert_with_timm_filter(renamed.tensors, module, shape_may_differ=heads)
    if converted is None:
        return _inverse_converted(renamed, target, heads, notes)
    step = f"layout timm filter {converted.filter}"
    tensors, origin, ops = {}, {}, {}
    for key, value in converted.tensors.items():
        source = converted.origin[key]
        tensors[key] = value
        origin[key] = renamed.origin.get(source, source)
        ops[key] = renamed.ops.get(source, []) + [step if key in converted.traced else f"{step} (made by it)"]
    for key in converted.leftover:  # dropped by the filter: stays visible as unexpected
        internal = key if key not in tensors else f"{key}\0unused"
        tensors[internal], origin[internal], ops[internal] = renamed.tensors[key], renamed.origin[key], renamed.ops[key]
    notes.append(f"converted by timm's own checkpoint filter {converted.filter}"
                 + (f" for {converted.into!r}" if converted.into else "") + f" ({len(converted.tensors)} tensors)")
    return Renamed(tensors, origin, ops)


def _inverse_converted(renamed: Renamed, target: dict[str, Any], heads: set[str], notes: list[str]) -> Renamed:
    """A timm checkpoint renamed into the model's keys by inverting the timm filter that converts the
    model's layout into timm's, when its output is exactly the checkpoint's keys."""
    from weightport.layout.timm_filters import invert_timm_filter

    inverse = invert_timm_filter(renamed.tensors, target, shape_may_differ=heads)
    if inverse is None:
        return renamed
    step = f"layout inverse of timm filter {inverse.filter}"
    tensors, origin, ops = {}, {}, {}
    for key, value in renamed.tensors.items():
        new = inverse.mapping.get(key, key)
        tensors[new], origin[new] = value, renamed.origin[key]
        ops[new] = renamed.ops[key] + ([step] if new != key else [])
    notes.append(f"mapped by inverting timm's own checkpoint filter {inverse.filter} ({len(inverse.mapping)} tensors)")
    return Renamed(tensors, origin, ops)


def _qkv_bias_harmonised(renamed: Renamed, target: dict[str, Any], options: LoadOptions,
                         notes: list[str]) -> Renamed:
    """Fused q/k/v biases split (or separate ones fused) into the model's convention."""
    if options.match == "exact":
        return renamed
    rewrite = harmonise_qkv_bias(renamed.tensors, target)
    if rewrite is None:
        return renamed
    origin = {k: renamed.origin[src] for k, src in rewrite.origin.items()}
    ops = {k: renamed.ops[src] + ([rewrite.step[k]] if k in rewrite.step else []) for k, src in rewrite.origin.items()}
    notes.append(f"q/k/v biases rewritten into the model's convention ({len(rewrite.step)} tensors)"
                 + (f"; dropped k biases up to {rewrite.dropped_k_max:.3g} (torchvision's Swin V2 ignores its k bias; "
                    "in dot-product attention a k bias shifts all logits of a query alike and cancels in softmax)"
                    if rewrite.dropped_k_max else ""))
    return Renamed(rewrite.tensors, origin, ops)


@functools.lru_cache(maxsize=2)
def _matched(source: tuple[str, ...], target: tuple[str, ...], into: str | None) -> tuple[Match, ...]:
    return tuple(match_keys(source, target, into=into))


def _match_keys(source: tuple[str, ...], target: tuple[str, ...], into: str | None) -> list[Match]:
    """:func:`match_keys`, once per plan: ``_needs_mapping`` and ``_match`` ask the same question."""
    return list(_matched(source, target, into))


def _needs_mapping(renamed: Renamed, target: dict[str, Any], options: LoadOptions) -> bool:
    """Whether names and prefixes leave some of the checkpoint or the model unplaced."""
    try:
        found = _match_keys(tuple(renamed.tensors), tuple(target), options.into)
    except AmbiguousMappingError:  # no one placement: let a conversion try
        return True
    return len(found) < min(len(renamed.tensors), len(target))


def _match(renamed: Renamed, target: dict[str, Any], options: LoadOptions, prove: LoadProver) -> list[Match]:
    source = list(renamed.tensors)
    if options.match == "structural":
        return align_leftovers(source, target, [], renamed.tensors, options, prove)
    matches = _match_keys(tuple(source), tuple(target), options.into)
    if options.match == "auto":
        matches += align_leftovers(source, target, matches, renamed.tensors, options, prove)
    return matches


def _common_into(matches: list[Match]) -> str | None:
    """The submodule every match landed under (the longest common module path), if not the root."""
    if not matches:
        return None
    paths = [m.target_key.split(".")[:-1] for m in matches]
    common: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common) or None


def _without_excluded(renamed: Renamed, options: LoadOptions) -> tuple[Renamed, int]:
    """Leave out, before any matching, the checkpoint tensors that ``exclude`` names.

    They can never load (by their key in the file or after renaming), so they must not decide where
    the rest goes: a checkpoint holding a model and its EMA copy fits one place twice, and
    ``exclude=["ema"]`` is how the ambiguity is settled. Returns the rest and how many were left out.
    """
    if not options.exclude:
        return renamed, 0
    keep = [k for k in renamed.tensors
            if not (matches_any(renamed.origin[k], options.exclude) or matches_any(k, options.exclude))]
    if len(keep) == len(renamed.tensors):
        return renamed, 0
    return (Renamed({k: renamed.tensors[k] for k in keep}, {k: renamed.origin[k] for k in keep},
                    {k: renamed.ops[k] for k in keep}), len(renamed.tensors) - len(keep))


def _selected(source_key: str, target_key: str, options: LoadOptions) -> bool:
    def hits(patterns: tuple[str, ...]) -> bool:
        return matches_any(source_key, patterns) or matches_any(target_key, patterns)

    if options.include and not hits(options.include):
        return False
    return not (options.exclude and hits(options.exclude))


def _fit_shape(tensor: torch.Tensor, dest: torch.Tensor, m: Match, module: nn.Module, opened: OpenedSource,
               options: LoadOptions, roles: frozenset[str],
               ) -> tuple[tuple[Fitter, FitContext] | tuple[()] | None, list[str]]:
    """The fitter (with its context) that fits the tensor to the target's shape (``()`` when the shapes
    already agree), and the fitter ops; ``None`` when nothing fits."""
    target_shape = tuple(dest.shape)
    if tuple(tensor.shape) == target_shape:
        return (), []
    ctx = FitContext(
        source_key=m.source_key, target_key=m.target_key, target_shape=target_shape, module=module,
        source=opened.source, roles=roles,
        options={**options.fitter_options, "classes": options.classes},
    )
    for fitter in fitters():
        if not options.fitters.get(fitter.name, True):
            continue
        if fitter.applies(tensor, ctx):
            return (fitter, ctx), [fitter.describe(tensor, ctx)]
    return None, []


def _dt(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _cast_op(tensor: torch.Tensor, dest: torch.Tensor, m: Match, origin: str,
             options: LoadOptions) -> tuple[str | None, Uncastable | None]:
    """The cast op for the report, or why the checkpoint's dtype cannot become the model's."""
    if tensor.dtype == dest.dtype:
        return None, None
    import torch

    def refuse(reason: str, hint: str) -> tuple[None, Uncastable]:
        return None, Uncastable(origin, m.target_key, _dt(tensor), _dt(dest), reason, hint)

    if tensor.dtype.is_complex and not dest.dtype.is_complex:
        return refuse("the imaginary part would be dropped",
                      "exclude it with exclude=[...], or convert the checkpoint explicitly (t.real, t.abs())")
    numeric = tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool
    if dest.dtype.is_floating_point and not numeric:
        return refuse("integer weights would change meaning as floats",
                      "exclude it with exclude=[...] or convert the checkpoint explicitly")
    op = f"cast {_dt(tensor)}->{_dt(dest)}"
    if _lossy(tensor.dtype, dest.dtype):
        if options.lossy_cast == "error":
            return refuse("the cast loses precision and lossy_cast='error'",
                          "pass lossy_cast='allow' (or 'warn') to accept it")
        if options.lossy_cast == "warn":
            from weightport.warnings import LossyCastWarning, warn

            warn(f"casting {origin!r} from {_dt(tensor)} to {_dt(dest)} loses precision", LossyCastWarning)
        op += " (lossy)"
    return op, None


def _lossy(src: Any, dst: Any) -> bool:
    import torch

    if not (src.is_floating_point and dst.is_floating_point):
        return False
    return torch.finfo(dst).bits < torch.finfo(src).bits or (
        torch.finfo(dst).bits == torch.finfo(src).bits and src != dst
    )


def _how(m: Match, ops: list[str]) -> str:
    if m.how == "structural":
        return "structural"
    if any(op.startswith("layout") for op in ops):
        return "layout"
    if any(op.startswith("rename") for op in ops):
        return "rename"
    return m.how


def _missing(plan: LoadPlan, module: nn.Module, target: dict[str, Any], used_targets: set[str], heads: set[str],
             explicit: set[str], options: LoadOptions) -> None:
    reinit_done = {r.key for r in plan.reinitialized}
    for key in target:
        if key in used_targets or key in reinit_done:
            continue
        if key in explicit:
            plan.reinitialized.append(Reinit(key, "named in reinit"))
        elif options.include and not matches_any(key, options.include):
            continue  # a selective load leaves the rest on purpose, the head included
        elif options.exclude and matches_any(key, options.exclude):
            continue
        elif key in heads:
            _refuse_rival_heads(module, key, options)
            plan.reinitialized.append(Reinit(key, "head not in checkpoint"))
        elif is_training_state(key):
            continue
        else:
            plan.missing.append(key)


def _derived(plan: LoadPlan, module: nn.Module) -> None:
    """Buffers the model computes itself: not missing when the checkpoint lacks them, and dropped (not
    unexpected) when the checkpoint has them and the model recomputes them."""
    kept = [k for k in plan.missing if is_derived(k)]
    if kept:
        plan.missing = [k for k in plan.missing if k not in kept]
        plan.notes.append(f"kept the model's own values of {len(kept)} buffer(s) it derives from its configuration, "
                          "not in the checkpoint: " + ", ".join(fold_keys(kept, 6)))
    recomputed = recomputed_buffers(module)
    dropped = [k for k in plan.unexpected if is_derived(k) and k.rpartition(".")[2] in recomputed]
    if dropped:
        plan.unexpected = [k for k in plan.unexpected if k not in dropped]
        plan.notes.append(f"dropped {len(dropped)} checkpoint buffer(s) the model recomputes from its configuration: "
                          + ", ".join(fold_keys(dropped, 6)))


def _headless(plan: LoadPlan, module: nn.Module) -> None:
    """A model built without a classifier (timm's ``num_classes=0``) has no place for the checkpoint's:
    those tensors are dropped with a note, not reported as unexpected."""
    if not any(getattr(sub, "num_classes", None) == 0 for sub in module.modules()):
        return
    dropped = [k for k in plan.unexpected if k.split(".", 1)[0] in HEAD_NAMES]
    if dropped:
        plan.unexpected = [k for k in plan.unexpected if k not in dropped]
        plan.notes.append("the model has no classifier (num_classes=0): dropped the checkpoint's "
                          + ", ".join(fold_keys(dropped, 6)))


def _shares(module: nn.Module, loaded: set[str], reinitialized: set[str]) -> tuple[float, float]:
    """The fractions of the model's parameters (by count of values) that are loaded and re-initialised."""
    total = covered = renewed = 0
    for name, param in module.named_parameters():
        n = param.numel()
        total += n
        if name in loaded:
            covered += n
        elif name in reinitialized:
            renewed += n
    return (covered / total, renewed / total) if total else (1.0, 0.0)
