"""sha256 of local files: hashed once per process, remembered across processes, or later.

Hashing a large checkpoint costs a full read of it (about a second per GB). A digest is keyed by
the file's identity: its real path, device, inode, size, modification time and **status-change
time** (``st_ctime_ns``, which every write, rename into place, ``chmod`` or ``utime`` sets to the
current time and which no user call can set back). Within a process a digest is memoised per
identity; with ``persistent=True`` it is also kept in ``<cache>/digests/`` so that another process
trusts it for the same identity — the way git's index trusts file stat data.

What uses which (SECURITY.md, *When files are hashed*):

- the report's sha256 of an unpinned local file: :class:`PendingDigest`, looked up (memo, then the
  record, for the identity the file had when it was loaded) or hashed only when asked for
  (persistent), and hashed only if the file's identity is still that one;
- an unpinned hit in weightport's own cache: the persistent record (the entry's sidecar digest
  must match it);
- a pin (``sha256=``, ``#sha256=``, a lock file): hashed once per process, never the record.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("weightport")

Identity = tuple[str, int, int, int, int, int]

_memo: dict[Identity, str] = {}
_lock = threading.Lock()
_CHUNK = 1 << 22
#: A file whose ctime is this recent when it is hashed may be written again within the same clock
#: tick without its identity changing ("racy git"): its digest is used, but neither memoised nor
#: recorded, so the next look hashes it again.
RACY_NS = 2_000_000_000


def identity(path: Path) -> Identity:
    """The file identity a digest is keyed by (path, device, inode, size, mtime and ctime in ns)."""
    st = os.stat(path)
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def known_sha256(path: Path, *, persistent: bool = False) -> str | None:
    """The digest of ``path`` if this process or (``persistent``) the record already knows it; no hashing."""
    key = identity(path)
    with _lock:
        known = _memo.get(key)
    if known is None and persistent:
        known = _recorded(key)
        if known is not None:
            with _lock:
                _memo[key] = known
    return known


def file_sha256(path: Path, *, persistent: bool = False) -> str:
    """The full sha256 (hex) of ``path``.

    Args:
        path: The file.
        persistent: Also look up and record the digest in weightport's cache (keyed by the file's
            identity, see :func:`identity`), for files whose identity does not change.
    """
    key = identity(path)
    known = known_sha256(path, persistent=persistent)
    if known is None:
        known = _hash_file(path)
        if identity(path) != key:  # written to while it was read: the digest describes no one state
            from weightport.errors import IntegrityError

            raise IntegrityError(f"{path} changed while it was being hashed",
                                 hint="load it again once nothing writes to it")
        if time.time_ns() - key[5] < RACY_NS:
            return known
        if persistent:
            _record(key, known)
    with _lock:
        _memo[key] = known
    return known


def _hash_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def digest_of(files: Sequence[Path], *, persistent: bool = False) -> str | None:
    """The sha256 of a single file; for several files (shards), of their sorted digests."""
    if not files:
        return None
    return _combined([file_sha256(p, persistent=persistent) for p in files])


def _combined(digests: Sequence[str]) -> str:
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()


def _record_path(key: Identity) -> Path:
    from weightport.fetch.cache import cache_root

    name = hashlib.sha256("\0".join(map(str, key)).encode()).hexdigest()
    return cache_root() / "digests" / name[:2] / name


def _recorded(key: Identity) -> str | None:
    try:
        text = _record_path(key).read_text().strip()
    except OSError:
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


def _record(key: Identity, digest: str) -> None:
    path = _record_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".digest.", suffix=".part")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache only costs the next load a re-hash
        logger.debug("weightport: could not record the digest of %s: %s", key[0], exc)


class PendingDigest:
    """The sha256 of loaded files, computed when it is first asked for (a report's provenance).

    The files' identities are taken when they are loaded; the digest is computed (or taken from
    this process's memo or the persistent record) only if every file still has that identity, so
    the digest is always that of the bytes that were loaded. A file changed since (any write sets
    its ctime) gives ``None``, with a warning, never the digest of other bytes.
    """

    def __init__(self, files: Sequence[Path], identities: Sequence[Identity] | None = None) -> None:
        self.files = [Path(p) for p in files]
        self.identities = list(identities) if identities is not None else [identity(p) for p in self.files]

    @classmethod
    def of(cls, files: Sequence[Path]) -> str | PendingDigest | None:
        """The digest when this process already knows it (no hashing), else a pending one.

        The persistent record is looked up only when the digest is read (:meth:`resolve`), not
        during the load: a load reads nothing of weightport's cache for a local file.
        """
        if not files:
            return None
        keys = [identity(p) for p in files]
        with _lock:
            known = [_memo.get(key) for key in keys]
        if all(k is not None for k in known):
            return _combined(known)  # type: ignore[arg-type]  # none is None
        return cls(files, keys)

    def resolve(self) -> str | None:
        """Hash now (once): the digest of the files as they were loaded, or None if one changed.

        A digest this process or the record already holds for the identity a file had when it was
        loaded is that of the loaded bytes, whatever happened to the file since; otherwise the file
        is hashed only if it still has that identity.
        """
        try:
            digests = [self._digest(path, key) for path, key in zip(self.files, self.identities)]
        except OSError:
            digests = [None]
        except Exception as exc:  # changed while hashing (IntegrityError)
            logger.warning("weightport: no sha256 for %s: %s", ", ".join(map(str, self.files)), exc)
            return None
        if any(d is None for d in digests):
            logger.warning("weightport: no sha256 for %s: the file changed (or went away) after it was loaded",
                           ", ".join(map(str, self.files)))
            return None
        return _combined(digests)  # type: ignore[arg-type]  # none is None

    @staticmethod
    def _digest(path: Path, key: Identity) -> str | None:
        with _lock:
            known = _memo.get(key)
        if known is None:
            known = _recorded(key)
            if known is not None:
                with _lock:
                    _memo[key] = known
        if known is not None:
            return known
        if identity(path) != key:
            return None
        digest = file_sha256(path, persistent=True)
        return digest if identity(path) == key else None

    def __reduce__(self) -> tuple[Any, ...]:  # a pickled report carries the digest, not the promise
        return (_resolved, (self.resolve(),))


def _resolved(digest: str | None) -> str | None:
    return digest
