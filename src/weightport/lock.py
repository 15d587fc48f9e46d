"""Making a lock file: resolve and fetch each source, record what it resolved to.

This runs the pipeline's first two stages (resolve, fetch) for each source, so it sits above them;
the file format and the check applied on every fetch are :mod:`weightport.fetch.weightport_lock`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.fetch.weightport_lock import LOCKFILE_NAME, LockFile, entry_for
from weightport.registry.resolve import resolve
from weightport.registry.source import Source

__all__ = ["lock_sources"]

logger = logging.getLogger("weightport")


def lock_sources(
    sources: Iterable[str | Source], path: Path | str = LOCKFILE_NAME, *, options: FetchOptions | None = None
) -> LockFile:
    """Resolve and fetch each source, record it, and write the lock file.

    Existing entries of other sources in the file are kept; entries of these sources are replaced.
    """
    path = Path(path)
    lock = LockFile.load(path) if path.exists() else LockFile(path=path)
    # Fetch without the lock in force: this is how the lock is (re)made.
    fetch_options = dataclasses.replace(options or FetchOptions(), lockfile=False)
    for item in sources:
        source = resolve(item)
        fetched = fetch_files(source, fetch_options)
        lock.add(entry_for(source, fetched))
        logger.info("locked %s", source.uri)
    lock.save(path)
    return lock
