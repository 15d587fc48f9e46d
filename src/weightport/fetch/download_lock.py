"""The inter-process lock around one download: one writer per cache entry, with a bounded wait.

Not to be confused with :mod:`weightport.fetch.weightport_lock` (the `weightport.lock` file of pins).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from weightport.errors import CacheNotWritableError, LockTimeoutError, WeightportError
from weightport.fetch.cache import EntryDir, lock_path

logger = logging.getLogger("weightport")


@contextmanager
def entry_lock(target: Path, timeout: float) -> Iterator[None]:
    """Hold the lock for writing ``target`` (``<target>.lock``), waiting at most ``timeout`` seconds.

    Raises:
        LockTimeoutError: Another process held it longer than ``timeout``.
        CacheNotWritableError: The lock file cannot be created.
    """
    from filelock import FileLock, Timeout

    path = lock_path(target)
    try:  # made (and its way from the cache root checked for links) like the entry it guards
        EntryDir(path.parent).close()
    except WeightportError:
        raise
    except OSError as exc:
        raise _not_writable(f"cannot create the cache directory {path.parent}", exc) from exc
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as exc:
        raise LockTimeoutError(
            f"waited {timeout:g}s for another process downloading {target.name} (lock {path})",
            hint="if no other process is running, delete the lock file; otherwise raise lock_timeout",
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the lock is opened with O_NOFOLLOW: a link was planted there
            raise CacheNotWritableError(
                f"the lock file {path} is a symbolic link (to {os.readlink(path)}); refusing to follow it",
                hint="someone else can write this cache directory; remove the link, or use a cache only you write",
            ) from exc
        raise _not_writable(f"cannot write the lock file {path} in the cache directory {path.parent}", exc) from exc
    try:
        yield
    finally:
        lock.release()


def _not_writable(message: str, exc: OSError) -> CacheNotWritableError:
    """A failure to create a file in the cache (permissions, a read-only mount, ...), typed."""
    return CacheNotWritableError(
        f"{message}: {exc.strerror or exc}",
        hint="make it writable, or point WEIGHTPORT_CACHE (or cache_dir=) at a writable directory",
    )
