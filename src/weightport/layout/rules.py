"""Named layout rule sets: regex renames and tensor operations a source can declare.

A :class:`LayoutRules` describes how a checkpoint written by one implementation maps onto another
(``torchvision-vit-to-timm``: ``conv_proj`` → ``patch_embed.proj``, ...). Rule sets are registered by
name, so a source can say ``layout="torchvision-vit-to-timm"`` and the planner applies it with
:func:`apply_layout` before matching names. Renames run first, in order, each on every key (so a
later rename sees the result of an earlier one); then the tensor operations run, in order, on the
renamed keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from weightport.errors import LayoutRuleError, UnknownLayoutError
from weightport.layout.ops import LayoutRecord, TensorOp
from weightport.layout.rename import apply_rules
from weightport.registry.table import Registry

if TYPE_CHECKING:
    import torch

__all__ = ["LayoutRules", "apply_layout", "get_layout", "layouts", "register_layout"]


@dataclass(frozen=True)
class LayoutRules:
    """A named set of renames and tensor operations.

    Attributes:
        name: The name sources and users refer to it by.
        renames: ``(regex, replacement)`` pairs for :func:`re.sub`, applied in order to every key.
        ops: Tensor operations applied after the renames, in order.
        description: One line for listings.
    """

    name: str
    renames: Sequence[tuple[str, str]] = ()
    ops: Sequence[TensorOp] = field(default_factory=tuple)
    description: str = ""


#: The rule sets weightport ships (data: in place before any call; a user's rule set of the same
#: name, registered with ``override=True``, wins).
BUILTIN_LAYOUTS: dict[str, str] = {
    "torchvision-vit-to-timm": "weightport.layout.builtin_layouts:TORCHVISION_VIT_TO_TIMM",
    "timm-vit-to-torchvision": "weightport.layout.builtin_layouts:TIMM_VIT_TO_TORCHVISION",
    "timm-vit-split-qkv": "weightport.layout.builtin_layouts:TIMM_VIT_SPLIT_QKV",
    "timm-vit-fuse-qkv": "weightport.layout.builtin_layouts:TIMM_VIT_FUSE_QKV",
}

LAYOUTS: Registry[LayoutRules] = Registry("layout", BUILTIN_LAYOUTS)


def register_layout(rules: LayoutRules, *, override: bool = False) -> LayoutRules:
    """Register ``rules`` under ``rules.name``.

    Raises:
        DuplicateRegistrationError: The name is taken and ``override`` is false.
        LayoutRuleError: A rename pattern is not a valid regex.
    """
    for pattern, _ in rules.renames:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise LayoutRuleError(f"layout {rules.name!r}: bad rename pattern {pattern!r}: {exc}") from exc
    return LAYOUTS.register(rules.name, rules, override=override)


def get_layout(name: str) -> LayoutRules:
    """The rule set registered as ``name``.

    Raises:
        UnknownLayoutError: No such name; the message lists the registered ones.
    """
    rules = LAYOUTS.get(name)
    if rules is None:
        close = LAYOUTS.close_matches(name)
        raise UnknownLayoutError(
            f"no layout rule set named {name!r}; known: {', '.join(sorted(LAYOUTS.names())) or '(none)'}",
            hint=f"did you mean {' or '.join(map(repr, close))}?" if close else "register one with register_layout()",
        )
    return rules


def layouts() -> list[str]:
    """The registered rule set names, sorted."""
    return sorted(LAYOUTS.names())


def apply_layout(
    rules: LayoutRules | str, state_dict: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[LayoutRecord]]:
    """Apply a rule set to a state dict (the input is not changed).

    Args:
        rules: The rule set, or its registered name.
        state_dict: The checkpoint's tensors.

    Returns:
        The new state dict (same order, renamed keys in place) and one record per rename or op.

    Raises:
        LayoutRuleError: Two keys would be renamed onto one, or an op cannot apply.
        UnknownLayoutError: ``rules`` names no registered rule set.
    """
    if isinstance(rules, str):
        rules = get_layout(rules)
    compiled = [(re.compile(p), r) for p, r in rules.renames]
    renamed, _ = apply_rules(list(state_dict), compiled, what=f"layout {rules.name!r}")
    out: dict[str, torch.Tensor] = {new: state_dict[old] for new, old in renamed.items()}
    records = [LayoutRecord((old,), (new,), f"{rules.name}: rename") for new, old in renamed.items() if new != old]
    for op in rules.ops:
        out, op_records = op.apply(out)
        records.extend(op_records)
    return out, records
