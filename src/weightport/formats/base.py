"""What a format reader returns, and the options every reader takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def limit_hint(*names: str) -> str:
    """The hint for a refused limit: how a caller raises it (the ``read_limits`` load option)."""
    given = ", ".join(f"'{n}': ..." for n in names)
    return f"if you trust the file, pass read_limits={{{given}}} to load_weights / from_pretrained"


@dataclass(frozen=True)
class ReadOptions:
    """Options for reading a checkpoint.

    Attributes:
        mmap: Map tensors from the file instead of reading them into memory, where the format allows.
        allow_globals: Extra ``"module.Name"`` globals a pickle may use, beyond the safe allowlist.
            Only for classes the user trusts; functions are never allowed.
        max_tensor_bytes: Refuse a tensor whose logical size exceeds this many bytes.
        max_expansion: Refuse a tensor whose logical size is more than this many times the bytes
            its storage holds (a stride-0 "expanded" tensor that would blow up on the first copy).
        max_header_bytes: Refuse a safetensors header, or a pickle's object stream, larger than this.
        max_depth: Refuse a pickled object whose containers nest deeper than this.
        max_objects: Refuse a pickled object that a walk following every reference would expand
            past this many objects (shared references multiply: a 2 kB memo bomb is 2**40 paths).
        stub_unknown_classes: Keep objects of classes outside the allowlist (found in hyper-parameters
            and other non-weight entries) as inert :class:`~weightport.formats.safety.UnresolvedObject`
            placeholders instead of refusing the file. Nothing is imported or run either way.
    """

    mmap: bool = True
    allow_globals: tuple[str, ...] = ()
    max_tensor_bytes: int = 1 << 40
    max_expansion: float = 64.0
    max_header_bytes: int = 100 << 20
    max_depth: int = 100
    max_objects: int = 5_000_000
    stub_unknown_classes: bool = True


@dataclass
class RawCheckpoint:
    """The content of a checkpoint file (or sharded set), before any layout work.

    Attributes:
        obj: What the file holds: a flat ``{key: tensor}`` dict, or a nested container
            (a Lightning checkpoint dict, a training checkpoint with ``model``/``optimizer``...).
        format: The reader's name: ``safetensors``, ``safetensors-sharded``, ``torch``,
            ``torch-legacy``, ``lightning``, ``npz``, ``torch-sharded``.
        path: The file read (for sharded sets: the index file).
        files: Every file read.
        metadata: What the file says besides tensors: safetensors header metadata, a Lightning
            checkpoint's ``hyper_parameters`` and versions, notes about stubbed objects.
    """

    obj: Any
    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
