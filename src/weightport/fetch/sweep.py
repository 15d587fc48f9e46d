"""Removing temp files that crashed or killed downloads left behind."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

from weightport.fetch.cache import TEMP_SUFFIX, EntryDir

logger = logging.getLogger("weightport")


def sweep_entry(target: Path) -> int:
    """Remove every temp file of ``target``; call only while holding its lock.

    Writers hold the entry lock for as long as their temp file exists, so whoever holds the lock
    knows any temp file left for that entry is orphaned.

    Returns:
        How many files were removed.
    """
    prefix = f".{target.name}."
    removed = 0
    try:
        entry = EntryDir(target.parent)
    except OSError:
        return 0
    with entry:  # the directory held open: nothing is removed through a link planted in its place
        for name in entry.names():
            if name.startswith(prefix) and name.endswith(TEMP_SUFFIX):
                try:
                    entry.unlink(name)
                    removed += 1
                    logger.info("removed stale temp file %s", target.parent / name)
                except OSError:
                    pass
    return removed


def sweep_dir(directory: Path, max_age: float = 24 * 3600.0) -> int:
    """Remove temp files under ``directory`` (recursively) older than ``max_age`` seconds."""
    cutoff = time.time() - max_age
    return _remove(p for p in directory.rglob(f".*{TEMP_SUFFIX}") if _mtime(p) < cutoff)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def _remove(paths: Iterable[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
            logger.info("removed stale temp file %s", path)
        except OSError:
            pass
    return removed
