"""sha256 of local files, computed once per (path, size, mtime) and remembered for the process."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

_CACHE: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()
_CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    """The file's full sha256 (hex), memoised on path, size and modification time."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _CACHE:
            return _CACHE[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _lock:
        _CACHE[key] = value
    return value


def digest_of(files: Sequence[Path]) -> str | None:
    """The sha256 of a single file; for several files (shards), of their sorted digests."""
    if not files:
        return None
    if len(files) == 1:
        return file_sha256(files[0])
    joined = "".join(sorted(file_sha256(p) for p in files))
    return hashlib.sha256(joined.encode()).hexdigest()
