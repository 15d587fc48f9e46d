"""timm's own checkpoint conversions, offered as a layout step when the target is (or holds) a timm model.

timm ships, next to each model family, the function that converts foreign checkpoints into its
layout (``checkpoint_filter_fn`` in ``timm.models.convnext``, ``_filter_fn`` in ``timm.models.vgg``
and ``timm.models.regnet`` for torchvision's layouts, ``_filter_torchvision_pretrained`` in
``timm.models.densenet`` …). :func:`convert_with_timm_filter` finds the timm models inside the
target, runs their family's filters on the checkpoint and accepts a filter's output only when it
maps onto that timm model *exactly*: every key of the model's state dict present with its shape, no
key the model lacks (except under the model's classifier when the model has no classifier, a
headless model), shapes allowed to differ only on the keys the caller names (the head, which the
planner then re-initialises). Anything else — a filter that raises, leaves a key out, makes a key
the model does not have — is not used, and the planner goes on to structural alignment.

A filter is a black box; to report where each output came from, outputs are traced back to the
checkpoint tensor whose memory they share (a rename or a reshape), else to the checkpoint key of
the same name. Checkpoint tensors that no output comes from (a filter drops what it deems
non-persistent) are kept under their own key, so they stay visible as unexpected.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger("weightport")

#: A function of a timm model family is a checkpoint filter when its name matches this and its
#: first parameter is the state dict.
_FILTER_NAME = re.compile(r"filter")
_FIRST_PARAMETERS = ("state_dict", "sd", "checkpoint")
#: Keys a converted checkpoint may lack without changing what the model computes.
_OPTIONAL_LEAVES = ("num_batches_tracked",)


@dataclass
class FilterConversion:
    """A checkpoint converted by one of timm's filters, in the target's key layout.

    Attributes:
        filter: The filter's qualified name (``timm.models.vgg._filter_fn``).
        into: The path of the timm model inside the target (``""`` when the target is the model).
        tensors: Target key → tensor, the filter's output (prefixed with ``into``).
        origin: Target key → the checkpoint key it came from (the same key when it cannot be traced).
        traced: Target keys whose origin was found (by shared memory or by name).
        leftover: Checkpoint keys no output comes from.
    """

    filter: str
    into: str
    tensors: dict[str, Any]
    origin: dict[str, str]
    traced: set[str] = field(default_factory=set)
    leftover: list[str] = field(default_factory=list)


def timm_models(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The outermost timm models inside ``module`` (``module`` itself first), with their paths."""
    found: list[str] = []
    for path, sub in module.named_modules():
        if any(path == p or path.startswith(p + ".") for p in found if p) or (found and found[0] == ""):
            continue
        if _is_timm_model(sub):
            found.append(path)
            yield path, sub


def _is_timm_model(sub: nn.Module) -> bool:
    return type(sub).__module__.startswith("timm.models.") and all(
        callable(getattr(sub, name, None)) for name in ("forward_features", "reset_classifier")
    )


def filters_for(model: nn.Module) -> list[Callable[..., Any]]:
    """The checkpoint filters of the timm family ``model`` belongs to, in source order."""
    family = sys.modules.get(type(model).__module__)
    if family is None:
        return []
    found: list[Callable[..., Any]] = []
    for name, fn in vars(family).items():
        if not (callable(fn) and inspect.isfunction(fn) and _FILTER_NAME.search(name)):
            continue
        if getattr(fn, "__module__", None) != family.__name__:
            continue
        params = list(inspect.signature(fn).parameters)
        if params and params[0] in _FIRST_PARAMETERS:
            found.append(fn)
    return found


def convert_with_timm_filter(
    tensors: Mapping[str, Any], module: nn.Module, *, shape_may_differ: AbstractSet[str] = frozenset()
) -> FilterConversion | None:
    """Convert ``tensors`` with a timm filter whose output maps exactly onto a timm model in ``module``.

    Args:
        tensors: The checkpoint's tensors (canonical keys).
        module: The target module: a timm model, or one holding timm models.
        shape_may_differ: Target keys whose shape may differ (the head the planner re-initialises).

    Returns:
        The first exact conversion, or ``None`` (no timm model, the checkpoint is already in its
        layout, or no filter's output fits exactly).
    """
    for path, model in timm_models(module):
        prefix = f"{path}." if path else ""
        expected = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
        if set(expected) <= set(tensors) or {prefix + k for k in expected} <= set(tensors):
            continue  # already in the model's layout: nothing to convert
        classifier = _classifier_path(model)
        for fn in filters_for(model):
            out = _run(fn, tensors, model)
            if out is None:
                continue
            reason = _inexact(out, expected, classifier, {k[len(prefix):] for k in shape_may_differ})
            if reason:
                logger.debug("timm filter %s does not fit %s exactly: %s", _qualname(fn), path or "the model", reason)
                continue
            return _traced(_qualname(fn), path, {prefix + k: v for k, v in out.items()}, tensors)
    return None


def _run(fn: Callable[..., Any], tensors: Mapping[str, Any], model: nn.Module) -> dict[str, Any] | None:
    import torch

    params = inspect.signature(fn).parameters
    takes_model = len(params) > 1 and list(params)[1] == "model"
    try:
        with torch.no_grad():
            out = fn(dict(tensors), model) if takes_model else fn(dict(tensors))
    except Exception as exc:  # a filter meeting a layout it was not written for: not ours to fix
        logger.debug("timm filter %s refused the checkpoint: %s: %s", _qualname(fn), type(exc).__name__, exc)
        return None
    if not isinstance(out, Mapping) or not all(isinstance(v, torch.Tensor) for v in out.values()):
        return None
    return dict(out)


def _inexact(out: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], classifier: str | None,
             shape_may_differ: AbstractSet[str]) -> str:
    """Why ``out`` does not map exactly onto ``expected`` (``""`` when it does)."""
    extra = [k for k in out if k not in expected]
    if classifier is not None and not any(k.startswith(classifier + ".") for k in expected):
        extra = [k for k in extra if not k.startswith(classifier + ".")]  # a headless model
    if extra:
        return f"{len(extra)} key(s) the model does not have, e.g. {extra[0]!r}"
    absent = [k for k in expected if k not in out and k.rpartition(".")[2] not in _OPTIONAL_LEAVES]
    if absent:
        return f"{len(absent)} model key(s) not produced, e.g. {absent[0]!r}"
    wrong = [k for k in out if k in expected and tuple(out[k].shape) != expected[k] and k not in shape_may_differ]
    if wrong:
        return f"{len(wrong)} shape(s) differ, e.g. {wrong[0]!r} {tuple(out[wrong[0]].shape)} vs {expected[wrong[0]]}"
    return ""


def _classifier_path(model: nn.Module) -> str | None:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    classifier = cfg.get("classifier") if isinstance(cfg, Mapping) else None
    return classifier if isinstance(classifier, str) else None


def _traced(name: str, into: str, out: dict[str, Any], tensors: Mapping[str, Any]) -> FilterConversion:
    by_memory: dict[tuple[int, int], list[str]] = {}
    for key, value in tensors.items():
        if not value.is_meta and value.numel():
            by_memory.setdefault((value.data_ptr(), value.numel()), []).append(key)
    origin: dict[str, str] = {}
    traced: set[str] = set()
    for key, value in out.items():
        bare = key[len(into) + 1:] if into else key
        sharing = [] if value.is_meta or not value.numel() else by_memory.get((value.data_ptr(), value.numel()), [])
        candidates = [k for k in sharing if k in (key, bare)] or sharing
        if candidates:
            origin[key] = candidates[0]
        elif bare in tensors or key in tensors:
            origin[key] = bare if bare in tensors else key
        else:
            origin[key] = key
            continue
        traced.add(key)
    used = {origin[k] for k in traced}
    leftover = [k for k in tensors if k not in used]
    return FilterConversion(name, into, out, origin, traced, leftover)


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


@functools.lru_cache(maxsize=1)
def model_free_filters() -> tuple[Callable[..., Any], ...]:
    """timm's filters that need no model (``_filter_fn(state_dict)``: torchvision's VGG, RegNet, DenseNet …)."""
    import timm.models  # noqa: F401 - imports every model family

    found: list[Callable[..., Any]] = []
    for name, family in sorted(sys.modules.items()):
        if not name.startswith("timm.models.") or family is None:
            continue
        for fn_name, fn in vars(family).items():
            if not (inspect.isfunction(fn) and _FILTER_NAME.search(fn_name) and fn.__module__ == name):
                continue
            params = list(inspect.signature(fn).parameters.values())
            if params and params[0].name in _FIRST_PARAMETERS and all(
                p.default is not inspect.Parameter.empty for p in params[1:]
            ):
                found.append(fn)
    return tuple(found)


@dataclass
class InverseConversion:
    """A checkpoint in timm's layout mapped onto a model in the layout a timm filter converts from.

    Attributes:
        filter: The filter's qualified name.
        mapping: Checkpoint key → target key.
    """

    filter: str
    mapping: dict[str, str]


def invert_timm_filter(
    tensors: Mapping[str, Any], target: Mapping[str, Any], *, shape_may_differ: AbstractSet[str] = frozenset()
) -> InverseConversion | None:
    """Map a timm checkpoint onto a model in a foreign layout by running timm's filter on the *model's* keys.

    A filter that converts, say, torchvision's RegNet into timm's renames and reshapes tensors; run on
    the target's state dict (as meta tensors, traced back by identity), it tells which timm key each
    target key becomes. When those keys are exactly the checkpoint's, with the same number of elements
    each, the inverse is the mapping.

    Args:
        tensors: The checkpoint's tensors (canonical keys).
        target: The target's state dict (key → tensor) under the keys to map to.
        shape_may_differ: Target keys whose size may differ (the head the planner re-initialises).

    Returns:
        The mapping, or ``None`` when no model-free filter explains the checkpoint exactly.
    """
    import torch

    wanted = {k for k in tensors if k.rpartition(".")[2] not in _OPTIONAL_LEAVES}
    for prefix in _prefixes(target):
        keys = [k for k in target if k.startswith(prefix)]
        placeholders = {k[len(prefix):]: torch.empty(tuple(target[k].shape), device="meta") for k in keys}
        by_id = {id(v): k for k, v in placeholders.items()}
        for fn in model_free_filters():
            out = _run_free(fn, placeholders)
            if out is None or set(out) == set(placeholders):
                continue
            mapping = _inverse(out, by_id)
            if mapping is None or {k for k in mapping if k.rpartition(".")[2] not in _OPTIONAL_LEAVES} != wanted:
                continue
            full = {src: prefix + dst for src, dst in mapping.items() if src in tensors}
            if all(tensors[s].numel() == target[t].numel() or t in shape_may_differ for s, t in full.items()):
                return InverseConversion(_qualname(fn), full)
    return None


def _prefixes(target: Mapping[str, Any]) -> list[str]:
    """The root, then each top-level submodule (a network held as ``self.backbone``)."""
    firsts = dict.fromkeys(k.split(".", 1)[0] + "." for k in target if "." in k)
    return ["", *firsts]


def _run_free(fn: Callable[..., Any], placeholders: dict[str, Any]) -> dict[str, Any] | None:
    try:
        out = fn(dict(placeholders))
    except Exception as exc:  # not a layout this filter knows
        logger.debug("timm filter %s does not apply to the model's keys: %s", _qualname(fn), exc)
        return None
    return dict(out) if isinstance(out, Mapping) else None


def _inverse(out: Mapping[str, Any], by_id: Mapping[int, str]) -> dict[str, str] | None:
    """Output key → the input key it is (the same tensor or a view of it); ``None`` unless one-to-one."""
    mapping: dict[str, str] = {}
    for key, value in out.items():
        source = by_id.get(id(value)) or by_id.get(id(getattr(value, "_base", None)))
        if source is None:
            return None
        mapping[key] = source
    return mapping if len(set(mapping.values())) == len(mapping) else None
