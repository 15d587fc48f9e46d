"""A team's own LightningModule and LightningDataModule, from a package of theirs, under the benchmark."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch

from weightport.errors import UsageError
from weightport_bench.finetune import main
from weightport_bench.finetune.recipe import recipe_for
from weightport_bench.finetune.user import USER_FIELDS, FreezeBody, import_class, pick_metric, use_recipe_optimizer

PACKAGE = "teamnet_bench_test"

#: What a user writes: an encoder + head classifier that logs val_acc, and a data module of its own.
CODE = '''
import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, padding=1)
        self.bn = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, 16)

    def forward(self, x):
        return self.fc(F.relu(self.conv2(F.relu(self.bn(self.conv(x))))).mean((2, 3)))


class Classifier(L.LightningModule):
    def __init__(self, num_classes: int = 3, lr: float = 0.05):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(16, num_classes)
        self.lr = lr

    def forward(self, x):
        return self.head(self.encoder(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Blobs(L.LightningDataModule):
    def __init__(self, n: int = 48, batch_size: int = 16):
        super().__init__()
        self.n, self.batch_size = n, batch_size

    def setup(self, stage=None):
        g = torch.Generator().manual_seed(0)
        labels = torch.arange(self.n) % 3
        images = torch.randn(self.n, 1, 8, 8, generator=g) + labels[:, None, None, None].float()
        cut = self.n * 3 // 4
        self.train, self.val = TensorDataset(images[:cut], labels[:cut]), TensorDataset(images[cut:], labels[cut:])

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)
'''


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's package on sys.path, and a pretrained encoder checkpoint of theirs."""
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "__init__.py").write_text(textwrap.dedent(CODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _encoder_checkpoint(root: Path) -> Path:
    module = import_class(f"{PACKAGE}.Encoder", "model")
    torch.manual_seed(7)
    encoder = module()
    encoder.bn.running_mean.uniform_(-1, 1)
    path = root / "encoder.pt"
    torch.save(encoder.state_dict(), path)
    return path


def _common(out: Path) -> list[str]:
    return ["--model", f"{PACKAGE}.Classifier", "--data", f"{PACKAGE}.Blobs", "--model-args", '{"num_classes": 3}',
            "--body", "encoder", "--threads", "1", "--out", str(out)]  # fmt: skip


def test_their_model_and_data_compare_a_checkpoint_with_scratch(package: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _encoder_checkpoint(package)
    out = package / "out"
    argv = [*_common(out), "--source", str(ckpt), "--source", "scratch", "--protocols", "linear", "full",
            "--seeds", "0", "1", "--epochs", "2", "--lr", "0.01"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    # One line per run, saying what runs and how many remain; no Lightning bars, banners or deprecations.
    assert f"run 1/8 (7 to go): {ckpt} / linear / seed 0 … val_acc" in printed.out
    assert "run 8/8 (0 to go): scratch / full / seed 1 … val_acc" in printed.out
    for noise in ("Epoch 0", "GPU available", "deprecated", "litlogger"):
        assert noise not in printed.out + printed.err, noise
    data = json.loads((out / "results.json").read_text())
    runs = data["runs"]
    assert len(runs) == 8 and {r["metric"] for r in runs} == {"val_acc"}
    assert all(0.0 <= r["score"] <= 1.0 for r in runs)
    head = 16 * 3 + 3
    total = runs[0]["params_total"]
    assert {r["params_trainable"] for r in runs if r["protocol"] == "linear"} == {head}
    assert {r["params_trainable"] for r in runs if r["protocol"] == "full"} == {total}
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    for r in runs:
        if r["source"] == "scratch":
            assert r["sha256"] is None
        else:  # the whole encoder came from their file, the head is new
            assert r["sha256"] == digest and r["coverage"] == pytest.approx(1 - head / total, abs=1e-6)
    # The recipe that applies to their model is printed and saved; the optimizer is the recipe's.
    assert set(data["recipes"]["full"]) == set(USER_FIELDS)
    assert data["recipes"]["full"]["optimizer"] == "adamw" and data["recipes"]["full"]["lr"] == 0.01
    assert "recipes" in printed.out and "body" in printed.out
    assert data["meta"]["user"]["model"] == f"{PACKAGE}.Classifier"
    assert {e["verdict"] for e in data["summary"] if e["source"] != "scratch"} <= {"better", "worse", "unclear"}


def test_a_lightning_cli_yaml_names_the_same_things(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _encoder_checkpoint(package)
    config = package / "run.yaml"
    config.write_text(textwrap.dedent(f"""\
        model:
          class_path: {PACKAGE}.Classifier
          init_args: {{num_classes: 3, lr: 0.1}}
        data:
          class_path: {PACKAGE}.Blobs
          init_args: {{n: 32}}
        trainer:
          max_epochs: 1
          logger: false
        bench:
          sources: [{ckpt}, scratch]
          protocols: [full]
          seeds: [3]
          body: encoder
          optimizer: module
          threads: 1
          progress: none
    """))
    out = package / "yaml-out"
    assert main(["--config", str(config), "--out", str(out)]) == 0
    assert "note: trainer.logger" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    assert [(r["source"], r["seed"], r["epochs"]) for r in data["runs"]] == [(str(ckpt), 3, 1), ("scratch", 3, 1)]
    assert data["recipes"]["full"]["optimizer"] == "module"  # their own configure_optimizers
    assert data["meta"]["user"]["model_args"] == {"num_classes": 3, "lr": 0.1}
    assert data["meta"]["config_ignored"] == ["trainer.logger"]


def _fit(model: L.LightningModule, recipe_name: str, epochs: int, probe: int = 0) -> None:
    recipe = recipe_for(recipe_name, {"epochs": epochs, "probe_epochs": probe, "body": "encoder"})
    use_recipe_optimizer(model, recipe)
    data = import_class(f"{PACKAGE}.Blobs", "data")()
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[FreezeBody("encoder", recipe.frozen_epochs())])  # fmt: skip
    trainer.fit(model, datamodule=data)


def test_linear_freezes_their_body_batchnorm_statistics_included(package: Path) -> None:
    torch.manual_seed(0)
    model = import_class(f"{PACKAGE}.Classifier", "model")()
    body = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head = model.head.weight.clone()
    _fit(model, "linear", epochs=2)
    assert all(torch.equal(body[k], v) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(head, model.head.weight)
    torch.manual_seed(0)
    model = import_class(f"{PACKAGE}.Classifier", "model")()
    _fit(model, "lp-ft", epochs=2, probe=1)
    assert not torch.equal(body["conv.weight"], model.encoder.conv.weight)


def test_what_cannot_be_used_is_refused_with_what_can(package: Path) -> None:
    with pytest.raises(UsageError, match="cannot import 'no_such_pkg'"):
        import_class("no_such_pkg.Model", "model")
    with pytest.raises(UsageError, match="has no class 'Nope'"):
        import_class(f"{PACKAGE}.Nope", "model")
    with pytest.raises(UsageError, match="val_loss") as err:
        pick_metric({"val_loss": 1.0, "train_loss": 2.0}, None)
    assert "--metric" in str(err.value)
    model = import_class(f"{PACKAGE}.Classifier", "model")()
    with pytest.raises(UsageError, match="no submodule 'backbone'") as err:
        use_recipe_optimizer(model, recipe_for("full"))
    assert "encoder" in str(err.value) and "--body" in str(err.value)
