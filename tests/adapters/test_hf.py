"""hf: sources through the real huggingface_hub client, against a hub on 127.0.0.1."""

from __future__ import annotations

import json
import os

import pytest

from weightport.errors import (
    InvalidSourceError,
    OfflineCacheMissError,
    PathTraversalError,
    SourceNotFoundError,
)
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.lock import lock_sources
from weightport.registry import Source, resolve

SAFE = os.urandom(5000)
BIN = os.urandom(4000)
CONFIG = json.dumps({"num_classes": 10, "architecture": "resnet18"}).encode()


def fetch(source, **options):
    source = resolve(source)
    return fetch_files(source, FetchOptions(progress=False, **options))


def test_parse_forms():
    s = resolve("hf:org/repo@v1.0/sub/model.safetensors")
    assert (s.location, s.revision, s.filename, s.uri) == ("org/repo", "v1.0", "sub/model.safetensors", s.uri)
    s = resolve("hf:org/repo@refs/pr/3/model.bin")
    assert (s.revision, s.filename) == ("refs/pr/3", "model.bin")
    assert resolve("hf:org/repo").revision is None


@pytest.mark.parametrize(
    "uri",
    ["hf:org/repo@../../../../etc", "hf:org/repo@..", "hf:org/repo/../../x.bin", "hf:org/repo/a/../../b",
     "hf:org/repo/C:\\x.bin", "hf:org/repo@v1/sub\\..\\x"],
)
def test_path_tricks_refused_at_parse(uri):
    with pytest.raises(PathTraversalError):
        resolve(uri)


def test_bad_repo_id():
    with pytest.raises(InvalidSourceError):
        resolve("hf:justarepo")


def test_path_tricks_refused_before_any_request(hub):
    hub.add_repo("org/repo", {"model.safetensors": SAFE})
    for source in (
        Source(uri="hf:x", scheme="hf", location="org/repo", revision="../../../../etc"),
        Source(uri="hf:x", scheme="hf", location="org/repo", filename="/etc/passwd"),
        Source(uri="hf:x", scheme="hf", location="org/repo", filename="..\\..\\x"),
    ):
        with pytest.raises(PathTraversalError):
            fetch_files(source, FetchOptions(progress=False))
    assert hub.count() == 0


def test_safetensors_preferred_and_config_kept(hub, tmp_path):
    repo = hub.add_repo("org/repo", {"model.safetensors": SAFE, "pytorch_model.bin": BIN, "config.json": CONFIG})
    fetched = fetch("hf:org/repo")
    assert fetched.path.name == "model.safetensors" and fetched.path.read_bytes() == SAFE
    assert fetched.path.is_relative_to(tmp_path / "hf" / "hub")
    assert fetched.meta["config"] == {"num_classes": 10, "architecture": "resnet18"}
    assert fetched.meta["revision"] == repo.commit
    assert hub.count("GET", "/org/repo/resolve/main/pytorch_model.bin") == 0


def test_falls_back_to_pytorch_bin(hub):
    hub.add_repo("org/repo", {"pytorch_model.bin": BIN})
    fetched = fetch("hf:org/repo")
    assert fetched.path.name == "pytorch_model.bin" and fetched.path.read_bytes() == BIN


def test_named_file_at_a_revision(hub):
    repo = hub.add_repo("org/repo", {"weights/best.pth": BIN})
    fetched = fetch(f"hf:org/repo@{repo.commit}/weights/best.pth")
    assert fetched.path.read_bytes() == BIN


def test_sharded_index_brings_every_shard(hub):
    shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    index = {"metadata": {}, "weight_map": shards}
    hub.add_repo("org/big", {
        "model.safetensors.index.json": json.dumps(index).encode(),
        "model-00001-of-00002.safetensors": b"1" * 100,
        "model-00002-of-00002.safetensors": b"2" * 100,
    })
    fetched = fetch("hf:org/big")
    assert fetched.path.name == "model.safetensors.index.json"
    assert set(fetched.meta["files"]) == {"model.safetensors.index.json", *index["weight_map"].values()}
    assert (fetched.path.parent / "model-00002-of-00002.safetensors").read_bytes() == b"2" * 100


def test_shard_names_in_an_index_are_validated(hub):
    index = {"weight_map": {"a": "../../../escape.safetensors"}}
    hub.add_repo("org/evil", {"model.safetensors.index.json": json.dumps(index).encode()})
    with pytest.raises(PathTraversalError):
        fetch("hf:org/evil")
    assert hub.count("GET", "/org/evil/resolve/main/../../../escape.safetensors") == 0


def test_offline_hit_and_miss(hub):
    hub.add_repo("org/repo", {"model.safetensors": SAFE, "config.json": CONFIG})
    fetch("hf:org/repo")
    before = hub.count()
    assert fetch("hf:org/repo", offline=True).path.read_bytes() == SAFE
    assert hub.count() == before
    with pytest.raises(OfflineCacheMissError, match="org/other"):
        fetch("hf:org/other", offline=True)
    assert hub.count() == before


def test_missing_repo_and_file_are_clear(hub):
    hub.add_repo("org/repo", {"config.json": CONFIG})
    with pytest.raises(SourceNotFoundError, match="not found"):
        fetch("hf:org/nothere")
    with pytest.raises(SourceNotFoundError, match="model.safetensors"):
        fetch("hf:org/repo")


def test_lock_records_commit_and_digest(hub, tmp_path):
    repo = hub.add_repo("org/repo", {"model.safetensors": SAFE})
    lock = lock_sources(["hf:org/repo"], tmp_path / "weightport.lock")
    entry = lock.get("hf:org/repo")
    assert entry.revision == repo.commit
    import hashlib

    assert entry.sha256 == hashlib.sha256(SAFE).hexdigest()


def test_unreachable_hub_fails_under_weightports_retries_in_weightports_words(caplog):
    # HF_ENDPOINT is a closed port on 127.0.0.1 (tests/conftest.py): every connection is refused.
    # huggingface_hub alone would retry five times with its own backoff (~23 s) and its own lines;
    # weightport asks once per attempt, retries as many times as `retries` says, one line each.
    from weightport.errors import DownloadError

    refused = "cannot reach the hub at http://127.0.0.1:9"
    with caplog.at_level("WARNING"), pytest.raises(DownloadError, match=refused) as info:
        fetch("hf:org/repo", retries=1)
    assert "HF_ENDPOINT" in info.value.hint and "WEIGHTPORT_OFFLINE=1" in info.value.hint
    ours = [r for r in caplog.records if r.name == "weightport"]
    assert [r.getMessage().count("\n") for r in ours] == [0]  # one retry, one line, no hint repeated
    assert "retry 1/1" in ours[0].getMessage()
    assert not [r for r in caplog.records if "Retrying in" in r.getMessage()]


def test_a_hub_that_answers_503_is_asked_exactly_once_per_weightport_attempt(file_server, monkeypatch, caplog):
    from weightport.errors import DownloadError

    path = "/org/busy/resolve/main/model.safetensors"
    file_server.add(path, b"", mode="status", status=503)
    monkeypatch.setenv("HF_ENDPOINT", file_server.base)
    with caplog.at_level("WARNING"), pytest.raises(DownloadError, match="answered HTTP 503"):
        fetch("hf:org/busy/model.safetensors", retries=2)
    assert file_server.count("HEAD", path) == 3 and file_server.count("GET", path) == 0
    assert len([r for r in caplog.records if r.name == "weightport" and "retry" in r.getMessage()]) == 2


def test_locked_commit_is_fetched_even_after_main_moves(hub, tmp_path):
    import shutil

    hub.add_repo("org/repo", {"model.safetensors": SAFE}, commit="a" * 40)
    lock_sources(["hf:org/repo"], tmp_path / "weightport.lock")
    hub.add_repo("org/repo", {"model.safetensors": BIN}, commit="b" * 40)  # main moved on
    locked = fetch("hf:org/repo", lockfile=tmp_path / "weightport.lock")
    assert locked.path.read_bytes() == SAFE and locked.meta["revision"] == "a" * 40
    assert fetch("hf:org/repo").path.read_bytes() == BIN  # without the lock: main
    shutil.rmtree(tmp_path / "hf")  # a fresh machine, and the hub no longer has the locked commit
    with pytest.raises(SourceNotFoundError, match="a" * 40):
        fetch("hf:org/repo", lockfile=tmp_path / "weightport.lock")
