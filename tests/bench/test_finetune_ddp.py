"""Two CPU processes through Lightning's DDP (gloo): identical starting weights, reduced metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]
PATHS = os.pathsep.join(str(REPO / d) for d in ("src", "benchmarks"))


@pytest.mark.ddp
def test_two_process_ddp_checks_weights_and_reduces_metrics(tmp_path: Path, timm_checkpoint: Path) -> None:
    out = tmp_path / "out"
    args = tiny_args(out, str(timm_checkpoint), "--protocols", "lp-ft", "--epochs", "2", "--probe-epochs", "1",
                     "--devices", "2", "--strategy", "ddp", "--seeds", "0")  # fmt: skip
    # Lightning's "ddp" starts rank 1 by re-running this command, so it must be a real command line.
    env = {**os.environ, "PYTHONPATH": f"{PATHS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "weightport_bench.finetune", *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 1  # rank 1 ran too, but only rank 0 reports
    run = runs[0]
    assert run["world_size"] == 2 and run["strategy"] == "ddp"
    assert run["weights_identical"] is True and run["weights_ranks"] == 2
    # Both ranks loaded the file themselves: the fingerprint is that of the loaded weights, on each rank.
    assert run["weights_per_rank"] == [run["weights_fingerprint"]] * 2
    # Each rank validated half of the 32 images; the logged count is reduced over both ranks.
    assert run["val_seen"] == 32.0
    assert run["top1"] * 32 == pytest.approx(round(run["top1"] * 32), abs=1e-4)  # right answers over both halves
    assert 0.0 <= run["top1"] <= 1.0 and run["epochs"] == 2
    # Images/s counts the images of both ranks: 2 epochs x 2 batches x 16 images x 2 ranks.
    assert run["images_per_s"] == pytest.approx(2 * 2 * 16 * 2 / run["train_s"], rel=0.05)
    # The table's throughput is per device: half of it on each of the two ranks.
    assert run["images_per_s_per_device"] == pytest.approx(run["images_per_s"] / 2, abs=0.01)
