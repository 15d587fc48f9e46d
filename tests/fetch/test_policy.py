"""Fetch policy is the pipeline's: a third-party adapter's file is held to pins, the lock file and
offline mode exactly like a built-in's, because the adapter only returns files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import weightport
from weightport.adapters.base import Adapter
from weightport.errors import IntegrityError, OfflineCacheMissError
from weightport.fetch.types import Fetched, FetchOptions
from weightport.registry.source import Source

SCHEME = "thirdparty-policy-test"


class ShelfAdapter(Adapter):
    """A plugin that serves ``<scheme>:NAME`` from a directory, and does no checking of its own."""

    scheme = SCHEME
    shelf: Path = Path()
    calls: list[Source] = []

    def parse(self, rest: str, uri: str) -> Source:
        return Source(uri=uri, scheme=SCHEME, location=rest)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        ShelfAdapter.calls.append(source)
        path = self.shelf / source.location
        return Fetched(path=path, size=path.stat().st_size, cached=True)


@pytest.fixture
def shelf(tmp_path):
    weightport.register_adapter(SCHEME, override=True)(ShelfAdapter)
    ShelfAdapter.shelf, ShelfAdapter.calls = tmp_path, []
    net = nn.Linear(3, 2)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    return tmp_path, net


def _lock(path: Path, uri: str, **entry) -> Path:
    lock = path / "weightport.lock"
    lock.write_text(json.dumps({"version": 1, "sources": {uri: {"location": "w.pt", **entry}}}))
    return lock


def _refused_untouched(expected: type[Exception], match: str, **kwargs) -> None:
    model = nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(expected, match=match):
        weightport.load_weights(model, f"{SCHEME}:w.pt", **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_plugins_file_with_a_wrong_sha256_in_the_lock_file_is_refused(shelf):
    root, _ = shelf
    lock = _lock(root, f"{SCHEME}:w.pt", sha256="0" * 64)
    _refused_untouched(IntegrityError, "differs from the lock file: sha256", fetch={"lockfile": lock})


def test_a_plugins_file_with_a_wrong_size_in_the_lock_file_is_refused(shelf, monkeypatch):
    root, _ = shelf
    lock = _lock(root, f"{SCHEME}:w.pt", size=1)
    monkeypatch.setenv("WEIGHTPORT_LOCKFILE", str(lock))  # the environment's lock file too
    _refused_untouched(IntegrityError, "size: locked 1")


def test_a_plugins_file_that_matches_its_lock_entry_loads_and_the_adapter_sees_the_pin(shelf):
    root, net = shelf
    digest = hashlib.sha256((root / "w.pt").read_bytes()).hexdigest()
    lock = _lock(root, f"{SCHEME}:w.pt", sha256=digest)
    model = nn.Linear(3, 2)
    report = weightport.load_weights(model, f"{SCHEME}:w.pt", fetch={"lockfile": lock})
    assert torch.equal(model.weight, net.weight) and report.source.sha256 == digest
    assert ShelfAdapter.calls[-1].sha256 == digest  # the lock's pin reached the adapter


def test_a_plugins_file_with_a_wrong_pin_is_refused(shelf):
    weightport.register_source("policy-test-pinned", f"{SCHEME}:w.pt", sha256="f" * 64, override=True)
    model = nn.Linear(3, 2)
    with pytest.raises(IntegrityError, match="sha256 mismatch") as info:
        weightport.load_weights(model, "policy-test-pinned")
    assert isinstance(info.value, ValueError) and info.value.hint


def test_offline_a_plugin_that_cannot_say_what_it_has_cached_is_refused_before_its_fetch_runs(shelf):
    _refused_untouched(OfflineCacheMissError, "offline mode is on", fetch={"offline": True})
    assert ShelfAdapter.calls == []  # never asked: nothing it does can open a socket


def test_the_lock_file_cli_check_holds_a_plugin_to_its_entry(shelf, capsys):
    from weightport.cli import main

    root, _ = shelf
    lock = _lock(root, f"{SCHEME}:w.pt", sha256="0" * 64)
    assert main(["lock", "--check", "--file", str(lock)]) == 3
    assert "mismatch" in capsys.readouterr().out
