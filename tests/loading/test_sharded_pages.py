"""Unmapping the pages of a checkpoint tensor a rank's shard does not use never changes a value."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from weightport.loading.sharded import MappedPages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise on Linux only")


def test_a_mapped_tensor_reads_the_same_after_its_pages_are_released(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch.manual_seed(0)
    original = {"a": torch.randn(1024, 512), "b": torch.randn(333, 77)}
    save_file(original, str(tmp_path / "w.safetensors"))
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        mapped = {k: f.get_tensor(k) for k in original}
    pages = MappedPages()
    half = mapped["a"].narrow(0, 512, 512)
    assert float(half.sum()) == float(original["a"][512:].sum())  # faulted in
    pages.release_outside(mapped["a"], half)  # the other half's pages go
    pages.release_outside(mapped["b"], mapped["b"].clone())  # a copy: all of b's pages go
    assert torch.equal(half, original["a"][512:]) and torch.equal(mapped["a"], original["a"])
    assert torch.equal(mapped["b"], original["b"])


def test_memory_that_is_not_a_file_mapping_is_never_touched() -> None:
    tensor = torch.randn(4096, 256)  # anonymous memory: MADV_DONTNEED would zero it
    copy = tensor.clone()
    pages = MappedPages()
    pages.release_outside(tensor, None)
    pages.release_outside(tensor, tensor.narrow(0, 0, 10))
    assert torch.equal(tensor, copy)
