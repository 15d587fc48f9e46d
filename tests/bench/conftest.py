"""Fixtures for the fine-tune benchmark tests: a tiny configuration and a timm-layout checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

#: A tiny timm test architecture (about 0.1 M parameters, with BatchNorm) keeps every run to seconds.
TINY_ARCH = "timm:test_efficientnet"


def tiny_args(out: Path, *extra: str) -> list[str]:
    """Command-line arguments for a run of a few batches at 32 px."""
    return [
        "--arch", TINY_ARCH, "--image-size", "32", "--batch-size", "16", "--train-size", "64",
        "--val-size", "32", "--max-batches", "2", "--progress", "none", "--threads", "1",
        "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.fixture
def timm_checkpoint(tmp_path: Path) -> Path:
    """The tiny architecture's weights, with its 1000-class head, saved in timm's own key layout."""
    import timm
    import torch

    torch.manual_seed(123)
    model = timm.create_model(TINY_ARCH.split(":", 1)[1], num_classes=1000)
    path = tmp_path / "weights" / "test_efficientnet.pth"
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return path
