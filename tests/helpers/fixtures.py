"""Pytest fixtures shared by tests/fetch and tests/adapters (imported by their conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import FileServer, HubServer


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A hub on 127.0.0.1, with HF_ENDPOINT pointing at it and HF_HOME in tmp_path."""
    server = HubServer()
    monkeypatch.setenv("HF_ENDPOINT", server.base)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every cache and network switch under the test's control (never the user's)."""
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(tmp_path / "wp-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("WEIGHTPORT_OFFLINE", "HF_HUB_OFFLINE", "WEIGHTPORT_MIRROR", "WEIGHTPORT_LOCKFILE", "HF_HUB_CACHE",
                "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "wp-cache"
