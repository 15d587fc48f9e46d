"""The Lightning recipe on two CPU ranks: ``configure_model`` builds a ViT on meta, shards it with
``fully_shard`` and loads pretrained weights into the shards; ``Trainer(strategy=ModelParallelStrategy)``
fine-tunes it; ``load_from_checkpoint`` of the result reads nothing from the pretrained source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("lightning_sharded_child.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.ddp
def test_configure_model_shards_and_loads_then_trains(tmp_path: Path) -> None:
    import timm
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(CHILD.parent))
    try:
        from lightning_sharded_child import VIT, ViTClassifier
    finally:
        sys.path.pop(0)
    torch.manual_seed(1)
    checkpoint = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("vit_tiny_patch16_224", num_classes=10, **VIT)
               .state_dict().items()}, str(checkpoint))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(CHILD), str(checkpoint), str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for r in ranks:
        assert r["sharded"] and r["differ"] == []  # gathered shards == a single-process load, bit for bit
        assert r["report"]["path"] == "sharded" and sorted(r["report"]["reinitialized"]) == ["net.head.bias",
                                                                                            "net.head.weight"]
    assert ranks[0]["report"]["source"]["sha256"] == ranks[1]["report"]["source"]["sha256"]
    read = [r["report"]["distributed"]["bytes_read"] for r in ranks]
    total = ranks[0]["report"]["distributed"]["bytes_total"]
    assert sum(read) == total and all(0.4 * total < n < 0.6 * total for n in read)  # each rank read its half
    assert json.loads((out / "trained.json").read_text())["steps"] == 3

    checkpoint.unlink()  # the pretrained source is gone: restoring must not need it
    restored = ViTClassifier.load_from_checkpoint(out / "last.ckpt")
    saved = torch.load(out / "last.ckpt", weights_only=True)["state_dict"]
    state = restored.state_dict()
    assert sorted(state) == sorted(saved) and all(torch.equal(state[k], saved[k]) for k in saved)
    assert restored.weightport_provenance["source"]["sha256"] == ranks[0]["report"]["source"]["sha256"]
