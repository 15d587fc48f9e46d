"""Hugging Face hub repositories: ``hf:ORG/REPO[@REVISION][/FILE]``.

huggingface_hub resolves each file (endpoint, token, revision → commit, ETag, size, location) and
reads its cache offline; the bytes come through weightport's own bounded downloader (the pinned or
announced size, ``max_download_bytes``, the idle timeout and the overall deadline, exactly as for a
URL) into huggingface_hub's cache layout (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``), shared with
every other library that uses it. Without a
file name, the first of ``model.safetensors``, ``model.safetensors.index.json``,
``pytorch_model.bin``, ``pytorch_model.bin.index.json`` the repo has is taken; an index brings all
its shards. ``config.json``, when present, is kept as metadata. ``Fetched.path`` is the checkpoint
file, or the index file of a sharded checkpoint. Repo id, revision and every file name (those in an
index too) are validated before any I/O. ``HF_ENDPOINT`` is honoured, read when fetching.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from weightport.adapters.base import Adapter
from weightport.adapters.hf_names import (
    check_filename,
    check_repo_id,
    check_revision,
    parse_hub_path,
)
from weightport.errors import (
    CacheNotWritableError,
    DownloadError,
    DownloadTimeoutError,
    IntegrityError,
    InvalidSourceError,
    MissingDependencyError,
    OfflineCacheMissError,
    ResourceLimitError,
    SourceNotFoundError,
    WeightportError,
)
from weightport.fetch.cache import EntryDir, hf_hub_cache
from weightport.fetch.download import download, within_deadline
from weightport.fetch.download_lock import entry_lock
from weightport.fetch.integrity import file_sha256, quarantine
from weightport.fetch.retry import Transient, with_retries
from weightport.fetch.sweep import sweep_entry
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source

logger = logging.getLogger("weightport")

#: Files tried, in order, when a source names no file (safetensors preferred).
CANDIDATES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: An ETag names the cached blob: a plain file name, never a path.
_ETAG = re.compile(r"^[0-9A-Za-z_-][0-9A-Za-z._-]{0,199}$")
#: HTTP statuses worth another attempt.
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
#: The HTTP client packages huggingface_hub has used: their errors are network failures.
_HTTP_CLIENTS = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3"})


def _parameters(function: Any) -> set[str]:
    return set(inspect.signature(function).parameters)


class HubAdapter(Adapter):
    """Fetches hub files through huggingface_hub into its cache."""

    scheme = "hf"

    def parse(self, rest: str, uri: str) -> Source:
        repo_id, revision, filename = parse_hub_path(rest, uri)
        canonical = f"hf:{repo_id}" + (f"@{revision}" if revision else "") + (f"/{filename}" if filename else "")
        return Source(uri=canonical, scheme="hf", location=repo_id, revision=revision, filename=filename)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        repo_id = check_repo_id(source.location)
        revision = source.revision  # the lock file's commit when one is in force (the fetch step fills it in)
        if revision is not None:
            check_revision(revision)
        if source.filename is not None:
            check_filename(source.filename)
        hub = _Hub(repo_id, revision, options, source.uri)
        pin = _Pin(source.sha256.lower() if source.sha256 else None, source.size)
        name, path = hub.first_of([source.filename] if source.filename else list(CANDIDATES), pin)
        files = {name: path}
        if name.endswith(".index.json"):
            files.update(hub.shards(name, path))
        config = hub.optional("config.json")
        meta: dict[str, Any] = {"repo_id": repo_id, "files": {k: str(v) for k, v in files.items()}}
        commit = _commit_of(path)
        if commit:
            meta["revision"] = commit
        if config is not None:
            meta["config"] = _read_json(config)
        blob = Path(os.path.realpath(path)).name
        return Fetched(
            path=path,
            sha256=blob if _SHA256.match(blob) else None,  # LFS blobs are named by their sha256
            size=path.stat().st_size,
            cached=hub.all_cached,
            meta=meta,
        )

    def cached_path(self, source: Source, options: FetchOptions) -> Path | None:
        hub = _Hub(check_repo_id(source.location), source.revision, options, source.uri)
        for name in [source.filename] if source.filename else CANDIDATES:
            path = hub.in_cache(name)
            if path is not None:
                return path
        return None


class _Hub:
    """Hub files with our options, our bounds, our errors and the environment read now."""

    def __init__(self, repo_id: str, revision: str | None, options: FetchOptions, uri: str) -> None:
        try:
            import huggingface_hub
            import huggingface_hub.errors
        except ImportError as exc:
            raise MissingDependencyError(
                "hf: sources need huggingface_hub", hint="pip install huggingface_hub"
            ) from exc
        self.hub = huggingface_hub
        self.repo_id, self.revision, self.uri = repo_id, revision, uri
        self.offline = options.is_offline()
        self.force = options.force
        self.progress = options.progress
        self.timeout = options.timeout
        self.retries = options.retries
        self.lock_timeout = options.lock_timeout
        self.max_bytes = options.max_download_bytes
        self.deadline = options.deadline
        self.cache_dir = hf_hub_cache()
        self.endpoint = os.environ.get("HF_ENDPOINT") or None
        self.all_cached = True

    def in_cache(self, filename: str) -> Path | None:
        found = self.hub.try_to_load_from_cache(
            self.repo_id, filename, cache_dir=self.cache_dir, revision=self.revision
        )
        return Path(found) if isinstance(found, str) else None

    def download(self, filename: str, pin: _Pin | None = None) -> Path:
        """``filename`` from the hub cache or the hub, its content checked against its blob name.

        huggingface_hub names an LFS blob by the sha256 the server announced; a body that differs
        (on the way) is never stored, and a cached blob whose content differs from its name (bit
        rot, an overwrite) is quarantined. Either way it is downloaded once more, then refused.
        """
        problem = ""
        for attempt in range(2):
            try:
                path, fresh = self._download(filename, pin or _Pin())
            except _NotAnnounced as exc:
                problem = exc.problem
                if attempt == 0 and not self.offline:
                    continue
                raise self._not_announced(filename, problem) from exc.__cause__
            if fresh:
                return path
            blob_problem = _blob_problem(path)
            if blob_problem is None:
                return path
            problem = blob_problem
            quarantine(Path(os.path.realpath(path)), problem)
            if self.offline:
                break
        raise self._not_announced(filename, problem)

    def _not_announced(self, filename: str, problem: str) -> IntegrityError:
        return IntegrityError(
            f"{self.uri}: {filename} from {self.repo_id} is not the file the hub announced: {problem}",
            hint="the download was altered on the way or the cached copy is damaged (it was moved aside); "
            + ("fetch again with network access" if self.offline else "try again later or from another network"),
        )

    def _download(self, filename: str, pin: _Pin) -> tuple[Path, bool]:
        """``(path, whether it was just downloaded and checked)``.

        Offline, huggingface_hub reads its cache. Online, it resolves the file (``hf_hub_url``,
        ``get_hf_file_metadata``: commit, etag, size, location, with its endpoint and token), and the
        bytes come through weightport's own downloader (:func:`weightport.fetch.download.download`),
        bounded like every URL download: the pinned or announced size, ``max_download_bytes``, the
        idle ``timeout`` and the overall ``deadline``. It writes huggingface_hub's cache layout
        (``blobs/<etag>``, ``snapshots/<commit>/<file>`` linking to it, ``refs/<revision>``), so the
        cache stays huggingface_hub's.
        """
        check_filename(filename)
        cached = self.in_cache(filename)
        if self.offline:
            path = self.hub.hf_hub_download(self.repo_id, filename, revision=self.revision, cache_dir=self.cache_dir,
                                            local_files_only=True)
            return Path(path), False
        if cached is not None and not self.force and self.revision is not None and _COMMIT.match(self.revision):
            return cached, False  # a commit's files never change: no request needed
        try:  # weightport's retry policy, not huggingface_hub's (see _metadata)
            meta = with_retries(lambda: self._metadata(filename), what=f"hub request for {self.repo_id}/{filename}",
                                retries=self.retries)
        except (DownloadError, DownloadTimeoutError) as exc:
            if cached is None or self.force:
                raise
            logger.warning("%s; using the cached %s", exc.message, cached)
            return cached, False
        return self._store(filename, meta, pin)

    def _metadata(self, filename: str) -> Any:
        """One HEAD request for ``filename``, with none of huggingface_hub's own retries.

        ``hf_hub_download`` retries a failed metadata request five times with a backoff of its own
        (about 23 s, printing its own lines). Asking here, once per attempt, lets a network that is
        down or a server that errs fail under weightport's ``retries`` and in weightport's words.
        """
        hub = self.hub
        url = hub.hf_hub_url(self.repo_id, filename, revision=self.revision, endpoint=self.endpoint)
        no_retry = {"retry_on_errors": False} if "retry_on_errors" in _parameters(hub.get_hf_file_metadata) else {}
        try:
            return within_deadline(
                lambda: hub.get_hf_file_metadata(url, timeout=self.timeout, endpoint=self.endpoint, **no_retry),
                self.deadline, f"the hub's answer for {self.uri} ({filename})",
            )
        except WeightportError:
            raise
        except Exception as exc:
            transient = self._transient(exc, filename)
            if transient is None:
                raise
            raise transient from exc

    def _store(self, filename: str, meta: Any, pin: _Pin) -> tuple[Path, bool]:
        """The snapshot path of ``filename`` at the commit ``meta`` names, its blob downloaded if missing."""
        where = f"{self.uri} ({filename})"
        commit, etag = meta.commit_hash, meta.etag
        if not isinstance(commit, str) or not _COMMIT.match(commit):
            raise DownloadError(f"the hub answered no usable commit for {where} ({commit!r})",
                                hint="check HF_ENDPOINT: it does not answer like a Hugging Face hub")
        if not isinstance(etag, str) or not _ETAG.match(etag):
            raise DownloadError(f"the hub answered no usable ETag for {where} ({etag!r}) to name the cached file",
                                hint="check HF_ENDPOINT: it does not answer like a Hugging Face hub")
        announced_sha = etag if _SHA256.match(etag) else None  # an LFS file's ETag is its sha256
        size = pin.size if pin.size is not None else meta.size
        _check_announced(where, meta.size, announced_sha, pin, self.max_bytes)
        storage = self.cache_dir / self.hub.file_download.repo_folder_name(repo_id=self.repo_id, repo_type="model")
        blob = storage / "blobs" / etag
        pointer = storage / "snapshots" / commit / filename
        if not self.force and os.path.exists(pointer):
            self._ref(storage, commit)
            return pointer, False
        fresh = False
        with entry_lock(self.cache_dir / ".locks" / storage.name / etag, self.lock_timeout):  # huggingface_hub's lock
            if self.force or not blob.is_file() or blob.is_symlink():
                sweep_entry(blob)
                try:
                    download(
                        meta.location, blob, sha256=pin.sha256 or announced_sha, size=size, timeout=self.timeout,
                        retries=self.retries, progress=self.progress, shown_as=f"{self.uri} ({filename})",
                        max_bytes=self.max_bytes, deadline=self.deadline, headers=self._auth(meta.location),
                        record=False,
                        size_is="the pinned size" if pin.size is not None else "the size the hub announced",
                    )
                except IntegrityError as exc:
                    if pin.sha256 is not None or pin.size is not None:
                        raise
                    raise _NotAnnounced(exc.message) from exc
                fresh = True
                self.all_cached = False
            _link(pointer, blob)
            self._ref(storage, commit)
        return pointer, fresh

    def _auth(self, location: str) -> dict[str, str]:
        """The hub's authorization header, for the hub's own host only (a CDN location gets none)."""
        endpoint = self.endpoint or self.hub.constants.ENDPOINT
        if urlsplit(location).netloc != urlsplit(endpoint).netloc:
            return {}
        headers = self.hub.utils.build_hf_headers()
        return {k: v for k, v in headers.items() if k.lower() == "authorization"}

    def _ref(self, storage: Path, commit: str) -> None:
        """Record that the revision asked for is ``commit`` (``refs/<revision>``), as huggingface_hub does."""
        revision = self.revision or "main"
        if revision == commit:
            return
        ref = storage / "refs" / revision
        try:
            if ref.is_file() and not ref.is_symlink() and ref.read_text() == commit:
                return
            with EntryDir(ref.parent) as entry:
                entry.write_text(ref.name, commit)
        except OSError as exc:  # a read-only cache still serves this load; the next one asks again
            logger.debug("could not record %s for %s: %s", revision, self.repo_id, exc)

    def _transient(self, exc: Exception, filename: str) -> Transient | None:
        """The retryable form of a failed hub request, or ``None`` when retrying cannot help."""
        errors = self.hub.errors
        where = f"{self.repo_id}/{filename}"
        endpoint = self.endpoint or self.hub.constants.ENDPOINT
        if isinstance(exc, (errors.EntryNotFoundError, errors.RepositoryNotFoundError,
                            errors.RevisionNotFoundError, errors.HFValidationError, WeightportError)):
            return None
        if isinstance(exc, errors.HfHubHTTPError):
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status not in _TRANSIENT_HTTP:
                return None
            error: WeightportError = DownloadError(f"the hub at {endpoint} answered HTTP {status} for {where}",
                                                   hint="try again later, or check HF_ENDPOINT")
        elif isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
            error = DownloadTimeoutError(
                f"the hub at {endpoint} sent nothing for {self.timeout:g}s for {where}",
                hint="the network or the hub is slow; raise timeout= (FetchOptions.timeout), or set "
                "WEIGHTPORT_OFFLINE=1 to use only cached files",
            )
        elif isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _HTTP_CLIENTS:
            error = DownloadError(
                f"cannot reach the hub at {endpoint} for {where}: {exc}",
                hint="check the network or HF_ENDPOINT; set WEIGHTPORT_OFFLINE=1 to use only cached files",
            )
        else:
            return None
        error.__cause__ = exc
        return Transient(error)

    def first_of(self, names: list[str], pin: _Pin | None = None) -> tuple[str, Path]:
        """The first of ``names`` the repository has, downloaded (checked against ``pin`` before its body)."""
        errors = self.hub.errors
        missing: list[str] = []
        for name in names:
            try:
                return name, self.download(name, pin)
            except errors.RemoteEntryNotFoundError:
                missing.append(name)
            except errors.LocalEntryNotFoundError as exc:
                if not self.offline:
                    raise self._wrap(exc, name) from exc
                missing.append(name)
            except Exception as exc:
                raise self._wrap(exc, name) from exc
        if self.offline:
            raise OfflineCacheMissError(
                f"offline mode is on and {self.uri} is not in the hub cache {self.cache_dir} "
                f"(looked for {', '.join(missing)})",
                hint="fetch it once with network access, or unset WEIGHTPORT_OFFLINE / HF_HUB_OFFLINE",
            )
        raise SourceNotFoundError(
            f"hub repository {self.repo_id} has none of {', '.join(missing)}"
            + (f" at revision {self.revision}" if self.revision else ""),
            hint="name the file: hf:ORG/REPO/FILE",
        )

    def shards(self, index_name: str, index_path: Path) -> dict[str, Path]:
        """Every shard a sharded index names, downloaded (names validated first)."""
        weight_map = _read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict):
            raise InvalidSourceError(f"{self.uri}: {index_name} has no 'weight_map'")
        folder = index_name.rpartition("/")[0]
        names = sorted({(f"{folder}/{n}" if folder else n) for n in weight_map.values()})
        for name in names:
            check_filename(name)
        return {name: self.first_of([name])[1] for name in names}

    def optional(self, filename: str) -> Path | None:
        """``filename`` if the repository has it (or, offline, if it is cached)."""
        try:
            return self.download(filename)
        except self.hub.errors.EntryNotFoundError:
            return None
        except Exception as exc:
            logger.debug("could not fetch %s from %s: %s", filename, self.repo_id, exc)
            return None

    def _wrap(self, exc: Exception, filename: str) -> WeightportError:
        errors = self.hub.errors
        where = f"{self.repo_id}" + (f"@{self.revision}" if self.revision else "") + f"/{filename}"
        if isinstance(exc, WeightportError):  # already says what happened (a linked cache directory...)
            return exc
        if isinstance(exc, errors.RevisionNotFoundError):
            return SourceNotFoundError(f"hub repository {self.repo_id} has no revision {self.revision!r}")
        if isinstance(exc, errors.RepositoryNotFoundError):
            return SourceNotFoundError(
                f"hub repository {self.repo_id} not found (or it is private or gated)",
                hint="check the name; for a private or gated repo log in with `hf auth login`",
            )
        if isinstance(exc, errors.LocalEntryNotFoundError):
            return DownloadError(
                f"cannot reach the hub for {where} and it is not cached",
                hint="check the network or HF_ENDPOINT; set WEIGHTPORT_OFFLINE=1 to use only cached files",
            )
        if isinstance(exc, PermissionError):
            return CacheNotWritableError(
                f"cannot write to the hub cache {self.cache_dir} for {where}",
                hint="make it writable, or point HF_HOME / HF_HUB_CACHE at a writable directory",
            )
        if isinstance(exc, errors.HFValidationError):
            return InvalidSourceError(f"hub refused {where}: {exc}")
        return DownloadError(f"downloading {where} from the hub failed: {exc}", hint="try again; check HF_ENDPOINT")


@dataclass(frozen=True)
class _Pin:
    """The sha256 and size the source (or its lock file entry) pins for its file, if any."""

    sha256: str | None = None
    size: int | None = None


class _NotAnnounced(Exception):
    """A downloaded body was not the file the hub announced (its sha256 or size differ)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _check_announced(where: str, size: int | None, sha256: str | None, pin: _Pin, cap: int) -> None:
    """Refuse, before any body byte, a file the hub announces as other than pinned, or past the cap."""
    if pin.size is not None and size is not None and size != pin.size:
        raise IntegrityError(f"the hub announces {where} as {size} bytes but the pinned size is {pin.size}",
                             hint="the file changed upstream or the pin is wrong; nothing was downloaded")
    if pin.sha256 is not None and sha256 is not None and sha256 != pin.sha256:
        raise IntegrityError(f"the hub announces {where} with sha256 {sha256} but the pin is {pin.sha256}",
                             hint="the file changed upstream or the pin is wrong; nothing was downloaded")
    if pin.size is None and size is not None and size > cap:
        raise ResourceLimitError(
            f"the hub announces {where} as {size} bytes, past FetchOptions.max_download_bytes={cap}",
            hint="pin the file's size (a weightport.lock entry), or raise max_download_bytes; nothing was downloaded",
        )


def _link(pointer: Path, blob: Path) -> None:
    """Point ``pointer`` at ``blob`` with a relative link, made in the snapshot directory held open."""
    with EntryDir(pointer.parent) as entry:
        entry.link(os.path.relpath(blob, pointer.parent), pointer.name)


def _blob_problem(path: Path) -> str | None:
    """Why a hub file is not what its blob name says (``None`` when it is, or it is not an LFS blob)."""
    blob = Path(os.path.realpath(path))
    if not _SHA256.match(blob.name):
        return None
    digest = file_sha256(blob)
    return None if digest == blob.name else f"expected sha256 {blob.name}, got {digest}"


def _commit_of(path: Path) -> str | None:
    """The commit a snapshot path belongs to (``…/snapshots/<commit>/<file>``)."""
    parts = path.parts
    if "snapshots" in parts:
        i = len(parts) - 1 - parts[::-1].index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidSourceError(f"cannot read JSON file {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}
