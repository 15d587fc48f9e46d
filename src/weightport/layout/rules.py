"""Named layout rule sets: regex renames and tensor operations a source can declare.

A :class:`LayoutRules` describes how a checkpoint written by one implementation maps onto another
(``torchvision-vit-to-timm``: ``conv_proj`` → ``patch_embed.proj``, ...). Rule sets are registered by
name, so a source can say ``layout="torchvision-vit-to-timm"`` and the planner applies it with
:func:`apply_layout` before matching names. Renames run first, in order, each on every key (so a
later rename sees the result of an earlier one); then the tensor operations run, in order, on the
renamed keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from weightport.errors import DuplicateRegistrationError, LayoutRuleError, UnknownLayoutError
from weightport.layout.ops import LayoutRecord, TensorOp
from weightport.layout.rename import apply_rules

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


_LAYOUTS: dict[str, LayoutRules] = {}


def register_layout(rules: LayoutRules, *, override: bool = False) -> LayoutRules:
    """Register ``rules`` under ``rules.name``.

    Raises:
        DuplicateRegistrationError: The name is taken and ``override`` is false.
        LayoutRuleError: A rename pattern is not a valid regex.
    """
    if rules.name in _LAYOUTS and not override:
        raise DuplicateRegistrationError(
            f"layout {rules.name!r} is already registered", hint="pass override=True to replace it"
        )
    for pattern, _ in rules.renames:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise LayoutRuleError(f"layout {rules.name!r}: bad rename pattern {pattern!r}: {exc}") from exc
    _LAYOUTS[rules.name] = rules
    return rules


def get_layout(name: str) -> LayoutRules:
    """The rule set registered as ``name``.

    Raises:
        UnknownLayoutError: No such name; the message lists the registered ones.
    """
    _load_builtin()
    try:
        return _LAYOUTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_LAYOUTS), n=3)
        raise UnknownLayoutError(
            f"no layout rule set named {name!r}; known: {', '.join(sorted(_LAYOUTS)) or '(none)'}",
            hint=f"did you mean {' or '.join(map(repr, close))}?" if close else "register one with register_layout()",
        ) from None


def layouts() -> list[str]:
    """The registered rule set names, sorted."""
    _load_builtin()
    return sorted(_LAYOUTS)


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


def _load_builtin() -> None:
    import weightport.layout.builtin_layouts  # noqa: F401 - registers the shipped rule sets
