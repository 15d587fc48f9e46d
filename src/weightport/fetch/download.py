"""Streaming one URL into one file, safely.

The body goes to a temp file opened with ``O_EXCL`` under a process-unique name in the destination
directory; its bytes are counted against ``Content-Length`` and hashed (sha256) while streaming;
only a complete file whose digest matches the pin is fsynced and renamed to its final name
(``os.replace``, then the directory is fsynced). On any failure the temp file is removed, so a
final name only ever holds a complete, checked file. Transient failures (connection refused or
reset, timeouts, cut-off bodies, HTTP 429/5xx) are retried by weightport's one policy
(:mod:`weightport.fetch.retry`).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from weightport.errors import (
    CacheNotWritableError,
    DiskFullError,
    DownloadError,
    DownloadTimeoutError,
    IncompleteDownloadError,
    IntegrityError,
    InvalidSourceError,
    RemoteFileNotFoundError,
    ResourceLimitError,
)
from weightport.fetch.cache import EntryDir
from weightport.fetch.progress import progress_bar
from weightport.fetch.retry import BACKOFF, Transient, with_retries

T = TypeVar("T")

logger = logging.getLogger("weightport")

CHUNK = 1 << 20
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
USER_AGENT = "weightport"


@dataclass(frozen=True)
class DownloadResult:
    """A file stored under its final name: where, its full sha256 and its size."""

    path: Path
    sha256: str
    size: int


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    hash_prefix: str | None = None,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = BACKOFF,
    progress: bool | None = None,
    shown_as: str | None = None,
    max_bytes: int | None = None,
    deadline: float | None = None,
    headers: dict[str, str] | None = None,
    record: bool = True,
    size_is: str = "the pinned size",
) -> DownloadResult:
    """Download ``url`` to ``dest`` atomically, checking size and digest.

    Args:
        url: An ``http://`` or ``https://`` URL (after any mirror rewrite).
        dest: The final path; its directory is created.
        sha256: The expected full sha256 (hex); a mismatch raises and stores nothing.
        size: The expected size in bytes.
        hash_prefix: An expected prefix of the sha256 (torchvision's 8-hex file name suffix).
        timeout: Seconds to wait to connect, and for each read of the body.
        retries: How many more attempts after a transient failure.
        backoff: Seconds before the first retry; doubled for each following one.
        progress: Show a progress bar (``None``: only when stderr is a terminal).
        shown_as: What to call the download in messages (defaults to ``url``).
        max_bytes: Stop (``ResourceLimitError``) when the body grows past this many bytes; a pinned
            ``size`` is the limit whenever it is given (``IntegrityError`` past it).
        deadline: Seconds one attempt may take in all (``DownloadTimeoutError`` after it), however
            steadily the bytes trickle in.
        headers: Extra request headers (the hub's authorization). They are sent to ``url``'s host
            only: a redirect to another host drops them.
        record: Write the ``<name>.sha256`` sidecar (weightport's caches; not huggingface_hub's).
        size_is: What ``size`` is, for messages (``the size the hub announced``).

    Raises:
        DownloadError: HTTP error or unreachable server (after retries).
        DownloadTimeoutError: Nothing arrived within ``timeout`` (after retries).
        IncompleteDownloadError: Fewer bytes than announced (after retries).
        IntegrityError: The digest or size differs from the pinned one (or the body outgrows it).
        ResourceLimitError: The body outgrew ``max_bytes``.
        DiskFullError: No space left for the file.
        CacheNotWritableError: The destination directory cannot be written.
    """
    if urlsplit(url).scheme not in {"http", "https"}:
        raise InvalidSourceError(f"refusing to download {url!r}: only http:// and https:// URLs are fetched")

    def attempt() -> DownloadResult:
        limits = _Limits(size, max_bytes, time.monotonic() + deadline if deadline is not None else None, deadline,
                         size_is)
        return _attempt(url, dest, sha256, size, hash_prefix, timeout, progress, shown_as or url, limits,
                        _Request(dict(headers or {}), record))

    return with_retries(attempt, what=f"download of {url}", retries=retries, backoff=backoff)


def _attempt(
    url: str,
    dest: Path,
    sha256: str | None,
    size: int | None,
    hash_prefix: str | None,
    timeout: float,
    progress: bool | None,
    shown: str,
    limits: _Limits,
    request: _Request,
) -> DownloadResult:
    with _open_entry(dest) as entry:  # every file of the attempt made in the directory held open
        tmp, fd = _temp(entry, dest)
        try:
            out = os.fdopen(fd, "wb")  # owns fd from here: closing ``out`` closes it
        except BaseException:
            os.close(fd)
            _remove_quietly(entry, tmp)
            raise
        try:
            with out:
                response = _open(url, timeout, request.headers)
                with response:
                    announced = _content_length(response)
                    if announced is not None:
                        limits.check(url, announced, announced=True)
                    digest, count = _stream(response, out, url, dest, announced, progress, shown, limits)
                os.fsync(out.fileno())
            _check(url, count, digest, announced, size, sha256, hash_prefix)
            if request.record:  # sidecar first, so a reader never pairs the new file with an older record
                try:
                    entry.write_sidecar(dest.name, digest, count)
                except OSError as exc:  # a missing sidecar only costs a re-fetch later
                    logger.debug("could not write sidecar for %s: %s", dest, exc)
            entry.replace(tmp, dest.name)
            entry.fsync()
            entry.check_still_here()
            logger.info("downloaded %s (%d bytes) to %s", shown, count, dest)
            return DownloadResult(path=dest, sha256=digest, size=count)
        except BaseException:
            _remove_quietly(entry, tmp)
            raise


def _open_entry(dest: Path) -> EntryDir:
    try:
        return EntryDir(dest.parent)
    except OSError as exc:
        _not_writable(dest.parent, exc)
        raise


def _temp(entry: EntryDir, dest: Path) -> tuple[str, int]:
    try:
        return entry.create_exclusive(dest.name)
    except OSError as exc:
        _not_writable(dest.parent, exc)
        raise


def _not_writable(directory: Path, exc: OSError) -> None:
    """Raise the typed form of a failure to write ``directory`` (permissions, a read-only mount)."""
    if isinstance(exc, CacheNotWritableError):
        return
    if isinstance(exc, PermissionError):
        raise CacheNotWritableError(
            f"cannot write to the cache directory {directory}",
            hint="make it writable, or point WEIGHTPORT_CACHE (or cache_dir=) at a writable directory",
        ) from exc
    if exc.errno == errno.EROFS:
        raise CacheNotWritableError(
            f"the cache directory {directory} is on a read-only file system",
            hint="point WEIGHTPORT_CACHE (or cache_dir=) at a writable directory",
        ) from exc


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(req.full_url).scheme == "https" and urlsplit(newurl).scheme != "https":
            raise DownloadError(
                f"refusing redirect from {req.full_url} to non-https {newurl}",
                hint="use an https mirror, or fetch the http URL explicitly",
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            for name in ("Authorization", "Cookie"):  # credentials are for the host they were meant for
                new.remove_header(name)
        return new


def _open(url: str, timeout: float, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={**(headers or {}), "User-Agent": USER_AGENT,
                                                   "Accept-Encoding": "identity"})
    opener = urllib.request.build_opener(_NoDowngrade)
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        missing = exc.code in (404, 410)
        error = (RemoteFileNotFoundError if missing else DownloadError)(
            f"HTTP {exc.code} {exc.reason} for {url}",
            hint="check the URL" if missing else "the server refused; try again later or use a mirror",
        )
        error.__cause__ = exc
        if exc.code in _TRANSIENT_HTTP:
            raise Transient(error) from exc
        raise error from exc
    except TimeoutError as exc:
        raise Transient(_timeout_error(url, timeout, exc)) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise Transient(_timeout_error(url, timeout, exc)) from exc
        error = DownloadError(
            f"cannot reach {url}: {exc.reason}",
            hint="check the network or proxy; on an air-gapped machine set WEIGHTPORT_MIRROR, "
            "or WEIGHTPORT_OFFLINE=1 to use only cached files",
        )
        error.__cause__ = exc
        raise Transient(error) from exc
    except (ConnectionError, http.client.HTTPException) as exc:
        error = DownloadError(f"connection to {url} failed: {exc}", hint="try again; check the network")
        error.__cause__ = exc
        raise Transient(error) from exc


def _timeout_error(url: str, timeout: float, exc: BaseException) -> DownloadTimeoutError:
    error = DownloadTimeoutError(
        f"{url} sent nothing for {timeout:g}s",
        hint="the server is slow or stalled; raise timeout= (FetchOptions.timeout) or use a mirror",
    )
    error.__cause__ = exc
    return error


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class _Request:
    """What to send besides the URL, and whether to record the digest beside the file."""

    headers: dict[str, str]
    record: bool


@dataclass(frozen=True)
class _Limits:
    """How far one download attempt may go: the pinned size, the hard cap, the deadline."""

    pinned: int | None
    cap: int | None
    ends_at: float | None
    deadline: float | None
    size_is: str = "the pinned size"

    def check(self, url: str, count: int, *, announced: bool = False) -> None:
        what = "announces" if announced else "sent more than"
        if self.pinned is not None and count > self.pinned:
            raise IntegrityError(
                f"{url} {what} {count} bytes but {self.size_is} is {self.pinned}; stopped there",
                hint="the file changed upstream or the pin is wrong; nothing was cached",
            )
        if self.cap is not None and count > self.cap:
            raise ResourceLimitError(
                f"{url} {what} {count} bytes, past FetchOptions.max_download_bytes={self.cap}; stopped there",
                hint="pin the file's size (a weightport.lock entry or sha256=/size=), or raise max_download_bytes",
            )
        if self.ends_at is not None and time.monotonic() > self.ends_at:
            raise DownloadTimeoutError(
                f"{url} did not finish within FetchOptions.deadline={self.deadline:g}s "
                f"({count} bytes received); stopped there",
                hint="the server trickles; raise deadline= (FetchOptions.deadline) or use a mirror",
            )


def within_deadline(call: Callable[[], T], seconds: float | None, what: str) -> T:
    """``call()``, or :class:`~weightport.errors.DownloadTimeoutError` once ``seconds`` have passed.

    For a request made by another library (huggingface_hub's metadata ``HEAD``) whose client has
    only a per-read timeout: a server trickling its headers would outlast the download's deadline.
    The call runs on a daemon thread; past the deadline it is abandoned (its client's own limits end
    it) and the caller gets the same error as a trickling body.
    """
    if seconds is None:
        return call()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="weightport-request", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise DownloadTimeoutError(
            f"{what} did not finish within FetchOptions.deadline={seconds:g}s; stopped there",
            hint="the server trickles; raise deadline= (FetchOptions.deadline) or use a mirror",
        )
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _stream(response, out, url: str, dest: Path, announced: int | None, progress: bool | None, shown: str,
            limits: _Limits):
    hasher = hashlib.sha256()
    count = 0
    bar = progress_bar(announced, dest.name, progress)
    try:
        while True:
            try:
                # read1: what has arrived (one system call), so a stall or a cut is reported with
                # the bytes really received, and the temp file grows as the body arrives.
                chunk = response.read1(CHUNK)
            except TimeoutError as exc:
                raise Transient(_stall(url, count, exc)) from exc
            except (http.client.IncompleteRead, ConnectionError, http.client.HTTPException) as exc:
                error = IncompleteDownloadError(
                    f"connection to {url} broke after {count} bytes"
                    + (f" of {announced}" if announced is not None else ""),
                    hint="try again; nothing was cached",
                )
                error.__cause__ = exc
                raise Transient(error) from exc
            if not chunk:
                break
            limits.check(url, count + len(chunk))
            _write(out.write, chunk, dest, announced, count)
            hasher.update(chunk)
            count += len(chunk)
            bar.update(len(chunk))
        _write(out.flush, None, dest, announced, count)
    finally:
        bar.close()
    return hasher.hexdigest(), count


def _write(op, chunk: bytes | None, dest: Path, announced: int | None, count: int) -> None:
    """Write (or flush) to the temp file; a full disk or a file-size limit is a DiskFullError."""
    try:
        op() if chunk is None else op(chunk)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise _disk_full(dest, announced, count, exc) from exc
        raise


def _stall(url: str, count: int, exc: BaseException) -> DownloadTimeoutError:
    error = DownloadTimeoutError(
        f"{url} stopped sending after {count} bytes",
        hint="the server stalled; raise timeout= (FetchOptions.timeout), try again, or use a mirror",
    )
    error.__cause__ = exc
    return error


def _disk_full(dest: Path, announced: int | None, written: int, exc: OSError) -> DiskFullError:
    try:
        free = shutil.disk_usage(dest.parent).free
    except OSError:
        free = None
    needed = f"{announced} bytes" if announced is not None else f"more than {written} bytes"
    return DiskFullError(
        f"not enough space in {dest.parent} for {dest.name}: needs {needed}"
        + (f", {free} bytes free" if free is not None else "")
        + f" ({exc.strerror})",
        hint="free some space, or point WEIGHTPORT_CACHE (or TORCH_HOME / HF_HOME) at a larger disk",
    )


def _check(
    url: str,
    count: int,
    digest: str,
    announced: int | None,
    size: int | None,
    sha256: str | None,
    hash_prefix: str | None,
) -> None:
    if announced is not None and count != announced:
        raise Transient(
            IncompleteDownloadError(
                f"{url} announced {announced} bytes but sent {count}", hint="try again; nothing was cached"
            )
        )
    if size is not None and count != size:
        raise IntegrityError(
            f"{url}: expected {size} bytes, got {count}",
            hint="the file changed upstream or the pin is wrong; nothing was cached",
        )
    if sha256 is not None and digest != sha256.lower():
        raise IntegrityError(
            f"sha256 mismatch for {url}: expected {sha256.lower()}, got {digest}",
            hint="the file changed upstream, a mirror serves another file, or the pin is wrong; nothing was cached",
        )
    if hash_prefix is not None and not digest.startswith(hash_prefix.lower()):
        raise IntegrityError(
            f"sha256 of {url} does not start with {hash_prefix.lower()} (the hash in its file name): got {digest}",
            hint="the download is corrupt or a mirror serves another file; nothing was cached",
        )


def _remove_quietly(entry: EntryDir, name: str) -> None:
    try:
        entry.unlink(name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove temp file %s: %s", entry.path / name, exc)
