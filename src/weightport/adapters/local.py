"""Local files and directories: ``file:/path``, ``/path``, ``./path``, ``~/path``."""

from __future__ import annotations

from pathlib import Path

from weightport.adapters.base import Adapter
from weightport.errors import SourceNotFoundError
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source


class LocalAdapter(Adapter):
    """Reads a checkpoint file, or a directory holding one, from local disk."""

    scheme = "file"

    def parse(self, rest: str, uri: str) -> Source:
        if rest.startswith("//"):  # file:///abs/path
            rest = rest[2:]
        path = Path(rest).expanduser()
        return Source(uri=f"file:{path}", scheme="file", location=str(path))

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        path = Path(source.location)
        if not path.exists():
            raise SourceNotFoundError(
                f"checkpoint not found: {path}",
                hint="check the path; relative paths are relative to the current directory "
                f"({Path.cwd()})",
            )
        # A pin (an alias registered with sha256=, or a lock file entry) binds local files too: the
        # fetch step (weightport.fetch.step) checks it, so a bit flip on disk is an IntegrityError.
        return Fetched(path=path, size=path.stat().st_size if path.is_file() else None, cached=True)

    def cached_path(self, source: Source, options: FetchOptions) -> Path | None:
        path = Path(source.location)
        return path if path.exists() else None
