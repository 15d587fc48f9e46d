"""Any URL: ``https://host/path/file.pth`` (or ``http://``); ``#sha256=HEX`` at the end pins the content.

Downloads go to weightport's cache (:mod:`weightport.fetch.cache`), keyed by the URL without its
fragment, through the shared machinery in :mod:`weightport.fetch.store`.
"""

from __future__ import annotations

import re
from pathlib import Path

from weightport.adapters.base import Adapter
from weightport.errors import InvalidSourceError
from weightport.fetch.cache import url_entry, url_filename
from weightport.fetch.integrity import check_cached
from weightport.fetch.store import fetch_url
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class UrlAdapter(Adapter):
    """Downloads a URL into weightport's cache, once, atomically and checked."""

    scheme = "https"

    def parse(self, rest: str, uri: str) -> Source:
        url, _, fragment = uri.partition("#")
        sha256 = None
        if fragment:
            key, _, value = fragment.partition("=")
            if key != "sha256" or not _HEX64.match(value):
                raise InvalidSourceError(
                    f"bad URL fragment {fragment!r} in {uri!r}",
                    hint="the only fragment understood is #sha256=<64 hex digits>",
                )
            sha256 = value.lower()
        if not rest.startswith("//") or len(rest) <= 2:
            raise InvalidSourceError(f"not a URL: {uri!r}", hint="write https://host/path/file")
        scheme = url.split(":", 1)[0].lower()
        return Source(uri=uri, scheme=scheme, location=url, filename=url_filename(url), sha256=sha256)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        return fetch_url(source, source.location, url_entry(source.location, options.cache_dir), options)

    def cache_status(self, source: Source, options: FetchOptions) -> tuple[Path | None, str | None]:
        path = url_entry(source.location, options.cache_dir)
        digest, problem = check_cached(path, sha256=source.sha256, size=source.size)
        return (path if digest is not None else None), problem


