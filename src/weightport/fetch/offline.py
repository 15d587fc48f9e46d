"""Offline mode: cached sources load without any socket; an uncached one fails at once."""

from __future__ import annotations

from pathlib import Path

from weightport.errors import OfflineCacheMissError
from weightport.fetch.types import FetchOptions


def require_online(
    options: FetchOptions, what: str, expected: Path | str | None = None, problem: str | None = None
) -> None:
    """Raise :class:`OfflineCacheMissError` for ``what`` when offline mode is on.

    Args:
        options: The fetch options (offline flag, else ``WEIGHTPORT_OFFLINE``/``HF_HUB_OFFLINE``).
        what: The source that is missing (its URI or URL).
        expected: Where it would have been cached.
        problem: Why the copy found there cannot be used, if one was found.
    """
    if options.is_offline():
        where = f" (expected at {expected})" if expected is not None else ""
        state = f"its cached copy is bad: {problem}" if problem else "is not in the cache"
        raise OfflineCacheMissError(
            f"offline mode is on and {what} {state}{where}",
            hint="fetch it once with network access (or copy the cache over), or unset "
            "WEIGHTPORT_OFFLINE / HF_HUB_OFFLINE",
        )
