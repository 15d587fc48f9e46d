"""URL prefix rewriting for mirrors: ``WEIGHTPORT_MIRROR="https://a/=https://mirror/;..."``.

The cache key stays the original URL, so a file fetched through a mirror is found again whether or
not the mirror is configured.
"""

from __future__ import annotations

import logging
import os

from weightport.errors import InvalidSourceError

logger = logging.getLogger("weightport")

ENV = "WEIGHTPORT_MIRROR"


def parse_mirrors(spec: str) -> list[tuple[str, str]]:
    """Parse ``"PREFIX=REPLACEMENT;PREFIX=REPLACEMENT"`` into pairs, longest prefix first.

    Raises:
        InvalidSourceError: An entry has no ``=`` or an empty prefix.
    """
    pairs: list[tuple[str, str]] = []
    for entry in spec.replace("\n", ";").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        prefix, sep, replacement = entry.partition("=")
        if not sep or not prefix.strip():
            raise InvalidSourceError(
                f"bad {ENV} entry {entry!r}",
                hint=f'write {ENV}="https://origin/=https://mirror/;https://other/=https://mirror2/"',
            )
        pairs.append((prefix.strip(), replacement.strip()))
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def mirror_url(url: str, spec: str | None = None) -> str:
    """``url`` with the longest matching mirror prefix replaced (``spec`` defaults to ``$WEIGHTPORT_MIRROR``)."""
    spec = os.environ.get(ENV, "") if spec is None else spec
    for prefix, replacement in parse_mirrors(spec):
        if url.startswith(prefix):
            rewritten = replacement + url[len(prefix) :]
            logger.debug("mirror: %s -> %s", url, rewritten)
            return rewritten
    return url
