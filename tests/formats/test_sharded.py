"""Sharded checkpoints through their JSON index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from weightport.errors import CorruptCheckpointError, FormatMismatchError, PathTraversalError
from weightport.formats import read_checkpoint


def _index(path: Path, weight_map: dict[str, str]) -> Path:
    path.write_text(json.dumps({"metadata": {"total_size": 16}, "weight_map": weight_map}))
    return path


def test_safetensors_shards_merge_in_index_order(tmp_path: Path) -> None:
    save_file(
        {"b": torch.ones(2), "a": torch.zeros(2)},
        tmp_path / "model-00001-of-00002.safetensors",
        metadata={"format": "pt"},
    )
    save_file({"c": torch.full((2,), 2.0)}, tmp_path / "model-00002-of-00002.safetensors")
    index = _index(
        tmp_path / "model.safetensors.index.json",
        {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors",
        },
    )
    raw = read_checkpoint(index)
    assert raw.format == "safetensors-sharded" and list(raw.obj) == ["a", "b", "c"]
    assert torch.equal(raw.obj["c"], torch.full((2,), 2.0))
    assert raw.files[0] == index and len(raw.files) == 3
    assert raw.metadata["index"] == {"total_size": 16}
    assert raw.metadata["shards"]["model-00001-of-00002.safetensors"] == {"safetensors": {"format": "pt"}}


def test_torch_bin_shards(tmp_path: Path) -> None:
    torch.save({"a": torch.ones(1)}, tmp_path / "pytorch_model-00001-of-00002.bin")
    torch.save(
        {"b": torch.ones(1)}, tmp_path / "pytorch_model-00002-of-00002.bin", _use_new_zipfile_serialization=False
    )
    index = _index(
        tmp_path / "pytorch_model.bin.index.json",
        {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"},
    )
    raw = read_checkpoint(index)
    assert raw.format == "torch-sharded" and set(raw.obj) == {"a", "b"}


def test_missing_shard(tmp_path: Path) -> None:
    save_file({"a": torch.ones(1)}, tmp_path / "s1.safetensors")
    index = _index(tmp_path / "m.safetensors.index.json", {"a": "s1.safetensors", "b": "s2.safetensors"})
    with pytest.raises(CorruptCheckpointError, match="s2.safetensors"):
        read_checkpoint(index)


def test_shard_lacking_a_key(tmp_path: Path) -> None:
    save_file({"a": torch.ones(1)}, tmp_path / "s1.safetensors")
    index = _index(tmp_path / "m.safetensors.index.json", {"a": "s1.safetensors", "z": "s1.safetensors"})
    with pytest.raises(CorruptCheckpointError, match="'z'"):
        read_checkpoint(index)


def test_duplicate_key_across_shards(tmp_path: Path) -> None:
    save_file({"a": torch.ones(1)}, tmp_path / "s1.safetensors")
    save_file({"a": torch.ones(1), "b": torch.ones(1)}, tmp_path / "s2.safetensors")
    index = _index(tmp_path / "m.safetensors.index.json", {"a": "s1.safetensors", "b": "s2.safetensors"})
    with pytest.raises(CorruptCheckpointError, match="more than one shard"):
        read_checkpoint(index)


def test_shard_path_traversal(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    save_file({"a": torch.ones(1)}, tmp_path / "outside.safetensors")
    index = _index(tmp_path / "sub" / "m.safetensors.index.json", {"a": "../outside.safetensors"})
    with pytest.raises(PathTraversalError, match="outside"):
        read_checkpoint(index)


@pytest.mark.parametrize("name", ["/etc/passwd", "a/../../x.safetensors", "C:x.safetensors", "a\\b.safetensors",
                                  "x\x00.safetensors", "y" * 300 + ".safetensors"])
def test_shard_names_that_could_leave_the_index_directory_are_refused_before_any_read(tmp_path: Path, name) -> None:
    save_file({"b": torch.ones(1)}, tmp_path / "s.safetensors")
    index = _index(tmp_path / "m.safetensors.index.json", {"a": name, "b": "s.safetensors"})
    with pytest.raises(PathTraversalError) as info:
        read_checkpoint(index)
    assert isinstance(info.value, ValueError) and info.value.hint


def test_shards_kept_as_symlinks_into_a_blob_store_load(tmp_path: Path) -> None:
    """A hub snapshot: ``snapshots/<commit>/*.safetensors`` are links into ``../../blobs``."""
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "abc123"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for i, key in enumerate(("a", "b")):
        save_file({key: torch.full((2,), float(i))}, blobs / f"blob{i}")
        (snapshot / f"model-{i}.safetensors").symlink_to(Path("../../blobs") / f"blob{i}")
    index = _index(snapshot / "model.safetensors.index.json", {"a": "model-0.safetensors", "b": "model-1.safetensors"})
    raw = read_checkpoint(index)
    assert torch.equal(raw.obj["b"], torch.ones(2)) and torch.equal(raw.obj["a"], torch.zeros(2))


def test_shard_of_the_wrong_format(tmp_path: Path) -> None:
    torch.save({"a": torch.ones(1)}, tmp_path / "s1.bin")
    index = _index(tmp_path / "m.safetensors.index.json", {"a": "s1.bin"})
    with pytest.raises(FormatMismatchError):
        read_checkpoint(index)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"weight_map": {}}', b'{"weight_map": {"a": 3}}'])
def test_bad_index(tmp_path: Path, body: bytes) -> None:
    index = tmp_path / "m.safetensors.index.json"
    index.write_bytes(body)
    with pytest.raises(CorruptCheckpointError):
        read_checkpoint(index)
