"""weightport's warning categories, so that users can filter them.

``python -W ignore::weightport.warnings.WeightportWarning`` silences them all.
"""

from __future__ import annotations

import warnings as _warnings


class WeightportWarning(UserWarning):
    """Base of every warning weightport emits."""


class LossyCastWarning(WeightportWarning):
    """A cast that loses precision (fp32 weights into a bf16 model)."""


class FallbackWarning(WeightportWarning):
    """The fast load path could not be used; the slow path ran instead."""


def warn(message: str, category: type[WeightportWarning] = WeightportWarning, stacklevel: int = 3) -> None:
    """Emit ``message`` under ``category``."""
    _warnings.warn(message, category, stacklevel=stacklevel)


class PluginWarning(WeightportWarning):
    """An entry-point plugin that could not be loaded (the others still are)."""


class TrainedWeightsReplacedWarning(WeightportWarning):
    """Weights a source trained (the head of a Lightning checkpoint or a saved model) were
    re-initialised because the model was built with another shape, and nobody asked for it."""


class FrozenHeadWarning(WeightportWarning):
    """A re-initialised head that a fine-tuning callback freezes, so it would not train."""
