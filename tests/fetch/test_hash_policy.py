"""When files are hashed (SECURITY.md, *When files are hashed*): each rule, and that a changed file
is hashed again and refused where a pin says so."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import weightport.digest as digest
from tests.helpers.fixtures import isolated_caches  # noqa: F401  (fixture)
from weightport.errors import IntegrityError
from weightport.fetch.cache import write_sidecar
from weightport.fetch.integrity import check_cached
from weightport.loading.api import load_weights
from weightport.registry.aliases import register_source, unregister_source


@pytest.fixture(autouse=True)
def fresh_memo(isolated_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(digest, "_memo", {})


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file weightport.digest reads to hash, in order."""
    read: list[Path] = []
    real = digest._hash_file

    def counting(path: Path) -> str:
        read.append(Path(path))
        return real(path)

    monkeypatch.setattr(digest, "_hash_file", counting)
    return read


def _settled() -> None:
    """Let the clock pass the racy window, so that the file's digest may be recorded (no assert on time)."""
    time.sleep(digest.RACY_NS / 1e9 + 0.05)


def _checkpoint(path: Path, value: float = 1.0) -> str:
    save_file({"weight": torch.full((4, 3), value), "bias": torch.zeros(4)}, str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rewrite_same_size_and_mtime(path: Path, value: float) -> None:
    st = path.stat()
    _checkpoint(path, value)  # same shapes: same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the modification time forged back
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_a_never_seen_local_file_is_hashed_only_when_the_reports_sha256_is_read(tmp_path, hashes):
    path = tmp_path / "m.safetensors"
    expected = _checkpoint(path)
    report = load_weights(nn.Linear(3, 4), path)
    assert hashes == []  # the load read the weights, it did not hash them
    assert report.source.sha256 == expected
    assert hashes == [path]
    assert report.source.sha256 == expected and report.to_dict()["source"]["sha256"] == expected
    assert hashes == [path]  # once


def test_from_pretrained_hashes_only_when_the_provenance_is_read(tmp_path, hashes):
    from weightport.mixin import PretrainedMixin

    class Net(PretrainedMixin, nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 4)

    path = tmp_path / "m.safetensors"
    save_file({"lin.weight": torch.ones(4, 3), "lin.bias": torch.zeros(4)}, str(path))
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    model = Net.from_pretrained(path)
    model.load_pretrained(path)
    assert hashes == []  # neither load hashed the file (the provenance is made when read)
    assert model.weightport_provenance is not None
    assert model.weightport_provenance["source"]["sha256"] == expected
    assert hashes == [path]


def test_a_file_changed_after_the_load_gets_no_sha256_rather_than_another_files(tmp_path, hashes, caplog):
    path = tmp_path / "m.safetensors"
    _checkpoint(path)
    report = load_weights(nn.Linear(3, 4), path)
    _rewrite_same_size_and_mtime(path, 2.0)
    with caplog.at_level(logging.WARNING, logger="weightport"):
        assert report.source.sha256 is None
    assert "changed" in caplog.text
    assert hashes == []


def test_a_pickled_report_carries_the_digest(tmp_path):
    path = tmp_path / "m.safetensors"
    expected = _checkpoint(path)
    report = load_weights(nn.Linear(3, 4), path)
    assert pickle.loads(pickle.dumps(report)).source.sha256 == expected


def test_an_unchanged_file_is_hashed_once_across_processes_and_a_rewritten_one_again(tmp_path, hashes, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = _checkpoint(path)
    _settled()
    assert load_weights(nn.Linear(3, 4), path).source.sha256 == first
    monkeypatch.setattr(digest, "_memo", {})  # another process: only the persistent record is left
    assert load_weights(nn.Linear(3, 4), path).source.sha256 == first
    assert hashes == [path]
    # Rewritten in place, same size, modification time forged back: the ctime differs, so it is
    # hashed again and the report names the new bytes, never the recorded digest of the old ones.
    _rewrite_same_size_and_mtime(path, 2.0)
    monkeypatch.setattr(digest, "_memo", {})
    second = hashlib.sha256(path.read_bytes()).hexdigest()
    assert second != first
    assert load_weights(nn.Linear(3, 4), path).source.sha256 == second
    assert hashes == [path, path]


def test_a_load_reads_no_digest_record_and_the_recorded_one_names_the_loaded_bytes(tmp_path, hashes, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = _checkpoint(path)
    _settled()
    assert load_weights(nn.Linear(3, 4), path).source.sha256 == first  # hashed and recorded
    monkeypatch.setattr(digest, "_memo", {})  # another process
    looked: list[object] = []
    real = digest._recorded
    monkeypatch.setattr(digest, "_recorded", lambda key: looked.append(key) or real(key))
    report = load_weights(nn.Linear(3, 4), path)
    assert looked == []  # the load did not open weightport's cache
    _rewrite_same_size_and_mtime(path, 2.0)  # changed after the load: the record still names what was loaded
    assert report.source.sha256 == first
    assert len(looked) == 1 and hashes == [path]


def test_a_just_written_file_is_not_recorded_racy(tmp_path, hashes, monkeypatch):
    """A file whose ctime is within the racy window may still be written in the same clock tick."""
    path = tmp_path / "m.safetensors"
    _checkpoint(path)
    monkeypatch.setattr(digest, "RACY_NS", 10**15)  # every file counts as just written
    digest.file_sha256(path, persistent=True)
    digest.file_sha256(path, persistent=True)
    assert hashes == [path, path]


def test_a_pinned_local_file_is_hashed_before_use_and_refused_once_changed(tmp_path, hashes, monkeypatch):
    path = tmp_path / "m.safetensors"
    good = _checkpoint(path)
    register_source("hash-policy-pinned", str(path), sha256=good)
    try:
        _settled()
        assert load_weights(nn.Linear(3, 4), "hash-policy-pinned").source.sha256 == good
        assert hashes == [path]  # before use
        monkeypatch.setattr(digest, "_memo", {})  # another process: a pin never trusts the record
        load_weights(nn.Linear(3, 4), "hash-policy-pinned")
        assert hashes == [path, path]
        _rewrite_same_size_and_mtime(path, 2.0)
        model = nn.Linear(3, 4)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(IntegrityError, match="sha256 mismatch"):
            load_weights(model, "hash-policy-pinned")
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    finally:
        unregister_source("hash-policy-pinned")


def _entry(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "entry" / "m.bin"
    path.parent.mkdir()
    path.write_bytes(b"weights" * 100)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    write_sidecar(path, sha, path.stat().st_size)
    return path, sha


def test_an_unpinned_cache_hit_trusts_the_digest_recorded_for_its_exact_identity(tmp_path, hashes, monkeypatch):
    path, sha = _entry(tmp_path)
    _settled()
    assert check_cached(path) == (sha, None)
    monkeypatch.setattr(digest, "_memo", {})
    assert check_cached(path) == (sha, None)
    assert hashes == [path]  # the second process trusted the record
    # The record is only believed beside the sidecar: a record that disagrees with it refuses the hit.
    digest._record(digest.identity(path), "0" * 64)
    monkeypatch.setattr(digest, "_memo", {})
    digest_, problem = check_cached(path)
    assert digest_ is None and "differs from the recorded" in problem


def test_a_cache_hit_written_to_is_hashed_again_and_refused(tmp_path, hashes, monkeypatch):
    path, sha = _entry(tmp_path)
    _settled()
    assert check_cached(path) == (sha, None)
    st = path.stat()
    path.write_bytes(b"WEIGHTS" * 100)  # same size; mtime forged back
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(digest, "_memo", {})
    digest_, problem = check_cached(path)
    assert digest_ is None and "differs from the recorded" in problem
    assert hashes == [path, path]


def test_a_pinned_cache_hit_is_hashed_in_every_process_whatever_the_record_says(tmp_path, hashes, monkeypatch):
    path, sha = _entry(tmp_path)
    _settled()
    assert check_cached(path, sha256=sha) == (sha, None)
    digest._record(digest.identity(path), sha)
    monkeypatch.setattr(digest, "_memo", {})
    assert check_cached(path, sha256=sha) == (sha, None)
    assert hashes == [path, path]
