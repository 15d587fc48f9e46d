"""PretrainedMixin with lightning.pytorch, pytorch_lightning and plain nn.Module."""

import json

import lightning.pytorch as L
import pytest
import pytorch_lightning as PL
import torch
from torch import nn

from tests.conftest import save
from tests.helpers.models import TinyNet, randomize_bn
from weightport import PretrainedMixin
from weightport.errors import SaveError, UsageError


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    net = randomize_bn(TinyNet(num_classes=10))
    return net, save(net.state_dict(), tmp_path / "tiny.safetensors")


class LitClassifier(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = TinyNet(num_classes=num_classes, width=width)

    def forward(self, x):
        return self.backbone(x)


class PLClassifier(PretrainedMixin, PL.LightningModule):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.net = TinyNet(num_classes=num_classes)


class Plain(PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.model = TinyNet(num_classes=num_classes)


@pytest.mark.parametrize("cls,attr", [(LitClassifier, "backbone"), (PLClassifier, "net"), (Plain, "model")])
def test_from_pretrained_builds_and_loads(ckpt, cls, attr):
    net, path = ckpt
    model = cls.from_pretrained(path, num_classes=3)
    assert isinstance(model, cls)
    inner = getattr(model, attr)
    assert torch.equal(inner.conv1.weight, net.conv1.weight)
    assert torch.equal(inner.bn2.running_var, net.bn2.running_var)
    assert inner.fc.weight.shape == (3, 16)
    report = model.weightport_report
    assert report.into == attr
    assert {r.key for r in report.reinitialized} == {f"{attr}.fc.weight", f"{attr}.fc.bias"}


def test_positional_init_arguments_pass_through(ckpt):
    _, path = ckpt
    model = LitClassifier.from_pretrained(path, 4)
    assert model.hparams.num_classes == 4


def test_classmethod_refuses_an_instance(ckpt):
    _, path = ckpt
    model = LitClassifier()
    with pytest.raises(UsageError, match="load_pretrained") as info:
        model.from_pretrained(path)
    assert isinstance(info.value, TypeError)


def test_load_pretrained_into_an_existing_instance(ckpt):
    net, path = ckpt
    model = Plain(num_classes=10)
    report = model.load_pretrained(path)
    assert torch.equal(model.model.fc.weight, net.fc.weight)
    assert report is model.weightport_report and report.reinitialized == []


def test_load_options_reach_the_loader(ckpt):
    _, path = ckpt
    model = LitClassifier.from_pretrained(path, num_classes=10, load_options={"reinit": ("fc",)}, into="backbone")
    assert {r.key for r in model.weightport_report.reinitialized} == {"backbone.fc.weight", "backbone.fc.bias"}


def test_save_pretrained_round_trips(tmp_path, ckpt):
    _, path = ckpt
    model = LitClassifier.from_pretrained(path, num_classes=3, width=8)
    out = model.save_pretrained(tmp_path / "saved")
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "weightport.json"}
    assert json.loads((out / "config.json").read_text()) == {"num_classes": 3, "width": 8}
    provenance = json.loads((out / "weightport.json").read_text())
    assert provenance["class"].endswith(":LitClassifier") and provenance["pretrained"]["source"]["sha256"]
    again = LitClassifier.from_pretrained(out)
    assert again.hparams.num_classes == 3
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    assert again.weightport_report.missing == [] and again.weightport_report.reinitialized == []


def test_save_pretrained_refuses_arguments_json_cannot_hold(tmp_path):
    class Odd(PretrainedMixin, nn.Module):
        def __init__(self, act=None):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    model = Odd(act=nn.ReLU())
    with pytest.raises(SaveError, match="act hold ReLU, which JSON cannot hold"):
        model.save_pretrained(tmp_path / "odd")
    assert not (tmp_path / "odd").exists()
