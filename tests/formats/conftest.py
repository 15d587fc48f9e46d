from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """A file a malicious payload would create; the test fails if it exists afterwards."""
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists(), "a payload from a checkpoint ran"
