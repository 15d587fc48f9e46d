"""Running the benchmark on several processes or GPUs through Lightning's strategies.

- ``ddp`` / ``ddp_spawn``: on CPU the ranks talk over gloo, on GPUs over NCCL. Every rank builds
  its model and loads the weights itself (the fetch layer holds a file lock, so a machine downloads
  a file once and the other ranks wait and read it). Before DDP broadcasts rank 0's parameters,
  :class:`WeightsFingerprint` hashes each rank's freshly loaded weights and gathers the hashes, so
  the results say whether every rank really started from the same weights.
- ``fsdp``: accepted when CUDA GPUs exist, refused otherwise. Checked on one H200 GPU (where FSDP
  runs unsharded, ``NO_SHARD``): linear, full and lp-ft with weights from ``from_pretrained``, and
  EfficientNet-Lite0. Not checked on CPU, nor sharded over several GPUs. The model is loaded whole
  on every rank before Lightning wraps it; loading straight into shards is not done here.

Metrics are reduced across ranks by the model (``sync_dist=True`` and torchmetrics).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy, Strategy
from torch import nn

from weightport.errors import UsageError


def weights_fingerprint(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape and bytes, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class WeightsFingerprint(L.Callback):
    """Hashes the weights on every rank before training and records whether they all agree.

    ``setup`` runs after the process group exists and before the strategy wraps the model (and DDP
    copies rank 0's parameters to the others), so what is compared is what each rank loaded.
    Rank 0 writes ``{"fingerprint", "ranks", "identical", "per_rank"}`` to ``path`` as JSON, which
    also carries the result back from spawned processes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.result: dict[str, Any] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        mine = weights_fingerprint(pl_module)
        # NCCL gathers only GPU tensors, gloo CPU ones: the strategy's device fits its backend.
        as_tensor = torch.tensor(list(bytes.fromhex(mine)), dtype=torch.int64, device=trainer.strategy.root_device)
        gathered = trainer.strategy.all_gather(as_tensor).cpu()
        rows = gathered.reshape(-1, as_tensor.numel()) if trainer.world_size > 1 else as_tensor.reshape(1, -1)
        per_rank = [bytes(int(v) for v in row).hex() for row in rows]
        self.result = {
            "fingerprint": mine,
            "ranks": len(per_rank),
            "identical": all(h == per_rank[0] for h in per_rank),
            "per_rank": per_rank,
        }
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.result))


def _ddp(find_unused: bool) -> Strategy:
    return DDPStrategy(find_unused_parameters=find_unused)


def _ddp_spawn(find_unused: bool) -> Strategy:
    return DDPStrategy(start_method="spawn", find_unused_parameters=find_unused)


def _fsdp(find_unused: bool) -> Strategy | str:
    if not torch.cuda.is_available():
        raise UsageError(
            "--strategy fsdp needs CUDA GPUs, and none are visible",
            hint="use --strategy ddp on CPU (FSDP is not checked on CPU)",
        )
    return "fsdp"


#: Strategy names the benchmark accepts → a factory taking "does the body unfreeze mid-run".
STRATEGIES: dict[str, Any] = {"auto": None, "ddp": _ddp, "ddp_spawn": _ddp_spawn, "fsdp": _fsdp}


def build_strategy(name: str, devices: int, unfreezes: bool) -> Strategy | str:
    """The Lightning strategy for ``name``.

    Args:
        name: ``auto``, ``ddp``, ``ddp_spawn`` or ``fsdp``.
        devices: Processes (CPU) or GPUs to run on.
        unfreezes: The protocol unfreezes the body mid-run (``lp-ft``): DDP must then tolerate
            parameters that get no gradient in the probe epochs.

    Raises:
        UsageError: An unknown strategy, or FSDP without GPUs.
    """
    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r}", hint=f"choose from {sorted(STRATEGIES)}")
    factory = STRATEGIES[name]
    if factory is None:
        return "auto"
    if devices < 2 and name != "fsdp":
        return "auto"
    return factory(unfreezes)
