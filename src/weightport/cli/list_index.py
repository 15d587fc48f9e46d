"""The index ``weightport list`` reads: what torchvision and timm offer, kept once per installed version.

Listing the libraries' names means importing torchvision and timm (seconds, and most of a
``weightport list`` run). Their names change only with their versions, so the command keeps them in
``<weightport cache>/index/sources-<versions>.json`` and reads that file while the versions stay the
same; a missing or unreadable index is rebuilt, a cache that cannot be written only costs the
imports again. Aliases are always read live (they are registered in code).
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from weightport.registry.listing import SourceInfo, alias_sources, library_sources, matches

PACKAGES = ("weightport", "torch", "torchvision", "timm")


def index_path(cache_dir: Path | None = None) -> Path:
    """Where the index for the installed versions lives."""
    from weightport.fetch.cache import cache_root

    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package}-{metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}-none")
    return cache_root(cache_dir) / "index" / f"sources-{'_'.join(versions)}.json"


def indexed_sources(pattern: str | None = None, cache_dir: Path | None = None) -> list[SourceInfo]:
    """Aliases (live) then the libraries' names (from the index), matching ``pattern``."""
    return alias_sources(pattern) + [s for s in _library_index(cache_dir) if matches(pattern, s.scheme, s.name)]


def _library_index(cache_dir: Path | None) -> list[SourceInfo]:
    path = index_path(cache_dir)
    try:
        return [SourceInfo(**{**row, "tags": tuple(row["tags"])}) for row in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError, KeyError):
        pass  # not there yet, or unreadable: rebuilt below
    found = library_sources(None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps([{**vars(i), "tags": list(i.tags)} for i in found]))
        os.replace(tmp, path)
    except OSError:
        pass
    return found
