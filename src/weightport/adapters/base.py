"""The adapter contract: one class per kind of source, registered by scheme."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source

__all__ = ["Adapter", "FetchOptions", "Fetched"]  # the fetch types are re-exported for adapter authors


class Adapter(ABC):
    """Turns a source string of one scheme into a :class:`Source`, and a :class:`Source` into files.

    Subclasses set ``scheme`` and register with :func:`weightport.register_adapter`.
    """

    scheme: ClassVar[str]

    @abstractmethod
    def parse(self, rest: str, uri: str) -> Source:
        """Parse the part of a source string after ``scheme:`` (``uri`` is the whole string)."""

    @abstractmethod
    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        """Return local files for ``source``, downloading into the cache only what is missing.

        Only files: the fetch step (:func:`weightport.fetch.step.fetch_files`) applies pins, the
        lock file and offline mode around every adapter, and ``source`` already carries the lock
        file's pins. In offline mode this is called only when :meth:`cached_path` found the source.
        """

    def cached_path(self, source: Source, options: FetchOptions) -> Path | None:
        """Where ``source`` lies in the cache, if it is there (no network).

        The default, ``None``, means "never cached": offline mode then refuses the source without
        calling :meth:`fetch`. An adapter whose sources can load offline answers here.
        """
        return self.cache_status(source, options)[0]

    def cache_status(self, source: Source, options: FetchOptions) -> tuple[Path | None, str | None]:
        """``(where source lies in the cache or None, why a copy found there cannot be used or None)``."""
        return None, None
