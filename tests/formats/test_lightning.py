"""Lightning .ckpt: the checkpoint dict is returned whole; its self-description becomes metadata."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from weightport.formats import read_checkpoint

from .helpers import lightning_ckpt, small_state_dict


class _Tiny(L.LightningModule):
    def __init__(self, hidden: int = 4, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(3, hidden)

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def test_checkpoint_written_by_the_trainer(tmp_path: Path) -> None:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 3)), batch_size=2)
    trainer = L.Trainer(
        max_steps=1,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    model = _Tiny(hidden=5)
    trainer.fit(model, data)
    path = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(path)
    raw = read_checkpoint(path)
    assert raw.format == "lightning"
    assert set(raw.obj["state_dict"]) == {"net.weight", "net.bias"}
    assert torch.equal(raw.obj["state_dict"]["net.weight"], model.net.weight.detach())
    assert raw.metadata["hyper_parameters"] == {"hidden": 5, "lr": 0.1}
    assert raw.metadata["global_step"] == 1 and raw.metadata["pytorch-lightning_version"] == L.__version__


def test_hand_made_checkpoint_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    torch.save(lightning_ckpt(small_state_dict(), {"num_classes": 10}), path)
    raw = read_checkpoint(path)
    assert raw.format == "lightning"
    assert raw.metadata == {
        "hyper_parameters": {"num_classes": 10},
        "hparams_name": "kwargs",
        "pytorch-lightning_version": "2.6.6",
        "epoch": 3,
        "global_step": 120,
    }
    assert "optimizer_states" in raw.obj  # the layout stage, not the reader, drops it


def test_ckpt_without_version_key_is_still_lightning(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": small_state_dict()}, path)
    assert read_checkpoint(path).format == "lightning"


def test_lightning_dict_in_a_pth(tmp_path: Path) -> None:
    path = tmp_path / "m.pth"
    torch.save(lightning_ckpt(small_state_dict(), {}), path)
    assert read_checkpoint(path).format == "lightning"
