"""Cache integrity: checking a cached file before trusting it, and putting a bad one aside.

A hit is trusted when its size matches the sidecar record and its full sha256 matches the sidecar
and any pin. With a pin (a full sha256, or the hash prefix in a torchvision file name) the file is
hashed once per process. Without one, the digest weightport recorded for the file's exact identity
(path, device, inode, size, mtime and ctime, see :func:`weightport.digest.identity`) is trusted, so
an unchanged entry is not hashed again in every process; any write to the file changes its ctime,
and it is hashed again. A file without a
sidecar is not a hit (nothing says weightport verified it) unless it matches a full sha256 pin. A file that fails is
renamed aside (quarantined, never deleted: it may be evidence) and fetched again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from weightport.digest import file_sha256
from weightport.errors import IntegrityError, WeightportError
from weightport.fetch.cache import EntryDir, read_sidecar, sidecar_path, write_sidecar

logger = logging.getLogger("weightport")

def check_cached(
    path: Path, *, sha256: str | None = None, size: int | None = None, hash_prefix: str | None = None
) -> tuple[str | None, str | None]:
    """Check a cache entry.

    Returns:
        ``(digest, None)`` for a good file, ``(None, None)`` when absent, and ``(None, reason)`` when
        the file is there but must not be used.
    """
    if path.is_symlink():
        # weightport only ever creates regular files here (by rename); a link was planted by
        # someone else and may point anywhere (another user's file, /dev/zero, a FIFO).
        return None, f"{path} is a symbolic link to {os.readlink(path)}, not a file weightport wrote"
    try:
        st = path.stat()
    except FileNotFoundError:
        return None, None
    if not path.is_file():
        return None, f"{path} is not a regular file"
    recorded = read_sidecar(path)
    if recorded is None and sha256 is None:
        # Only a file weightport verified when it stored it has a record; one without (a sidecar
        # deleted, or content put there by someone else) proves nothing by hashing it now.
        return None, f"{path} has no recorded digest ({path.name}.sha256 is missing), so it was never verified"
    if recorded is not None and recorded[1] != st.st_size:
        return None, f"size {st.st_size} differs from the recorded {recorded[1]}"
    if size is not None and st.st_size != size:
        return None, f"size {st.st_size} differs from the expected {size}"
    # Pinned: hashed (once per process) before use. Unpinned: a digest recorded for this exact file
    # identity is trusted (the sidecar must still match it); the first check of an identity hashes.
    digest = file_sha256(path, persistent=sha256 is None and hash_prefix is None)
    if recorded is not None and digest != recorded[0]:
        return None, f"sha256 {digest} differs from the recorded {recorded[0]}"
    if sha256 is not None and digest != sha256.lower():
        return None, f"sha256 {digest} differs from the pinned {sha256.lower()}"
    if hash_prefix is not None and not digest.startswith(hash_prefix.lower()):
        return None, f"sha256 {digest} does not start with {hash_prefix.lower()} (the hash in its name)"
    if recorded is None:  # verified against the full pinned sha256 just now
        try:
            write_sidecar(path, digest, st.st_size)
        except OSError:  # a read-only cache still serves hits
            pass
    return digest, None


def quarantine(path: Path, reason: str) -> Path | None:
    """Rename a bad cache entry aside (``<name>.corrupt-<ns>``) and drop its sidecar.

    Raises:
        IntegrityError: The bad file cannot be moved (e.g. a read-only cache).
    """
    aside = path.with_name(f"{path.name}.corrupt-{time.time_ns()}")
    try:
        with EntryDir(path.parent) as entry:  # renamed within the directory held open, never through a link
            entry.replace(path.name, aside.name)
            with contextlib.suppress(OSError):
                entry.unlink(sidecar_path(path).name)
    except FileNotFoundError:
        return None
    except WeightportError:
        raise
    except OSError as exc:
        raise IntegrityError(
            f"cached file {path} is bad ({reason}) and cannot be moved aside: {exc.strerror}",
            hint=f"delete {path} by hand, or point the cache at a writable directory",
        ) from exc
    logger.warning("cached file %s is bad (%s); moved to %s and fetching again", path, reason, aside.name)
    return aside
