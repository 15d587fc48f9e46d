"""numpy .npz archives become torch tensors; object arrays are never unpickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from weightport.errors import CorruptCheckpointError, ResourceLimitError, UnsafeCheckpointError
from weightport.formats import ReadOptions, read_checkpoint

from .helpers import write


@pytest.mark.parametrize("compressed", [False, True])
def test_reads_arrays_as_tensors(tmp_path: Path, compressed: bool) -> None:
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "w.npz", **{"conv1/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.int64(3)})
    raw = read_checkpoint(tmp_path / "w.npz")
    assert raw.format == "npz" and list(raw.obj) == ["conv1/kernel", "b"]
    assert torch.equal(raw.obj["conv1/kernel"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert raw.obj["b"].dtype == torch.int64


def test_object_arrays_are_refused(tmp_path: Path, marker: Path) -> None:
    np.savez(tmp_path / "o.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(UnsafeCheckpointError, match="Python objects"):
        read_checkpoint(tmp_path / "o.npz")


def test_array_over_budget(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", a=np.zeros(1000, dtype=np.float32))
    with pytest.raises(ResourceLimitError, match="max_tensor_bytes"):
        read_checkpoint(tmp_path / "w.npz", ReadOptions(max_tensor_bytes=100))


def test_truncated_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", a=np.zeros(1000, dtype=np.float32))
    data = (tmp_path / "w.npz").read_bytes()
    write(tmp_path / "w.npz", data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError):
        read_checkpoint(tmp_path / "w.npz")
