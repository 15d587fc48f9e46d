"""Getting one URL into one cache path: hit check, offline, lock, download, checks.

This is the path every URL-backed adapter (``https:``, torchvision, timm without a hub id) takes::

    verified hit ─────────────────────────────────────────────> Fetched(cached=True)
    miss ─ offline? ─> OfflineCacheMissError
         └ lock (bounded wait) ─ re-check (another process may have finished: use its file)
                               ─ quarantine a bad copy, sweep orphaned temp files
                               ─ download (mirror applied) ─> Fetched(cached=False)
"""

from __future__ import annotations

import logging
from pathlib import Path

from weightport.fetch.cache import refuse_linked_directory
from weightport.fetch.download import download
from weightport.fetch.download_lock import entry_lock
from weightport.fetch.integrity import check_cached, quarantine
from weightport.fetch.mirror import mirror_url
from weightport.fetch.offline import require_online
from weightport.fetch.sweep import sweep_entry
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source

logger = logging.getLogger("weightport")


def fetch_url(
    source: Source,
    url: str,
    dest: Path,
    options: FetchOptions,
    *,
    hash_prefix: str | None = None,
) -> Fetched:
    """Fetch ``url`` for ``source`` into the cache path ``dest``, downloading only when needed.

    The pin is ``source.sha256`` (and ``source.size``): the source's own, or the lock file's (the
    fetch step, :mod:`weightport.fetch.step`, fills those in and checks the result again).
    """
    sha256, size = source.sha256, source.size
    problem = None
    refuse_linked_directory(dest.parent)
    if not options.force:
        digest, problem = check_cached(dest, sha256=sha256, size=size, hash_prefix=hash_prefix)
        if digest is not None:
            logger.debug("cache hit for %s: %s", source.uri, dest)
            return _hit(dest, digest)
    require_online(options, source.uri, dest, problem)
    with entry_lock(dest, options.lock_timeout):
        if not options.force:
            digest, problem = check_cached(dest, sha256=sha256, size=size, hash_prefix=hash_prefix)
            if digest is not None:  # another process downloaded it while we waited
                return _hit(dest, digest)
            if problem is not None:
                quarantine(dest, problem)
        sweep_entry(dest)
        result = download(
            mirror_url(url),
            dest,
            sha256=sha256,
            size=size,
            hash_prefix=hash_prefix,
            timeout=options.timeout,
            retries=options.retries,
            max_bytes=options.max_download_bytes,
            deadline=options.deadline,
            progress=options.progress,
            shown_as=url,
        )
    return Fetched(result.path, sha256=result.sha256, size=result.size, cached=False, meta={"url": url})


def _hit(dest: Path, digest: str) -> Fetched:
    return Fetched(dest, sha256=digest, size=dest.stat().st_size, cached=True)
