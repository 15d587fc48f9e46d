"""Shared fixtures: caches redirected to tmp_path, small models, checkpoint writers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's caches, and none reaches the network."""
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(root / "weightport"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for var in ("WEIGHTPORT_OFFLINE", "HF_HUB_OFFLINE", "WEIGHTPORT_MIRROR", "WEIGHTPORT_LOCKFILE",
                "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _reset_registries():
    """Registrations a test makes (aliases, schemes, layouts, tensor adapters) end with the test."""
    import weightport.layout.fit.base
    import weightport.layout.rules
    import weightport.registry.aliases
    import weightport.registry.resolve
    import weightport.registry.schemes  # noqa: F401 - every table exists before the snapshot
    from weightport.registry.table import restore_all, snapshot_all

    snapshots = snapshot_all()
    yield
    restore_all(snapshots)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tiny_net():
    """A small CNN classifier factory: ``tiny_net(num_classes=10, in_chans=3)``."""
    from tests.helpers.models import TinyNet

    return TinyNet


def save(obj, path: Path) -> Path:
    """Write a checkpoint in the format the suffix names."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    elif path.suffix == ".npz":
        import numpy as np

        np.savez(path, **{k: v.numpy() for k, v in obj.items()})
    else:
        torch.save(obj, path)
    return path
