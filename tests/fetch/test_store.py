"""fetch_url(): cache hits, quarantine of bad copies, offline, mirrors, read-only caches."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.helpers.fs import deny_creates_under
from weightport.errors import (
    CacheNotWritableError,
    IntegrityError,
    OfflineCacheMissError,
)
from weightport.fetch.cache import url_entry
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.registry import resolve

BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()


def fetch(uri: str, **options):
    source = resolve(uri)
    return fetch_files(source, FetchOptions(progress=False, **options))


def test_second_fetch_is_a_hit_without_network(file_server):
    url = file_server.add("/m.pth", BODY)
    first = fetch(url)
    second = fetch(url)
    assert not first.cached and second.cached
    assert first.path == second.path and second.path.read_bytes() == BODY
    assert file_server.count() == 1


def test_cache_layout(file_server, isolated_caches):
    url = file_server.add("/dir/m.pth", BODY)
    fetched = fetch(url)
    key = hashlib.sha256(url.encode()).hexdigest()
    assert fetched.path == isolated_caches / "url" / key / "m.pth"
    assert (fetched.path.parent / "m.pth.sha256").read_text().split() == [SHA, str(len(BODY))]


def test_cache_dir_option_beats_environment(file_server, tmp_path):
    url = file_server.add("/m.pth", BODY)
    fetched = fetch(url, cache_dir=tmp_path / "mine")
    assert fetched.path.is_relative_to(tmp_path / "mine")


def test_corrupted_entry_is_quarantined_and_refetched(file_server):
    url = file_server.add("/m.pth", BODY)
    path = fetch(url).path
    path.write_bytes(bytes(len(BODY)))  # same size, other bytes
    again = fetch(url)
    assert not again.cached and again.path.read_bytes() == BODY
    assert [p.name for p in path.parent.glob("m.pth.corrupt-*")]
    assert file_server.count("GET") == 2


def test_pinned_fragment_refuses_wrong_content(file_server):
    url = file_server.add("/m.pth", bytes(len(BODY)))
    with pytest.raises(IntegrityError, match=SHA):
        fetch(f"{url}#sha256={SHA}")
    assert not url_entry(url).exists()


def test_offline_hit_opens_no_socket(file_server, monkeypatch):
    url = file_server.add("/m.pth", BODY)
    fetch(url)
    before = file_server.count()
    monkeypatch.setenv("WEIGHTPORT_OFFLINE", "1")
    assert fetch(url).path.read_bytes() == BODY
    assert file_server.count() == before


def test_offline_miss_names_the_source(file_server, monkeypatch):
    url = file_server.add("/m.pth", BODY)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineCacheMissError, match="offline") as info:
        fetch(url)
    assert url in str(info.value)
    assert file_server.count() == 0


def test_mirror_rewrites_prefix_and_keeps_cache_key(file_server, monkeypatch):
    file_server.add("/mirror/models/m.pth", BODY)
    origin = "https://weights.example.invalid/models/m.pth"
    monkeypatch.setenv("WEIGHTPORT_MIRROR", f"https://weights.example.invalid/={file_server.base}/mirror/")
    fetched = fetch(origin)
    assert fetched.path == url_entry(origin) and fetched.path.read_bytes() == BODY
    assert file_server.count("GET", "/mirror/models/m.pth") == 1


def test_read_only_cache_hit_works_and_miss_names_the_dir(file_server, isolated_caches, monkeypatch):
    hit_url = file_server.add("/hit.pth", BODY)
    fetch(hit_url)
    miss_url = file_server.add("/miss.pth", BODY)
    os.chmod(isolated_caches, 0o555)
    try:
        deny_creates_under(monkeypatch, isolated_caches)
        assert fetch(hit_url).path.read_bytes() == BODY
        with pytest.raises(CacheNotWritableError) as info:
            fetch(miss_url)
        assert str(url_entry(miss_url).parent) in str(info.value) or str(isolated_caches) in str(info.value)
    finally:
        os.chmod(isolated_caches, 0o755)
