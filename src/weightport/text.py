"""Shortening lists for messages and reports: the one "… and N more" rule."""

from __future__ import annotations

from collections.abc import Iterable


def more(count: int) -> str:
    """The marker for ``count`` items left out: ``"… and 3 more"``."""
    return f"… and {count} more"


def clipped(items: Iterable[object], limit: int | None) -> list[str]:
    """At most ``limit`` items (all when ``None``) as strings, then :func:`more` for the rest."""
    shown = [str(i) for i in items]
    if limit is None or len(shown) <= limit:
        return shown
    return shown[:limit] + [more(len(shown) - limit)]


def listing(items: Iterable[object], limit: int | None = 10, *, sep: str = ", ") -> str:
    """At most ``limit`` items joined by ``sep``, then ``… and N more`` when there are more."""
    return sep.join(clipped(items, limit))
