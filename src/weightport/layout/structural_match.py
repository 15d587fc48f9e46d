"""The planner's structural stage: align what exact names and prefixes left unpaired.

:func:`align_leftovers` is the hook :mod:`weightport.loading.planner` calls. With ``match="auto"`` a
divergence among the leftovers means they are not one architecture (an auxiliary head in the
checkpoint, a new neck in the model): nothing is paired and the leftovers stay missing/unexpected
for the report and the ``strict`` policy. With ``match="structural"`` the user asked for alignment,
so a divergence is an :class:`~weightport.errors.ArchitectureMismatchError`. Ambiguity is refused
in both modes (:class:`~weightport.errors.AmbiguousMappingError`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from weightport.layout.match import Match
from weightport.layout.rename import apply_rules, load_rules
from weightport.layout.spec import TensorSpec
from weightport.layout.structural import align

if TYPE_CHECKING:
    from weightport.loading.options import LoadOptions
    from weightport.loading.source_io import OpenedSource

logger = logging.getLogger("weightport")


def align_leftovers(
    source: Sequence[str],
    target: Mapping[str, Any] | Sequence[str],
    found: Sequence[Match],
    opened: OpenedSource,
    options: LoadOptions,
) -> list[Match]:
    """Structural matches for the keys ``found`` leaves unpaired.

    Args:
        source: Checkpoint keys after rename rules, in checkpoint order.
        target: The target state dict (key → tensor, in registration order). A bare list of keys
            carries no shapes, so nothing can be aligned and nothing is returned.
        found: Matches the earlier stages made.
        opened: The opened source (its tensors are looked up by canonical key).
        options: The load options (``match`` and ``rename`` are used).

    Raises:
        AmbiguousMappingError: Two pairings are equally plausible.
        ArchitectureMismatchError: ``match="structural"`` and the structures differ.
    """
    if not isinstance(target, Mapping):
        logger.debug("structural alignment skipped: the planner passed target keys without shapes")
        return []
    taken_source = {m.source_key for m in found}
    taken_target = {m.target_key for m in found}
    left_source = [k for k in source if k not in taken_source]
    left_target = [k for k in target if k not in taken_target]
    if not left_source or not left_target:
        return []
    canonical = _canonical_keys(left_source, opened, options)
    alignment = align(
        [TensorSpec.of(k, opened.tensors[canonical[k]]) for k in left_source],
        [TensorSpec.of(k, target[k]) for k in left_target],
    )
    if not alignment.same_architecture:
        if options.match == "structural":
            alignment.raise_for_divergence()
        logger.info(
            "structural alignment of %d checkpoint and %d model tensors left unpaired: %s",
            len(left_source),
            len(left_target),
            alignment.divergences[0].detail,
        )
        return []
    return [
        Match(p.source_key, p.target_key, "structural", confidence=p.confidence, reason=p.reason)
        for p in alignment.pairs
    ]


def _canonical_keys(keys: list[str], opened: OpenedSource, options: LoadOptions) -> dict[str, str]:
    """``{renamed key: canonical key}``: undo the user's rename rules to find each tensor."""
    if all(k in opened.tensors for k in keys):
        return {k: k for k in keys}
    renamed, _ = apply_rules(list(opened.tensors), load_rules(options.rename))
    return {k: renamed.get(k, k) for k in keys}
