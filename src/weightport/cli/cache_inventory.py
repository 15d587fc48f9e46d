"""What lies in the caches weightport writes to, classified by the fetch layer's naming rules.

weightport's own cache holds URL downloads (``<root>/url/<key>/<file>``); torchvision and timm URL
downloads live in torch.hub's checkpoint directory with the same sidecar, lock and temp names
(see :mod:`weightport.fetch.cache`). Hugging Face repositories are in huggingface_hub's cache, which
its own tools manage (``hf cache scan``), so they are pointed at, not listed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from weightport.fetch.cache import (
    LOCK_SUFFIX,
    SIDECAR_SUFFIX,
    TEMP_SUFFIX,
    cache_root,
    read_sidecar,
    torch_hub_checkpoints,
)

CORRUPT_MARK = ".corrupt-"


@dataclass(frozen=True)
class CacheEntry:
    """One file in a cache.

    Attributes:
        cache: ``weightport`` or ``torch-hub``.
        path: The file.
        kind: ``file`` (a cached download), ``temp`` (a download in progress or abandoned) or
            ``quarantined`` (a bad copy moved aside).
        size: Its size in bytes.
        mtime: Its modification time (seconds since the epoch).
        recorded: The ``(sha256, size)`` its sidecar records, for a ``file``.
    """

    cache: str
    path: Path
    kind: str
    size: int
    mtime: float
    recorded: tuple[str, int] | None = None

    def matches(self, pattern: str) -> bool:
        """Whether ``pattern`` (a glob) matches the file name, its path, or its cache key directory."""
        return any(fnmatch.fnmatch(text, pattern) for text in (self.path.name, str(self.path), self.path.parent.name))


def cache_roots(cache_dir: Path | None = None) -> dict[str, Path]:
    """The directories searched, by cache name."""
    return {"weightport": cache_root(cache_dir), "torch-hub": torch_hub_checkpoints()}


def classify(path: Path) -> str | None:
    """``file``, ``temp``, ``quarantined``, or ``None`` for a sidecar or lock file."""
    name = path.name
    if name.endswith(TEMP_SUFFIX) and name.startswith("."):
        return "temp"
    if name.endswith((SIDECAR_SUFFIX, LOCK_SUFFIX)):
        return None
    if CORRUPT_MARK in name:
        return "quarantined"
    return "file"


def entries(cache_dir: Path | None = None) -> Iterator[CacheEntry]:
    """Every file in the caches, sidecars and locks left out."""
    for cache, root in cache_roots(cache_dir).items():
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            kind = classify(path)
            if kind is None:
                continue
            try:
                st = path.stat()
            except OSError:  # removed while we looked
                continue
            recorded = read_sidecar(path) if kind == "file" else None
            yield CacheEntry(cache, path, kind, st.st_size, st.st_mtime, recorded)


def orphan_sidecars(cache_dir: Path | None = None) -> list[Path]:
    """Sidecars whose file is gone."""
    out = []
    for root in cache_roots(cache_dir).values():
        if root.is_dir():
            out += [p for p in root.rglob(f"*{SIDECAR_SUFFIX}")
                    if not p.with_name(p.name[: -len(SIDECAR_SUFFIX)]).exists()]
    return out
