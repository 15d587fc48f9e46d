"""The one fetch step every source passes through: its adapter fetches, the pipeline's policy decides.

An adapter (built-in or a plugin registered with ``register_adapter``) only returns files; the
policy is applied here, around it, so that no adapter can skip it::

    source ─ lock file entry? ─> the source as the adapter sees it (the lock's sha256, size and
           │                     commit filled in where the source pins none)
           ├ offline? ─ adapter.cached_path() is None ─> OfflineCacheMissError (the adapter's fetch
           │                                             is never called, so no socket is opened)
           ├ adapter.fetch() ─> Fetched
           ├ offline and the adapter downloaded anyway ─> OfflineCacheMissError
           └ pins (the source's sha256/size) and the lock file entry, on every result, a cache hit
             or a download ─> IntegrityError on any difference

Inside an adapter, the fetch helpers (:mod:`weightport.fetch.store`: cache-hit integrity, locks,
atomic downloads) use the pins the source carries; this step checks the result again whatever
the adapter did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from weightport.errors import IntegrityError, OfflineCacheMissError
from weightport.fetch.integrity import file_sha256
from weightport.fetch.offline import require_online
from weightport.fetch.types import Fetched, FetchOptions
from weightport.fetch.weightport_lock import LockedSource, check_locked, locked_entry
from weightport.registry.schemes import get_adapter
from weightport.registry.source import Source

__all__ = ["check_pins", "fetch_files", "pinned"]


def fetch_files(source: Source, options: FetchOptions) -> Fetched:
    """Local files for ``source``, through its adapter, under the fetch policy.

    Raises:
        OfflineCacheMissError: Offline mode is on and the source is not cached.
        IntegrityError: A pinned or locked digest, size or revision differs.
        WeightportError: Whatever the adapter raises (not found, download failures...).
    """
    adapter = get_adapter(source.scheme)
    entry = locked_entry(source, options)
    asked = pinned(source, entry)
    offline = options.is_offline()
    if offline:
        where, problem = adapter.cache_status(asked, options)
        if where is None and adapter.cached_path(asked, options) is None:
            require_online(options, source.uri, problem=problem)
    fetched = adapter.fetch(asked, options)
    if offline and not fetched.cached:
        raise OfflineCacheMissError(
            f"offline mode is on, but the {source.scheme}: adapter ({type(adapter).__qualname__}) downloaded "
            f"{source.uri} instead of reading its cache",
            hint="report it to the adapter's authors; unset WEIGHTPORT_OFFLINE / HF_HUB_OFFLINE to allow downloads",
        )
    fetched = check_pins(source, fetched)
    if entry is not None:
        check_locked(source, fetched, entry)
    return fetched


def pinned(source: Source, entry: LockedSource | None) -> Source:
    """``source`` with the lock entry's pins where it has none of its own (the lock's commit always wins)."""
    if entry is None:
        return source
    changes: dict[str, object] = {}
    if source.sha256 is None and entry.sha256 is not None:
        changes["sha256"] = entry.sha256
    if source.size is None and entry.size is not None:
        changes["size"] = entry.size
    if entry.revision and entry.revision != source.revision:
        changes["revision"] = entry.revision
    return source.replace(**changes) if changes else source


def check_pins(source: Source, fetched: Fetched) -> Fetched:
    """Check ``fetched`` against ``source.sha256``/``source.size``.

    Returns:
        ``fetched``, with its sha256 and size filled in when the check computed them.

    Raises:
        IntegrityError: The pinned digest or size differs.
    """
    path = Path(fetched.path)
    if not (source.sha256 or source.size is not None) or not path.is_file():
        return fetched
    digest = fetched.sha256 or file_sha256(path)
    size = path.stat().st_size
    if source.sha256 and digest != source.sha256.lower():
        raise IntegrityError(
            f"sha256 mismatch for {source.uri} ({path}): expected {source.sha256.lower()}, got {digest}",
            hint="the file is not the one pinned; reinstall or re-fetch it, or fix the pin",
        )
    if source.size is not None and size != source.size:
        raise IntegrityError(f"{source.uri} ({path}): expected {source.size} bytes, got {size}",
                             hint="the file is not the one pinned; re-fetch it, or fix the pin")
    return dataclasses.replace(fetched, sha256=digest, size=size)
