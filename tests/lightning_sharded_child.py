"""One rank of the Lightning recipe: ``configure_model`` builds a ViT on meta, shards it with
``fully_shard`` and loads pretrained weights into the shards; the Trainer fine-tunes it a few steps.

``python -m torch.distributed.run --standalone --nproc_per_node 2 lightning_sharded_child.py CKPT OUT``
writes ``OUT/rank<N>.json`` (the report, and whether the gathered weights equal a single-process
load) and ``OUT/last.ckpt`` (a full checkpoint that ``load_from_checkpoint`` reads in one process).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as L
import timm
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

import weightport
from weightport import PretrainedMixin

VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 192, "depth": 4, "num_heads": 3}


class ViTClassifier(PretrainedMixin, L.LightningModule):
    """The recipe: build on meta, shard, load — all in ``configure_model``."""

    def __init__(self, source: str, num_classes: int = 5) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net: torch.nn.Module | None = None

    def configure_model(self) -> None:
        if self.net is not None:  # Lightning calls the hook again for validate/test
            return
        with torch.device("meta"):
            self.net = timm.create_model("vit_tiny_patch16_224", num_classes=self.hparams.num_classes, **VIT)
        if self.device_mesh is not None:  # under ModelParallelStrategy; None in a plain process
            mesh = self.device_mesh["data_parallel"]
            for block in self.net.blocks:
                fully_shard(block, mesh=mesh)
            fully_shard(self.net, mesh=mesh)
        torch.manual_seed(0)  # the new head's initialisation, the same as the reference's
        self.load_pretrained(self.hparams.source)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


class Record(L.Callback):
    """On fit start (weights loaded, nothing trained): compare with a single-process load."""

    def __init__(self, out: Path, checkpoint: str) -> None:
        self.out, self.checkpoint = out, checkpoint

    def on_fit_start(self, trainer: L.Trainer, module: ViTClassifier) -> None:
        full = {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in module.net.state_dict().items()}
        reference = timm.create_model("vit_tiny_patch16_224", num_classes=module.hparams.num_classes, **VIT)
        torch.manual_seed(0)
        weightport.load_weights(reference, self.checkpoint)
        expected = reference.state_dict()
        result = {
            "rank": trainer.global_rank,
            "sharded": all(isinstance(p, DTensor) for p in module.net.parameters()),
            "differ": [k for k in expected if k not in full or not torch.equal(full[k], expected[k])],
            "report": module.weightport_report.to_dict(),
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(result))


def main() -> None:
    checkpoint, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    data = torch.utils.data.TensorDataset(torch.randn(16, 3, 32, 32), torch.randint(0, 5, (16,)))
    trainer = L.Trainer(
        accelerator="cpu", devices=2, max_steps=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[Record(out, checkpoint)],
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1, save_distributed_checkpoint=False),
    )  # fmt: skip
    model = ViTClassifier(checkpoint)
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=4))
    trainer.save_checkpoint(out / "last.ckpt")
    if trainer.global_rank == 0:
        (out / "trained.json").write_text(json.dumps({"steps": trainer.global_step}))


if __name__ == "__main__":
    main()
