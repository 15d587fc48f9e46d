"""Recognise a Lightning checkpoint dict and lift what it says about itself into metadata.

The checkpoint dict itself stays the reader's ``obj`` (the layout stage extracts ``state_dict``);
this module only copies the descriptive entries a user wants to see without digging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Checkpoint keys copied into ``RawCheckpoint.metadata`` when present.
METADATA_KEYS: tuple[str, ...] = (
    "hyper_parameters",
    "hparams_name",
    "hparams_type",
    "datamodule_hyper_parameters",
    "pytorch-lightning_version",
    "epoch",
    "global_step",
)
_MARKER = "pytorch-lightning_version"


def is_lightning(path: Path, obj: Any) -> bool:
    """True for a Lightning checkpoint: its version key, or a ``.ckpt`` dict with a ``state_dict``."""
    if not isinstance(obj, dict):
        return False
    return _MARKER in obj or (path.suffix.lower() == ".ckpt" and "state_dict" in obj)


def describe(path: Path, obj: Any) -> dict[str, Any] | None:
    """The metadata of a Lightning checkpoint, or ``None`` if ``obj`` is not one.

    Returns:
        The entries of :data:`METADATA_KEYS` that the checkpoint has. Hyper-parameters whose classes
        were not imported appear as :class:`~weightport.formats.safety.UnresolvedObject` placeholders.
    """
    if not is_lightning(path, obj):
        return None
    return {key: obj[key] for key in METADATA_KEYS if key in obj}
