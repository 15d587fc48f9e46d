"""``weightport.lock``, the file of pins: what each source resolved to, so a run months later gets the same bytes.

This module reads, writes and checks the file; making one (resolve and fetch each source) is
:func:`weightport.lock.lock_sources`, a stage above fetching. Not to be confused with
:mod:`weightport.fetch.download_lock` (the inter-process lock around one download).

The file is JSON::

    {"version": 1,
     "sources": {"<source uri>": {"location": "...", "revision": "...", "size": 123,
                                   "sha256": "...", "files": {"<name>": {"size": 1, "sha256": "..."}}}}}

``files`` is only present for sources made of several files (a sharded hub checkpoint). A lock file
is in force when passed as ``FetchOptions(lockfile=...)`` or named by ``$WEIGHTPORT_LOCKFILE``;
then every fetched source that has an entry must match it (digest and size; hub sources are fetched
at the recorded commit), or :class:`~weightport.errors.IntegrityError` is raised.
Sources without an entry are fetched as usual.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightport.errors import IntegrityError, InvalidSourceError, SourceNotFoundError
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source

LOCKFILE_NAME = "weightport.lock"
LOCKFILE_ENV = "WEIGHTPORT_LOCKFILE"
VERSION = 1


@dataclass(frozen=True)
class LockedSource:
    """One source as recorded in the lock file."""

    uri: str
    location: str
    revision: str | None = None
    size: int | None = None
    sha256: str | None = None
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location}
        for key in ("revision", "size", "sha256"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.files:
            out["files"] = {k: dict(v) for k, v in sorted(self.files.items())}
        return out

    @classmethod
    def from_dict(cls, uri: str, data: Mapping[str, Any]) -> LockedSource:
        return cls(
            uri=uri,
            location=str(data.get("location", "")),
            revision=data.get("revision"),
            size=data.get("size"),
            sha256=data.get("sha256"),
            files=dict(data.get("files", {})),
        )


@dataclass
class LockFile:
    """The entries of a lock file, by source URI."""

    sources: dict[str, LockedSource] = field(default_factory=dict)
    path: Path | None = None

    def get(self, uri: str) -> LockedSource | None:
        """The entry for ``uri`` (a local file's relative path is taken from the working directory)."""
        return self.sources.get(_absolute(uri, Path.cwd()))

    def add(self, entry: LockedSource) -> None:
        """Record ``entry``; a local file is keyed by its absolute path (relative paths: the working directory)."""
        entry = _rebased(entry, lambda text: _absolute(text, Path.cwd()))
        self.sources[entry.uri] = entry

    def to_dict(self, base: Path | None = None) -> dict[str, Any]:
        """The file's content; with ``base``, local files are written relative to that directory."""
        entries = self.sources.values()
        if base is not None:
            entries = [_rebased(e, lambda text: _relative(text, base)) for e in entries]  # type: ignore[assignment]
        return {"version": VERSION, "sources": {e.uri: e.to_dict() for e in sorted(entries, key=lambda e: e.uri)}}

    def save(self, path: Path | str | None = None) -> Path:
        """Write the lock file (atomically); returns its path.

        Local files are recorded relative to the lock file's directory, so the lock file and the
        files beside it can move together and be checked from any working directory.
        """
        target = Path(path) if path is not None else self.path or Path(LOCKFILE_NAME)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps(self.to_dict(base=target.resolve().parent), indent=2) + "\n")
        os.replace(tmp, target)
        self.path = target
        return target

    @classmethod
    def load(cls, path: Path | str) -> LockFile:
        """Read a lock file.

        Raises:
            SourceNotFoundError: The file does not exist.
            InvalidSourceError: It is not a weightport lock file.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError as exc:
            raise SourceNotFoundError(
                f"lock file not found: {path}",
                hint=f"create it with `weightport lock` (or weightport.lock_sources()), or unset {LOCKFILE_ENV}",
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvalidSourceError(f"lock file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                     hint=_REMAKE) from exc
        except json.JSONDecodeError as exc:
            raise InvalidSourceError(f"lock file {path} is not valid JSON: {exc}", hint=_REMAKE) from exc
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            raise InvalidSourceError(f"{path} is not a weightport lock file (no 'sources' table)", hint=_REMAKE)
        for uri, entry in data["sources"].items():
            problem = _entry_problem(entry)
            if problem:
                raise InvalidSourceError(f"lock file {path}: the entry for {uri!r} {problem}", hint=_REMAKE)
        base = path.resolve().parent
        entries = [_rebased(LockedSource.from_dict(u, e), lambda text: _absolute(text, base))
                   for u, e in data["sources"].items()]
        return cls({e.uri: e for e in entries}, path)


_FILE = "file:"


def _absolute(text: str, base: Path) -> str:
    """A local file's uri or path made absolute against ``base``; anything else unchanged."""
    if text.startswith(_FILE):
        return _FILE + _absolute(text[len(_FILE):], base)
    if "://" in text or (":" in text.split("/", 1)[0] and not Path(text).is_absolute()):
        return text  # a URL or another scheme (hf:, timm:, pkg:, ...)
    return os.path.normpath(os.path.join(base, text))


def _relative(text: str, base: Path) -> str:
    """A local file's absolute uri or path written relative to ``base`` (when it can be)."""
    if text.startswith(_FILE):
        return _FILE + _relative(text[len(_FILE):], base)
    if not os.path.isabs(text):
        return text
    try:
        return os.path.relpath(text, base)
    except ValueError:  # another drive (Windows)
        return text


def _rebased(entry: LockedSource, convert: Any) -> LockedSource:
    """``entry`` with a local file's uri and location passed through ``convert``."""
    if not entry.uri.startswith(_FILE):
        return entry
    return dataclasses.replace(entry, uri=convert(entry.uri), location=convert(entry.location))


_REMAKE = "regenerate it with `weightport lock` (or fix the entry by hand), or unset " + LOCKFILE_ENV
_HEX = frozenset("0123456789abcdefABCDEF")


def _pin_problem(data: Mapping[str, Any], where: str) -> str | None:
    size, sha = data.get("size"), data.get("sha256")
    if size is not None and (type(size) is not int or size < 0):
        return f"has {where}size {size!r}, expected a byte count"
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _HEX):
        return f"has {where}sha256 {sha!r:.80}, expected 64 hex digits"
    return None


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one ``sources`` entry of a lock file, or ``None``."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, expected an object"
    for key in ("location", "revision"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"has {key} {entry[key]!r:.80}, expected a string"
    files = entry.get("files", {})
    if not isinstance(files, dict):
        return f"has files {files!r:.80}, expected an object of {{name: {{size, sha256}}}}"
    for name, pin in files.items():
        if not isinstance(pin, dict):
            return f"has files[{name!r}] {pin!r:.80}, expected an object with size and sha256"
        if problem := _pin_problem(pin, f"files[{name!r}] "):
            return problem
    return _pin_problem(entry, "")


def active_lockfile(options: FetchOptions) -> LockFile | None:
    """The lock file in force: ``options.lockfile``, else ``$WEIGHTPORT_LOCKFILE``, else none."""
    if options.lockfile is False:
        return None
    if isinstance(options.lockfile, (str, os.PathLike)):
        return LockFile.load(options.lockfile)
    env = os.environ.get(LOCKFILE_ENV)
    return LockFile.load(env) if env else None


def locked_entry(source: Source, options: FetchOptions) -> LockedSource | None:
    """The lock file's entry for ``source``, when a lock file is in force and has one."""
    lock = active_lockfile(options)
    return lock.get(source.uri) if lock is not None else None


def entry_for(source: Source, fetched: Fetched) -> LockedSource:
    """What the lock file records for a fetched source."""
    from weightport.fetch.integrity import file_sha256

    files = {
        name: {"size": Path(p).stat().st_size, "sha256": file_sha256(Path(p))}
        for name, p in dict(fetched.meta.get("files", {})).items()
    }
    path = Path(fetched.path)
    sha = fetched.sha256 or (file_sha256(path) if path.is_file() else None)
    size = fetched.size if fetched.size is not None else (path.stat().st_size if path.is_file() else None)
    revision = fetched.meta.get("revision") or source.revision
    return LockedSource(source.uri, source.location, revision, size, sha, files if len(files) > 1 else {})


def check_locked(source: Source, fetched: Fetched, entry: LockedSource) -> None:
    """Refuse a fetched source that differs from its lock entry.

    Raises:
        IntegrityError: The digest, size, revision or a file of a multi-file source differs.
    """
    actual = entry_for(source, fetched)
    problems = []
    for key in ("sha256", "size", "revision"):
        want, got = getattr(entry, key), getattr(actual, key)
        if want is not None and got != want:
            problems.append(f"{key}: locked {want}, got {got}")
    for name, want in entry.files.items():
        got = actual.files.get(name) if actual.files else None
        if got is None or got.get("sha256") != want.get("sha256"):
            problems.append(f"file {name}: locked {want.get('sha256')}, got {got and got.get('sha256')}")
    if problems:
        raise IntegrityError(
            f"{source.uri} differs from the lock file: " + "; ".join(problems),
            hint="the weights changed upstream; update the lock with `weightport lock` if that is intended",
        )
