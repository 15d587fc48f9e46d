from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file a malicious payload would create; tests assert it never appears."""
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists(), "a payload from a checkpoint ran"
