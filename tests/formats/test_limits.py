"""Resource limits on tensors: logical size against budget and against stored bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from weightport.errors import ResourceLimitError
from weightport.formats import ReadOptions
from weightport.formats.limits import check_tensors


def test_small_broadcast_buffers_are_fine() -> None:
    # 1 MiB floor: a small expanded buffer (e.g. position ids) is legitimate.
    check_tensors(Path("m.pt"), {"ids": torch.arange(512).expand(64, 512)}, ReadOptions())


def test_expansion_ratio_is_configurable() -> None:
    obj = {"nested": [{"w": torch.ones(1).expand(1 << 20)}]}  # 4 MiB logical from 4 bytes
    with pytest.raises(ResourceLimitError, match="'nested.0.w'"):
        check_tensors(Path("m.pt"), obj, ReadOptions())
    check_tensors(Path("m.pt"), obj, ReadOptions(max_expansion=float("inf")))


def test_views_of_a_larger_storage_are_fine() -> None:
    base = torch.zeros(1 << 20)
    check_tensors(Path("m.pt"), {"head": base[:10], "tail": base[-10:]}, ReadOptions())


def test_budget_applies_to_contiguous_tensors() -> None:
    with pytest.raises(ResourceLimitError, match="max_tensor_bytes=1000"):
        check_tensors(Path("m.pt"), {"w": torch.zeros(1000)}, ReadOptions(max_tensor_bytes=1000))


class _ForgedView:
    """Stands in for a tensor torch would never build: a view past the end of its storage."""

    layout = torch.strided
    shape = (4,)

    def numel(self) -> int:
        return 4

    def element_size(self) -> int:
        return 4

    def stride(self) -> tuple[int, ...]:
        return (1000,)

    def storage_offset(self) -> int:
        return 0

    def untyped_storage(self):
        return torch.UntypedStorage(16)


def test_view_past_its_storage_is_corrupt() -> None:
    from weightport.errors import CorruptCheckpointError
    from weightport.formats.limits import check_tensor

    with pytest.raises(CorruptCheckpointError, match="reaches 12004 bytes into a storage of 16"):
        check_tensor(Path("m.pt"), "w", _ForgedView(), ReadOptions())


def test_a_safetensors_tensor_over_budget_is_refused_from_its_header_before_anything_is_mapped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors
    from safetensors.torch import save_file

    from weightport.formats import read_checkpoint

    save_file({"small": torch.zeros(10), "big": torch.zeros(1000)}, str(tmp_path / "w.safetensors"))
    read_checkpoint(tmp_path / "w.safetensors", ReadOptions(max_tensor_bytes=4000))  # at the limit: read

    def no_mapping(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was mapped although its header declares a tensor over budget")

    monkeypatch.setattr(safetensors, "safe_open", no_mapping)
    with pytest.raises(ResourceLimitError, match=r"'big' of shape \(1000,\) is 4000 bytes.*max_tensor_bytes=3999"):
        read_checkpoint(tmp_path / "w.safetensors", ReadOptions(max_tensor_bytes=3999))
