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

if TYPE_CHECKING:
    from weightport.layout.structural import Prover
    from weightport.loading.options import LoadOptions

logger = logging.getLogger("weightport")


def align_leftovers(
    source: Sequence[str],
    target: Mapping[str, Any] | Sequence[str],
    found: Sequence[Match],
    tensors: Mapping[str, Any],
    options: LoadOptions,
    prove: Prover | None = None,
) -> list[Match]:
    """Structural matches for the keys ``found`` leaves unpaired.

    Args:
        source: Checkpoint keys after rename rules, in checkpoint order.
        target: The target state dict (key → tensor, in registration order). A bare list of keys
            carries no shapes, so nothing can be aligned and nothing is returned.
        found: Matches the earlier stages made.
        tensors: The checkpoint's tensors under the keys of ``source``.
        options: The load options (``match`` is used).
        prove: Proves the pairing of same-shaped modules that their paths do not (see
            :func:`~weightport.layout.structural.align`).

    Raises:
        AmbiguousMappingError: Two pairings are equally plausible, or only registration order would
            pair a group of same-shaped modules.
        ArchitectureMismatchError: The structures differ and either ``match="structural"`` or no
            tensor matched by name either (the checkpoint is for another architecture).
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
    # Imported here: a load whose names placed every tensor (most) never needs the aligner.
    from weightport.layout.spec import TensorSpec
    from weightport.layout.structural import align

    alignment = align(
        [TensorSpec.of(k, tensors[k]) for k in left_source],
        [TensorSpec.of(k, target[k]) for k in left_target],
        prove=prove,
    )
    if not alignment.same_architecture:
        if options.match == "structural" or not found:
            alignment.raise_for_divergence()
        logger.info(
            "structural alignment of %d checkpoint and %d model tensors left unpaired: %s",
            len(left_source),
            len(left_target),
            alignment.divergences[0].detail,
        )
        return []
    alignment.raise_for_ambiguity()
    return [
        Match(p.source_key, p.target_key, "structural", confidence=p.confidence, reason=p.reason)
        for p in alignment.pairs
    ]
