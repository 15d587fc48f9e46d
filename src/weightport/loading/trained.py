"""Trained weights a load would replace: a source with its own head of another size.

A backbone from ImageNet with a new head is the usual seed recipe and stays quiet (reported). A
source that is itself a trained model of this kind — a Lightning checkpoint, or a directory written
by ``save_pretrained`` — carries a head that was trained for the task; re-initialising it because
the model was built with another class count throws that training away, so it warns with
:class:`~weightport.warnings.TrainedWeightsReplacedWarning` unless the user asked for it.
"""

from __future__ import annotations

from pathlib import Path

from weightport.report import LoadPlan

#: Files ``save_pretrained`` writes beside the weights.
SAVED_CONFIG = "config.json"
SAVED_PROVENANCE = "weightport.json"


def is_saved_model(path: Path) -> bool:
    """Whether ``path`` (a directory, or a file in one) was written by ``save_pretrained``."""
    directory = path if path.is_dir() else path.parent
    return (directory / SAVED_PROVENANCE).is_file() and (directory / SAVED_CONFIG).is_file()


def is_trained_model(plan: LoadPlan) -> bool:
    """Whether the plan's source is a trained model of its own (Lightning checkpoint, saved model)."""
    src = plan.source
    return src.format == "lightning" or (src.path is not None and is_saved_model(Path(src.path)))


def replaced_trained_weights(plan: LoadPlan) -> list[str]:
    """Target keys whose trained checkpoint values the plan re-initialises instead (empty for a seed)."""
    if not is_trained_model(plan):
        return []
    return [r.key for r in plan.reinitialized if r.replaced is not None and r.reason != "named in reinit"]


def warn_replaced(plan: LoadPlan, *, advice: str) -> None:
    """Warn when trained weights were re-initialised without being asked for."""
    keys = replaced_trained_weights(plan)
    if not keys:
        return
    from weightport.keys import fold_keys
    from weightport.warnings import TrainedWeightsReplacedWarning, warn

    reasons = sorted({r.reason for r in plan.reinitialized if r.key in keys})
    warn(f"{plan.source.uri} is a trained model, and its trained {', '.join(fold_keys(keys, limit=4))} were "
         f"re-initialised ({'; '.join(reasons)}): {advice}", TrainedWeightsReplacedWarning, stacklevel=4)
