"""``weightport inspect``: what a checkpoint holds, torch-free for safetensors, safe on hostile pickles."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.conftest import SRC, run_cli


def test_safetensors_is_summarised_from_its_header_without_torch(ckpts):
    result = run_cli("--json", "inspect", str(ckpts["safetensors"]))
    assert result.code == 0, result.err
    data = result.json()
    assert data["format"] == "safetensors" and data["torch_free"] is True
    assert data["tensors"] == 14
    # TinyNet: conv 8*3*3*3 + bn 4*8 + conv 16*8*3*3 + bn 4*16 + fc 16*10+10, plus two step counters
    assert data["parameters"] == 216 + 32 + 1152 + 64 + 170 + 2
    assert data["dtypes"] == {"float32": 12, "int64": 2}
    assert data["bytes"] == 4 * (216 + 32 + 1152 + 64 + 170) + 8 * 2
    assert "{bn1,bn2,conv1,conv2,fc}.weight" in data["tree"]
    assert data["metadata"] == {"safetensors": {"origin": "test"}}

    code = ("import sys\nfrom weightport.cli import main\nrc = main(['inspect', sys.argv[1]])\n"
            "print('TORCH-IMPORTED' if 'torch' in sys.modules else 'NO-TORCH', rc, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(ckpts["safetensors"])], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": ""}, timeout=60)
    assert "NO-TORCH 0" in proc.stderr, proc.stderr
    assert "float32 ×12, int64 ×2" in proc.stdout


def test_lightning_checkpoint_shows_container_metadata_and_every_key(ckpts):
    result = run_cli("--json", "inspect", str(ckpts["ckpt"]), "--keys")
    assert result.code == 0, result.err
    data = result.json()
    assert data["format"] == "lightning" and data["container"] == "state_dict"
    assert {"epoch", "global_step", "hyper_parameters"} <= set(data["dropped"])
    assert data["metadata"]["hyper_parameters"] == {"lr": 0.1, "num_classes": 10}
    assert data["top_level"] == {"model.conv1": 1, "model.bn1": 5, "model.conv2": 1, "model.bn2": 5, "model.fc": 2}
    assert len(data["keys"]) == 14
    assert {"key": "model.fc.weight", "dtype": "float32", "shape": [10, 16]} in data["keys"]


def test_wrapper_prefixes_are_reported(ckpts):
    import io
    from contextlib import redirect_stdout

    from weightport.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["inspect", str(ckpts["ddp"])]) == 0
    text = buf.getvalue()
    assert "strip module. (14 keys)" in text
    assert "module.{conv1,bn1,conv2,bn2,fc}.weight" in text


class _RunsACommand:
    """Unpickling this would run ``touch MARKER`` (pickling it, here, runs nothing)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_an_unsafe_pickle_is_refused_without_running_it(tmp_path):
    import torch

    evil, marker = tmp_path / "evil.pt", tmp_path / "PWNED"
    torch.save({"weight": torch.zeros(2), "payload": _RunsACommand(marker)}, evil)
    assert not marker.exists()
    result = run_cli("inspect", str(evil))
    assert result.code == 5
    assert not marker.exists()
    assert len(result.error_lines) == 2 and "Traceback" not in result.err
    assert result.error_lines[0].startswith(f"error: {evil}: the pickle wants globals outside the safe allowlist")
    assert "system" in result.error_lines[0]
    assert result.error_lines[1].startswith("hint: use a safetensors copy")


def test_a_missing_file_is_one_line_and_exit_4(tmp_path):
    result = run_cli("--json", "inspect", str(tmp_path / "none.safetensors"))
    assert result.code == 4
    assert result.error_lines[0] == f"error: checkpoint not found: {tmp_path / 'none.safetensors'}"
    # With --json, stdout holds the same failure as JSON (never nothing), with the same exit code.
    error = result.json()["error"]
    assert error["type"] == "SourceNotFoundError" and error["exit_code"] == 4
    assert error["message"] == result.error_lines[0].removeprefix("error: ")


def test_a_hub_repository_shows_its_config(ckpts, hub):
    hub.add_repo("org/tiny", {"model.safetensors": ckpts["safetensors"].read_bytes(),
                              "config.json": b'{"architecture": "tinynet", "num_classes": 10}'})
    result = run_cli("--json", "inspect", "hf:org/tiny")
    assert result.code == 0, result.err
    data = result.json()
    assert data["source"] == "hf:org/tiny" and data["format"] == "safetensors" and data["tensors"] == 14
    assert data["metadata"]["hub_config"] == {"architecture": "tinynet", "num_classes": 10}
    assert data["metadata"]["safetensors"] == {"origin": "test"}
