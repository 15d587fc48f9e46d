"""What ``weightport inspect`` reports about a checkpoint, computed two ways.

A local safetensors file is summarised from its header alone, in pure Python: no torch import, no
tensor data read. Everything else goes through the loading pipeline (resolve, fetch, read, extract,
canonicalise) with memory-mapped tensors, so only shapes and dtypes are looked at.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightport.keys import fold_keys
from weightport.registry.source import jsonable


@dataclass(frozen=True)
class TensorInfo:
    """One tensor, as the checkpoint stores it."""

    key: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class Summary:
    """Everything ``inspect`` shows.

    Attributes:
        source: The canonical source string.
        path: The local file (or directory, or index) read.
        format: The reader's format name.
        tensors: Every tensor, keys as stored (after the container is taken out).
        file_bytes: Size of the file(s) on disk.
        container: The entry the weights were found under (``state_dict``), if any.
        dropped: Entries that are not weights (optimizer state, counters).
        key_rules: Canonicalisation rule → how many keys it renames (``module.`` prefixes...).
        metadata: What the checkpoint and its source say besides tensors.
        notes: Remarks from extraction (EMA weights present, ...).
        torch_free: Whether the summary was made without importing torch.
    """

    source: str
    path: str
    format: str
    tensors: list[TensorInfo]
    file_bytes: int | None = None
    container: str | None = None
    dropped: list[str] = field(default_factory=list)
    key_rules: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    torch_free: bool = False

    @property
    def parameters(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def dtypes(self) -> dict[str, int]:
        return dict(Counter(t.dtype for t in self.tensors).most_common())

    def top_level(self) -> dict[str, int]:
        """Tensor count per module under the prefix every key shares (``model.backbone``, ``model.head``).

        These are the candidates for ``into=`` or a prefix to strip.
        """
        split = [t.key.split(".") for t in self.tensors]
        depth = 0
        while split and all(len(parts) > depth + 1 for parts in split) and len({p[depth] for p in split}) == 1:
            depth += 1
        return dict(Counter(".".join(parts[: depth + 1]) for parts in split).most_common())

    def tree(self) -> list[str]:
        return fold_keys(t.key for t in self.tensors)

    def to_dict(self, *, keys: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source, "path": self.path, "format": self.format,
            "tensors": len(self.tensors), "parameters": self.parameters, "bytes": self.tensor_bytes,
            "file_bytes": self.file_bytes, "dtypes": self.dtypes(), "container": self.container,
            "dropped": self.dropped, "key_rules": self.key_rules, "top_level": self.top_level(),
            "tree": self.tree(), "metadata": self.metadata, "notes": self.notes, "torch_free": self.torch_free,
        }
        if keys:
            out["keys"] = [{"key": t.key, "dtype": t.dtype, "shape": list(t.shape)} for t in self.tensors]
        return out


def _rule_counts(keys: Iterable[str]) -> dict[str, int]:
    from weightport.layout.canonical import canonicalise

    _, ops = canonicalise(keys)
    return dict(Counter(op for applied in ops.values() for op in applied))


def summarise_safetensors_file(path: Path, uri: str) -> Summary:
    """A summary from the safetensors header alone (no torch, no tensor data read)."""
    from weightport.formats.safetensors_header import TORCH_DTYPE_NAMES, read_safetensors_header

    metadata, entries = read_safetensors_header(path)
    tensors = [
        TensorInfo(key, TORCH_DTYPE_NAMES.get(dtype, dtype.lower()), tuple(shape), end - start)
        for key, (dtype, shape, (start, end)) in entries.items()
    ]
    return Summary(
        source=uri, path=str(path), format="safetensors", tensors=tensors, file_bytes=path.stat().st_size,
        key_rules=_rule_counts(entries), metadata={"safetensors": dict(metadata)} if metadata else {},
        torch_free=True,
    )


def summarise_opened(opened: Any) -> Summary:
    """A summary of an :class:`~weightport.loading.source_io.OpenedSource`."""
    extracted = opened.extracted
    tensors = [
        TensorInfo(key, str(t.dtype).removeprefix("torch."), tuple(t.shape), t.numel() * t.element_size())
        for key, t in extracted.tensors.items()
    ]
    files = opened.raw.files or [opened.raw.path]
    metadata: dict[str, Any] = {}
    if opened.raw.metadata:
        metadata.update(jsonable(opened.raw.metadata))
    if opened.fetched.meta.get("config"):
        metadata["hub_config"] = jsonable(opened.fetched.meta["config"])
    if opened.source.meta:
        metadata["source"] = jsonable(opened.source.meta)
    return Summary(
        source=opened.source.uri, path=str(opened.raw.path), format=opened.raw.format, tensors=tensors,
        file_bytes=sum(Path(p).stat().st_size for p in files if Path(p).is_file()),
        container=extracted.container, dropped=list(extracted.dropped),
        key_rules=_rule_counts(extracted.tensors), metadata=metadata, notes=list(extracted.notes),
    )


