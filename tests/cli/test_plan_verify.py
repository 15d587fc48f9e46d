"""`weightport plan --verify`: load into the named model and compare with the source architecture."""

import json
import subprocess
import sys

import torch
import torchvision


def run(*args):
    return subprocess.run([sys.executable, "-m", "weightport.cli", *args], capture_output=True, text=True)


def test_plan_verify_passes_for_the_same_architecture_and_fails_for_a_wrong_one(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tv_resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    ok = run("--json", "plan", str(path), "--model", "timm:resnet18", "--verify", "torchvision.models:resnet18")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["verification"]["passed"] and data["verification"]["max_abs_diff"] < 1e-3
    # A builder whose model computes something else with the same tensors: exit 3, one-line error.
    builder = tmp_path / "wrong.py"
    builder.write_text("import torchvision\n\ndef build():\n    m = torchvision.models.resnet18()\n"
                       "    m.maxpool.stride = 1\n    return m\n")
    bad = run("plan", str(path), "--model", "timm:resnet18", "--verify", f"{builder}:build")
    assert bad.returncode == 3
    text = bad.stdout + bad.stderr
    assert "verification of" in text and "failed" in text and "hint:" in text
