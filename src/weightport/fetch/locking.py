"""One writer per cache entry across processes: a file lock with a bounded wait."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from weightport.errors import CacheNotWritableError, LockTimeoutError
from weightport.fetch.cache import lock_path

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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise CacheNotWritableError(
            f"cannot create the cache directory {path.parent}",
            hint="make it writable, or point WEIGHTPORT_CACHE (or cache_dir=) at a writable directory",
        ) from exc
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as exc:
        raise LockTimeoutError(
            f"waited {timeout:g}s for another process downloading {target.name} (lock {path})",
            hint="if no other process is running, delete the lock file; otherwise raise lock_timeout",
        ) from exc
    except PermissionError as exc:
        raise CacheNotWritableError(
            f"cannot write the lock file {path} in the cache directory {path.parent}",
            hint="make it writable, or point WEIGHTPORT_CACHE (or cache_dir=) at a writable directory",
        ) from exc
    try:
        yield
    finally:
        lock.release()
