"""Fixtures for the command's tests: a runner for ``python -m weightport.cli`` and small checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fixtures import file_server, hub  # noqa: F401  (fixtures)

SRC = Path(__file__).resolve().parents[2] / "src"
REPO = SRC.parent

#: A model file the commands import with --model models.py:TinyNet.
MODELS_PY = f"""\
import sys
sys.path.insert(0, {str(REPO)!r})
from tests.helpers.models import TinyNet


def tiny_with_extra(num_classes: int = 10):
    import torch
    net = TinyNet(num_classes=num_classes)
    net.extra = torch.nn.Linear(2, 2)
    return net
"""


@dataclass
class Result:
    """What a command run gave back."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(("error:", "hint:"))]


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run ``python -m weightport.cli ARGS`` in a fresh process (the environment the test set, plus ``env``)."""
    full_env = {k: v for k, v in os.environ.items() if k != "WEIGHTPORT_DEBUG"}
    # The inherited PYTHONPATH keeps the network guard (tests/helpers/netguard_site) in the child.
    parts = [str(SRC), str(REPO), str(REPO / "benchmarks"), os.environ.get("PYTHONPATH")]
    path = os.pathsep.join(p for p in parts if p)
    full_env.update({"PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})})
    proc = subprocess.run([sys.executable, "-m", "weightport.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model's weights written as safetensors, a Lightning checkpoint and a DDP pickle, plus models.py."""
    import torch
    from safetensors.torch import save_file

    from tests.helpers.models import TinyNet, randomize_bn

    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    sd = randomize_bn(TinyNet(num_classes=10)).state_dict()
    paths = {
        "safetensors": root / "tiny.safetensors",
        "ckpt": root / "tiny.ckpt",
        "ddp": root / "ddp.pth",
        "models": root / "models.py",
    }
    save_file(sd, str(paths["safetensors"]), metadata={"origin": "test"})
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 3, "global_step": 30,
                "hyper_parameters": {"lr": 0.1, "num_classes": 10}, "pytorch-lightning_version": "2.6.0"},
               paths["ckpt"])
    torch.save({f"module.{k}": v for k, v in sd.items()}, paths["ddp"])
    paths["models"].write_text(MODELS_PY)
    return paths
