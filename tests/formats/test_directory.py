"""A directory resolves to the one checkpoint inside it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from weightport.errors import AmbiguousCheckpointError, SourceNotFoundError
from weightport.formats import read_checkpoint

from .helpers import small_state_dict


def test_prefers_model_safetensors(tmp_path: Path) -> None:
    save_file(small_state_dict(), tmp_path / "model.safetensors")
    torch.save(small_state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    raw = read_checkpoint(tmp_path)
    assert raw.path == tmp_path / "model.safetensors" and raw.format == "safetensors"


def test_single_candidate(tmp_path: Path) -> None:
    torch.save(small_state_dict(), tmp_path / "last.ckpt")
    (tmp_path / "notes.txt").write_text("hi")
    assert read_checkpoint(tmp_path).path == tmp_path / "last.ckpt"


def test_index_preferred_over_its_shards(tmp_path: Path) -> None:
    save_file({"a": torch.ones(1)}, tmp_path / "w-1.safetensors")
    save_file({"b": torch.ones(1)}, tmp_path / "w-2.safetensors")
    (tmp_path / "w.safetensors.index.json").write_text(
        '{"weight_map": {"a": "w-1.safetensors", "b": "w-2.safetensors"}}'
    )
    assert read_checkpoint(tmp_path).format == "safetensors-sharded"


def test_several_candidates_are_listed(tmp_path: Path) -> None:
    torch.save(small_state_dict(), tmp_path / "epoch=1.ckpt")
    torch.save(small_state_dict(), tmp_path / "epoch=2.ckpt")
    with pytest.raises(AmbiguousCheckpointError) as info:
        read_checkpoint(tmp_path)
    assert "epoch=1.ckpt" in str(info.value) and "epoch=2.ckpt" in str(info.value)


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no checkpoint"):
        read_checkpoint(tmp_path)
