"""Resolve, fetch, read and extract: from a source string to a flat, canonical state dict."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightport.fetch.step import fetch_files
from weightport.fetch.types import Fetched
from weightport.formats import RawCheckpoint, ReadOptions, read_checkpoint
from weightport.layout.canonical import canonicalise
from weightport.layout.extract import Extracted, extract_state_dict
from weightport.loading.options import LoadOptions
from weightport.registry.resolve import SourceLike, resolve
from weightport.registry.source import Source, jsonable
from weightport.report import SourceInfo


@dataclass
class OpenedSource:
    """A source read down to canonical keys, with everything learnt on the way."""

    source: Source
    fetched: Fetched
    raw: RawCheckpoint
    extracted: Extracted
    tensors: dict[str, Any]  # canonical key -> tensor
    original_keys: dict[str, str]  # canonical key -> key as in the checkpoint
    key_ops: dict[str, list[str]]  # canonical key -> canonicalisation rules applied
    timings: dict[str, float] = field(default_factory=dict)

    def info(self) -> SourceInfo:
        """Provenance for the plan and report."""
        from weightport.digest import PendingDigest

        # An unpinned local file is hashed only when the report's sha256 is read (PendingDigest);
        # a pinned or fetched one was checked before it was read.
        sha256 = self.fetched.sha256 or self.source.sha256 or PendingDigest.of(self.raw.files)
        size = self.fetched.size if self.fetched.size is not None else sum(p.stat().st_size for p in self.raw.files)
        meta = dict(self.source.to_dict())
        for k in ("uri", "sha256", "resolved_by"):
            meta.pop(k, None)
        if self.raw.metadata:
            meta["checkpoint"] = jsonable(self.raw.metadata)
        return SourceInfo(
            uri=self.source.uri, path=str(self.raw.path), format=self.raw.format,
            sha256=sha256,  # type: ignore[arg-type]  # a PendingDigest resolves when read
            bytes=size,
            container=self.extracted.container, resolved_by=self.source.resolved_by, meta=meta,
        )


@dataclass
class FetchedSource:
    """A source resolved and fetched to local files, not yet read."""

    source: Source
    fetched: Fetched
    seconds: float

    def digest(self) -> str | None:
        """The sha256 of the fetched file(s): recorded by the fetch, pinned, or computed once."""
        from weightport.digest import digest_of

        if self.fetched.sha256:
            return self.fetched.sha256
        path = self.fetched.path
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        return digest_of(files, persistent=True)


def fetch_source(source: SourceLike, options: LoadOptions) -> FetchedSource:
    """Resolve ``source`` and fetch its files into the cache (no reading)."""
    t0 = time.perf_counter()
    resolved = resolve(source)
    fetched = fetch_files(resolved, options.fetch)
    return FetchedSource(resolved, fetched, time.perf_counter() - t0)


#: The files read in the current :func:`one_read_per_file` block: (identity, read options, checkpoint).
_reads: ContextVar[list[tuple[Any, ReadOptions, RawCheckpoint]] | None] = ContextVar("weightport_reads",
                                                                                     default=None)


@contextmanager
def one_read_per_file() -> Iterator[None]:
    """Within this block a file is read once per read options (:func:`read_file`).

    ``from_pretrained`` of a Lightning checkpoint reads its ``hyper_parameters`` to build the model,
    then loads the same file: without this, a second full unpickle of the checkpoint.
    """
    token = _reads.set([])
    try:
        yield
    finally:
        _reads.reset(token)


def read_file(path: Path, options: ReadOptions) -> RawCheckpoint:
    """:func:`~weightport.formats.read_checkpoint`, or inside :func:`one_read_per_file` the checkpoint
    this block already read from the same file: the same identity (path, inode, size, mtime and
    ctime, :func:`weightport.digest.identity`) and the same read options. A file that changed is
    read again; one that changed while it was read is not remembered."""
    reads = _reads.get()
    if reads is None or not path.is_file():
        return read_checkpoint(path, options)
    from weightport.digest import identity

    before = identity(path)
    for seen, seen_options, raw in reads:
        if seen == before and seen_options == options:
            return raw
    raw = read_checkpoint(path, options)
    if identity(path) == before:
        reads.append((before, options, raw))
    return raw


def read_source(fs: FetchedSource, options: LoadOptions, *, fetched: Fetched | None = None) -> OpenedSource:
    """Read a fetched source and extract canonical tensors (``fetched`` overrides the files read)."""
    fetched = fetched or fs.fetched
    t0 = time.perf_counter()
    raw = read_file(fetched.path, options.read_options())
    extracted = extract_state_dict(raw.obj, ema=options.ema)
    canonical, key_ops = canonicalise(extracted.tensors)
    tensors = {new: extracted.tensors[old] for new, old in canonical.items()}
    timings = {"fetch": fs.seconds, "read": time.perf_counter() - t0}
    return OpenedSource(fs.source, fetched, raw, extracted, tensors, canonical, key_ops, timings)


def open_source(source: SourceLike, options: LoadOptions) -> OpenedSource:
    """Resolve ``source``, fetch its files, read the checkpoint and extract canonical tensors."""
    return read_source(fetch_source(source, options), options)
