"""sha256 of local files: hashed once per process, and optionally remembered across processes.

Hashing a large checkpoint costs a full read of it (about a second per GB). Within a process a
digest is memoised per (path, inode, size, mtime). For provenance of local files (the sha256 in a
load report), digests are also kept in ``<cache>/digests/``, keyed by the same file identity, so
that loading the same unchanged file again costs no hashing — the way git's index trusts file stat
data. Checks of weightport's own cache entries never use the persistent record: they re-hash once
per process, so bit rot and tampering are still caught.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("weightport")

_memo: dict[tuple[str, int, int, int], str] = {}
_lock = threading.Lock()
_CHUNK = 1 << 22


def _identity(path: Path) -> tuple[str, int, int, int]:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def file_sha256(path: Path, *, persistent: bool = False) -> str:
    """The full sha256 (hex) of ``path``.

    Args:
        path: The file.
        persistent: Also look up and record the digest in weightport's cache (keyed by path, inode,
            size and modification time), for provenance of files that do not change.
    """
    identity = _identity(path)
    with _lock:
        known = _memo.get(identity)
    if known is None and persistent:
        known = _recorded(identity)
    if known is None:
        hasher = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                hasher.update(chunk)
        known = hasher.hexdigest()
        if persistent:
            _record(identity, known)
    with _lock:
        _memo[identity] = known
    return known


def digest_of(files: Sequence[Path], *, persistent: bool = False) -> str | None:
    """The sha256 of a single file; for several files (shards), of their sorted digests."""
    if not files:
        return None
    if len(files) == 1:
        return file_sha256(files[0], persistent=persistent)
    joined = "".join(sorted(file_sha256(p, persistent=persistent) for p in files))
    return hashlib.sha256(joined.encode()).hexdigest()


def _record_path(identity: tuple[str, int, int, int]) -> Path:
    from weightport.fetch.cache import cache_root

    key = hashlib.sha256("\0".join(map(str, identity)).encode()).hexdigest()
    return cache_root() / "digests" / key[:2] / key


def _recorded(identity: tuple[str, int, int, int]) -> str | None:
    try:
        text = _record_path(identity).read_text().strip()
    except OSError:
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


def _record(identity: tuple[str, int, int, int], digest: str) -> None:
    path = _record_path(identity)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".digest.", suffix=".part")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache only costs the next load a re-hash
        logger.debug("weightport: could not record the digest of %s: %s", identity[0], exc)
