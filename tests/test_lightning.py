"""Lightning integration: Trainer checkpoints, load_from_checkpoint, LightningCLI."""

import textwrap

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.conftest import save
from tests.helpers.models import TinyNet, randomize_bn
from weightport import PretrainedMixin


class NetModule(L.LightningModule):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.net = TinyNet(num_classes=num_classes)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class BackboneModule(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = TinyNet(num_classes=num_classes)

    def forward(self, x):
        return self.backbone(x)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module, tmp_path, name):
    data = TensorDataset(torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,)))
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path / name, enable_checkpointing=False)
    trainer.fit(module, DataLoader(data, batch_size=4))
    path = tmp_path / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_trainer_checkpoint_of_one_module_loads_into_another(tmp_path):
    torch.manual_seed(0)
    source = NetModule(num_classes=10)
    randomize_bn(source.net)
    ckpt = fit(source, tmp_path, "net")
    model = BackboneModule.from_pretrained(ckpt, num_classes=3)
    body = {k: v for k, v in source.net.state_dict().items() if not k.startswith("fc.")}
    for k, v in body.items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    report = model.weightport_report
    assert report.source.format == "lightning" and report.source.container == "state_dict"
    assert {r.key for r in report.reinitialized} == {"backbone.fc.weight", "backbone.fc.bias"}
    assert all("prefix 'net.'->'backbone.'" in r.ops for r in report.loaded)


def test_provenance_is_kept_and_restoring_fetches_nothing(tmp_path):
    torch.manual_seed(0)
    weights = save(TinyNet(num_classes=10).state_dict(), tmp_path / "pre" / "w.safetensors")
    model = BackboneModule.from_pretrained(weights, num_classes=3)
    ckpt = fit(model, tmp_path, "finetuned")
    raw = torch.load(ckpt, weights_only=True)
    assert raw["weightport"]["source"]["sha256"] == model.weightport_provenance["source"]["sha256"]
    weights.unlink()  # the pretrained weights are gone: restoring must not need them
    restored = BackboneModule.load_from_checkpoint(ckpt)
    assert restored.weightport_provenance["source"]["uri"].endswith("w.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(restored.state_dict()[k], v)


def test_lightning_cli_class_path_to_from_pretrained(tmp_path, monkeypatch):
    from lightning.pytorch.cli import LightningCLI

    torch.manual_seed(0)
    net = TinyNet(num_classes=10)
    weights = save(net.state_dict(), tmp_path / "w.safetensors")
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        model:
          class_path: tests.test_lightning.BackboneModule.from_pretrained
          init_args:
            source: {weights}
            num_classes: 4
        trainer:
          logger: false
          enable_checkpointing: false
    """))
    cli = LightningCLI(L.LightningModule, subclass_mode_model=True, run=False,
                       args=["--config", str(config)], save_config_callback=None)
    model = cli.model
    assert isinstance(model, BackboneModule)
    assert model.backbone.fc.out_features == 4
    assert torch.equal(model.backbone.conv1.weight, net.conv1.weight)
    assert model.weightport_report is not None
