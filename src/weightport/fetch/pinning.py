"""The checks every adapter runs on what it fetched: the source's own pin, then the lock file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from weightport.errors import IntegrityError
from weightport.fetch.types import Fetched, FetchOptions
from weightport.fetch.weightport_lock import check_locked, locked_entry
from weightport.registry.source import Source


def check_fetched(source: Source, fetched: Fetched, options: FetchOptions) -> Fetched:
    """Check ``fetched`` against ``source.sha256``/``source.size`` and the lock file in force.

    Returns:
        ``fetched``, with its sha256 filled in when a check computed it.

    Raises:
        IntegrityError: A pinned or locked digest or size differs.
    """
    path = Path(fetched.path)
    if (source.sha256 or source.size is not None) and path.is_file():
        from weightport.fetch.integrity import file_sha256

        digest = fetched.sha256 or file_sha256(path)
        size = path.stat().st_size
        if source.sha256 and digest != source.sha256.lower():
            raise IntegrityError(
                f"sha256 mismatch for {source.uri} ({path}): expected {source.sha256.lower()}, got {digest}",
                hint="the file is not the one pinned; reinstall or re-fetch it, or fix the pin",
            )
        if source.size is not None and size != source.size:
            raise IntegrityError(f"{source.uri} ({path}): expected {source.size} bytes, got {size}")
        fetched = dataclasses.replace(fetched, sha256=digest, size=size)
    entry = locked_entry(source, options)
    if entry is not None:
        check_locked(source, fetched, entry)
    return fetched
