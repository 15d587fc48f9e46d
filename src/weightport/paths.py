"""Names that must stay inside their root: the one confinement rule for every name a source gives.

A hub file name (inside its repository), a ``pkg:`` path (inside its package) and a shard name
(inside its index's directory) are all *names relative to a root*. The rule is checked on the
name, before any I/O, and never on where a symlink resolves to: hub snapshots keep their files as
symlinks into ``../../blobs``, and that is not an escape. What a resolved link may reach is a
question for the one source kind that has to ask it, not for this rule.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from weightport.errors import PathTraversalError

#: The longest name one path segment may have on common file systems (bytes, UTF-8).
MAX_SEGMENT_BYTES = 255


def confined_name(name: str, what: str, *, hint: str) -> str:
    """``name`` as a normalised relative POSIX path that cannot leave its root.

    ``.`` segments and repeated slashes are dropped (``./a//b`` is ``a/b``).

    Args:
        name: The name as the source, index or user wrote it.
        what: What the name is, for the message (``"shard name"``, ``"pkg:x/y: package path"``).
        hint: What to write instead.

    Raises:
        PathTraversalError: Empty, absolute (``/``, ``\\``), with a drive or other ``:``, a backslash,
            a NUL byte, a ``..`` segment, or a segment longer than the file system allows.
    """
    if not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name or "\x00" in name:
        raise PathTraversalError(
            f"{what} {name!r} must be a relative path inside its root (no leading '/', no '\\', ':' or NUL)",
            hint=hint,
        )
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        raise PathTraversalError(f"{what} {name!r} contains '..' and could reach outside its root", hint=hint)
    if not parts:
        raise PathTraversalError(f"{what} {name!r} names no file inside its root", hint=hint)
    long = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES), None)
    if long is not None:
        raise PathTraversalError(
            f"{what} {name[:80]!r}… has a part of {len(long.encode('utf-8', 'surrogatepass'))} bytes, longer than "
            f"a file name may be ({MAX_SEGMENT_BYTES})", hint=hint)
    return str(PurePosixPath(*parts))


def confined_path(root: Path, name: str, what: str, *, hint: str) -> Path:
    """``root / name`` for a ``name`` that passes :func:`confined_name` (symlinks are not resolved)."""
    return root / confined_name(name, what, hint=hint)
