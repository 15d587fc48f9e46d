"""Shared fixtures: caches redirected to tmp_path, no network, small models, checkpoint writers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import netguard

os.environ.setdefault("OMP_NUM_THREADS", "1")
#: An endpoint that refuses at once: a hub call a test forgot to point at its own server fails fast.
DEAD_ENDPOINT = "http://127.0.0.1:9"
# Read by huggingface_hub when it is first imported (during collection, before any fixture runs):
# no telemetry (its user-agent probe would ask huggingface.co for a list of agents), no default hub,
# and neither the user's token nor their HF_HOME (the fixture below gives each test its own).
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_ENDPOINT"] = DEAD_ENDPOINT
_SESSION_HF_HOME = tempfile.TemporaryDirectory(prefix="weightport-test-hf-")
os.environ["HF_HOME"] = _SESSION_HF_HOME.name
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
    os.environ.pop(_var, None)

#: Where a process the tests start can reach nothing either (see tests/helpers/netguard.py).
NETGUARD_SITE = Path(__file__).resolve().parent / "helpers" / "netguard_site"


def pytest_configure(config: pytest.Config) -> None:
    netguard.install()
    handle, log = tempfile.mkstemp(prefix="weightport-netguard-", suffix=".log")
    os.close(handle)
    os.environ[netguard.LOG_ENV] = log
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(NETGUARD_SITE), os.environ.get("PYTHONPATH")) if p)


def pytest_unconfigure(config: pytest.Config) -> None:
    log = os.environ.pop(netguard.LOG_ENV, None)
    if log and os.path.exists(log):
        os.remove(log)
    _SESSION_HF_HOME.cleanup()


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Fail any test that tried to reach past the loopback interface (in this process or a child)."""
    netguard.take()
    yield
    tried = netguard.take()
    if tried:
        pytest.fail("this test tried to reach the network:\n  " + "\n  ".join(dict.fromkeys(tried)), pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's caches (the hub's is ``$HF_HOME/hub``, under tmp_path)."""
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("WEIGHTPORT_CACHE", str(root / "weightport"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for var in ("WEIGHTPORT_OFFLINE", "HF_HUB_OFFLINE", "WEIGHTPORT_MIRROR", "WEIGHTPORT_LOCKFILE",
                "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN",
                "WEIGHTPORT_PROGRESS", "HF_HUB_DISABLE_PROGRESS_BARS"):
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
