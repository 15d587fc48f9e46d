"""weightport.lock: record what sources resolved to; refuse anything else while it is in force."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from weightport.errors import IntegrityError, SourceNotFoundError
from weightport.fetch.cache import url_entry
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.fetch.weightport_lock import LockFile
from weightport.lock import lock_sources
from weightport.registry import resolve

BODY = os.urandom(100_000)


def fetch(uri: str, **options):
    source = resolve(uri)
    return fetch_files(source, FetchOptions(progress=False, **options))


def test_lock_records_location_size_and_digest(file_server, tmp_path):
    url = file_server.add("/m.pth", BODY)
    lock = lock_sources([url], tmp_path / "weightport.lock")
    data = json.loads((tmp_path / "weightport.lock").read_text())
    assert data["sources"][url] == {"location": url, "size": len(BODY), "sha256": hashlib.sha256(BODY).hexdigest()}
    assert LockFile.load(tmp_path / "weightport.lock").get(url) == lock.get(url)


def test_changed_upstream_file_is_refused_under_the_lock(file_server, tmp_path, monkeypatch):
    url = file_server.add("/m.pth", BODY)
    lock_sources([url], tmp_path / "weightport.lock")
    file_server.add("/m.pth", os.urandom(len(BODY)))  # upstream changed
    url_entry(url).unlink()  # a fresh machine
    monkeypatch.setenv("WEIGHTPORT_LOCKFILE", str(tmp_path / "weightport.lock"))
    with pytest.raises(IntegrityError, match="expected"):
        fetch(url)
    assert not url_entry(url).exists()
    # Without the lock in force the new file is accepted.
    assert fetch(url, lockfile=False).path.exists()


def test_cached_file_that_differs_from_the_lock_is_refused(file_server, tmp_path):
    url = file_server.add("/m.pth", BODY)
    lock_sources([url], tmp_path / "weightport.lock")
    file_server.add("/m.pth", os.urandom(len(BODY)))
    fetch(url, force=True)  # the cache now holds the new bytes
    with pytest.raises(IntegrityError):
        fetch(url, lockfile=tmp_path / "weightport.lock")


def test_locked_file_still_loads(file_server, tmp_path):
    url = file_server.add("/m.pth", BODY)
    lock_sources([url], tmp_path / "weightport.lock")
    assert fetch(url, lockfile=tmp_path / "weightport.lock").path.read_bytes() == BODY


def test_missing_lock_file_is_an_error(tmp_path, file_server):
    url = file_server.add("/m.pth", BODY)
    with pytest.raises(SourceNotFoundError, match="lock file"):
        fetch(url, lockfile=tmp_path / "nope.lock")
