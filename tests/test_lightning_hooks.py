"""Lightning's hooks and conventions, in real (tiny, CPU) Trainer runs, with both namespaces.

configure_model before loading, load_pretrained inside configure_model (once, and nothing fetched when
restoring), BackboneFinetuning with the README's layout, and the report shown and kept with the run.
"""

from __future__ import annotations

import json
import logging
import textwrap
import warnings

import lightning.pytorch as L
import pytest
import pytorch_lightning as PL
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.conftest import save
from tests.helpers.models import TinyNet, randomize_bn
from weightport import PretrainedMixin
from weightport.warnings import FrozenHeadWarning

NAMESPACES = {"lightning": L, "pytorch_lightning": PL}


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g))
    return DataLoader(data, batch_size=4)


def trainer(ns, tmp_path, **kwargs):
    args = {"max_epochs": 1, "accelerator": "cpu", "logger": False, "enable_progress_bar": False,
            "enable_model_summary": False, "enable_checkpointing": False, "default_root_dir": tmp_path}
    return ns.Trainer(**{**args, **kwargs})


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    net = randomize_bn(TinyNet(num_classes=10))
    body = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    return net, save(net.state_dict(), tmp_path / "pre" / "w.safetensors"), body


def make_classes(ns):
    class Built(PretrainedMixin, ns.LightningModule):
        """Layers made in configure_model (Lightning's hook for large models)."""

        def __init__(self, num_classes: int = 3):
            super().__init__()
            self.num_classes = num_classes
            self.backbone = None

        def configure_model(self):
            if self.backbone is None:
                self.backbone = TinyNet(num_classes=self.num_classes)

    class LoadsInConfigure(PretrainedMixin, ns.LightningModule):
        """The documented way to load inside configure_model in a Trainer run."""

        def __init__(self, source: str, num_classes: int = 3):
            super().__init__()
            self.save_hyperparameters()
            self.backbone = None

        def configure_model(self):
            if self.backbone is None:
                self.backbone = TinyNet(num_classes=self.hparams.num_classes)
            self.load_pretrained(self.hparams.source)

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.backbone(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.backbone(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    class Finetuned(PretrainedMixin, ns.LightningModule):
        """The README's layout for BackboneFinetuning: the new head beside the frozen backbone."""

        def __init__(self, num_classes: int = 3):
            super().__init__()
            self.save_hyperparameters()
            self.backbone = TinyNet()
            self.backbone.fc = nn.Identity()
            self.head = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.head(self.backbone(x))

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(filter(lambda p: p.requires_grad, self.parameters()), lr=0.5)

    class HeadInside(Finetuned):
        def __init__(self, num_classes: int = 3):
            ns.LightningModule.__init__(self)
            self.backbone = TinyNet(num_classes=num_classes)

        def forward(self, x):
            return self.backbone(x)

    return Built, LoadsInConfigure, Finetuned, HeadInside


CLASSES = {name: make_classes(ns) for name, ns in NAMESPACES.items()}


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("fast", [True, False])
def test_from_pretrained_calls_configure_model_before_loading(weights, name, fast):
    _, path, body = weights
    Built = CLASSES[name][0]
    model = Built.from_pretrained(path, num_classes=4, load_options={"fast": fast})
    assert model.weightport_report.path == ("assign" if fast else "copy")
    for k, v in body.items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    assert model.backbone.fc.out_features == 4
    assert {r.key for r in model.weightport_report.reinitialized} == {"backbone.fc.weight", "backbone.fc.bias"}


@pytest.mark.parametrize("name", NAMESPACES)
def test_load_pretrained_inside_configure_model_loads_once_and_restoring_fetches_nothing(tmp_path, weights, name):
    ns = NAMESPACES[name]
    _, path, body = weights
    LoadsInConfigure = CLASSES[name][1]
    model = LoadsInConfigure(source=str(path))
    run = trainer(ns, tmp_path, max_steps=2, limit_val_batches=1)
    run.fit(model, loader(), loader())
    assert model.weightport_report is not None and model.weightport_report.loaded
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(tuned["backbone.conv1.weight"], body["conv1.weight"])  # it trained
    ckpt = tmp_path / "tuned.ckpt"
    run.save_checkpoint(ckpt)
    path.unlink()  # from now on, a fetch of the pretrained weights would fail
    run.validate(model, loader(), verbose=False)  # configure_model runs again: the trained weights stay
    for k, v in model.state_dict().items():
        assert torch.equal(v, tuned[k]), k
    restored = LoadsInConfigure.load_from_checkpoint(ckpt)
    for k, v in restored.state_dict().items():
        assert torch.equal(v, tuned[k]), k
    assert restored.weightport_provenance["source"]["uri"].endswith("w.safetensors")


@pytest.mark.parametrize("name", NAMESPACES)
def test_backbone_finetuning_trains_the_new_head_of_the_documented_layout(tmp_path, weights, name):
    ns = NAMESPACES[name]
    _, path, body = weights
    Finetuned = CLASSES[name][2]
    model = Finetuned.from_pretrained(path, num_classes=3)
    assert {r.key for r in model.weightport_report.reinitialized} == {"head.weight", "head.bias"}
    head_before = model.head.weight.detach().clone()
    callback = ns.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrozenHeadWarning)
        trainer(ns, tmp_path, max_steps=2, callbacks=[callback]).fit(model, loader())
    assert not torch.equal(model.head.weight, head_before)  # the new head trained
    assert torch.equal(model.backbone.conv1.weight, body["conv1.weight"])  # the pretrained body was frozen


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_head_frozen_inside_the_backbone_is_warned_about(tmp_path, weights, name):
    ns = NAMESPACES[name]
    _, path, _ = weights
    HeadInside = CLASSES[name][3]
    model = HeadInside.from_pretrained(path, num_classes=3)
    callback = ns.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=5)
    with pytest.warns(FrozenHeadWarning, match=r"backbone.fc.{weight,bias}|backbone.fc.{bias,weight}"):
        trainer(ns, tmp_path, max_steps=1, callbacks=[callback]).fit(model, loader())


@pytest.mark.parametrize("name", NAMESPACES)
def test_the_report_is_logged_at_rank_zero_and_kept_with_the_run(tmp_path, weights, name, caplog):
    ns = NAMESPACES[name]
    _, path, _ = weights
    Finetuned = CLASSES[name][2]
    model = Finetuned.from_pretrained(path, num_classes=3)
    csv = ns.loggers.CSVLogger(tmp_path / "logs", name="run")
    package = "lightning.pytorch" if name == "lightning" else "pytorch_lightning"
    with caplog.at_level(logging.INFO, logger=f"{package}.weightport"):
        trainer(ns, tmp_path, max_steps=1, logger=csv).fit(model, loader())
    summaries = [r for r in caplog.records if r.name == f"{package}.weightport"]
    assert len(summaries) == 1 and "weightport report: file:" in summaries[0].getMessage()
    kept = json.loads((tmp_path / "logs" / "run" / "version_0" / "weightport_report.json").read_text())
    assert kept["source"]["sha256"] == model.weightport_report.source.sha256
    assert sorted(kept["reinitialized"]) == ["head.bias", "head.weight"]
    hparams = (tmp_path / "logs" / "run" / "version_0" / "hparams.yaml").read_text()
    assert "weightport/source: file:" in hparams and "weightport/coverage" in hparams


def test_lightning_cli_takes_the_named_options(tmp_path, weights, monkeypatch):
    from lightning.pytorch.cli import LightningCLI

    _, path, body = weights
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        model:
          class_path: tests.test_lightning_hooks.CliModule.from_pretrained
          init_args:
            source: {path}
            num_classes: 4
            strict: false
            reinit: [net.fc]
        trainer:
          logger: false
          enable_checkpointing: false
    """))
    cli = LightningCLI(L.LightningModule, subclass_mode_model=True, run=False,
                       args=["--config", str(config)], save_config_callback=None)
    model = cli.model
    assert isinstance(model, CliModule) and model.net.fc.out_features == 4
    assert torch.equal(model.net.conv1.weight, body["conv1.weight"])
    assert not model.weightport_report.strict
    assert [r.reason for r in model.weightport_report.reinitialized] == ["named in reinit"] * 2
    assert model.weightport_report.init["num_classes"] == {"value": 4, "from": "argument"}


class CliModule(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.net = TinyNet(num_classes=num_classes)
