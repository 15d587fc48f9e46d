"""timm's own checkpoint filters as a layout step: used when their output maps exactly onto a timm
model in the target (named in the report), never otherwise."""

from __future__ import annotations

import lightning as L
import pytest
import timm
import torch
import torchvision
from torch import nn

import weightport
from tests.helpers.models import moved_off_init
from weightport.errors import WeightportError
from weightport.layout.timm_filters import convert_with_timm_filter, timm_models


class Holder(L.LightningModule):
    def __init__(self, arch: str, num_classes: int = 1000) -> None:
        super().__init__()
        self.net = timm.create_model(arch, pretrained=False, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def tv_regnet(tmp_path_factory) -> tuple[nn.Module, str]:
    """torchvision's RegNetX-400MF: its shortcut registered before the main branch, unlike timm's."""
    model = moved_off_init(torchvision.models.regnet_x_400mf())
    path = tmp_path_factory.mktemp("regnet") / "regnet.pth"
    torch.save(model.state_dict(), path)
    return model, str(path)


def test_torchvision_regnet_into_timm_through_timms_filter_is_exact(tv_regnet):
    source, path = tv_regnet
    target = timm.create_model("regnetx_004_tv", pretrained=False).eval()
    report = weightport.load_weights(target, path)
    assert report.missing == [] and report.unexpected == [] and report.reinitialized == []
    assert all("layout timm filter timm.models.regnet._filter_fn" in r.ops for r in report.loaded)
    assert any("timm.models.regnet._filter_fn" in n for n in report.notes)
    assert {r.source_key for r in report.loaded} == set(source.state_dict())  # traced back to the file's keys
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-5, atol=1e-5)


def test_a_timm_model_inside_a_lightning_module_with_a_new_head(tv_regnet):
    source, path = tv_regnet
    model = Holder("regnetx_004_tv", num_classes=10).eval()
    report = weightport.load_weights(model, path)
    assert {r.key for r in report.reinitialized} == {"net.head.fc.weight", "net.head.fc.bias"}
    assert report.missing == [] and report.unexpected == []
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.net.forward_head(model.net.forward_features(x), pre_logits=True)
        expected = torch.flatten(source.avgpool(source.trunk_output(source.stem(x))), 1)
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)


def test_a_filter_output_that_does_not_fit_exactly_is_not_used(tv_regnet):
    _, path = tv_regnet
    # timm's regnetx_004 is another network (widths 384 where torchvision has 400): the filter
    # renames every key but the shapes differ, so it is not taken.
    target = timm.create_model("regnetx_004", pretrained=False)
    tensors = weightport.read_state_dict(path)
    assert convert_with_timm_filter(tensors, target) is None
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(WeightportError):
        weightport.load_weights(target, path)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_a_checkpoint_already_in_timms_layout_is_not_filtered(tmp_path):
    source = moved_off_init(timm.create_model("regnetx_004_tv", pretrained=False))
    torch.save(source.state_dict(), tmp_path / "timm.pth")
    report = weightport.load_weights(timm.create_model("regnetx_004_tv", pretrained=False), tmp_path / "timm.pth")
    assert report.counts()["by_exact"] == len(source.state_dict())
    assert not any("timm filter" in n for n in report.notes)


def test_match_exact_turns_the_filters_off(tv_regnet):
    _, path = tv_regnet
    with pytest.raises(WeightportError):
        weightport.load_weights(timm.create_model("regnetx_004_tv", pretrained=False), path, match="exact")


def test_timm_models_are_found_where_the_target_holds_them():
    holder = Holder("regnetx_004_tv")
    assert [path for path, _ in timm_models(holder)] == ["net"]
    assert [path for path, _ in timm_models(holder.net)] == [""]
    assert list(timm_models(torchvision.models.resnet18())) == []


class TvHolder(L.LightningModule):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone = torchvision.models.regnet_x_400mf(num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def test_timm_regnet_into_torchvision_by_inverting_timms_filter(tmp_path):
    """timm's filter converts torchvision's RegNet keys into its own; run on the model's keys, it maps a
    timm checkpoint back exactly (order alone would pair the same-shape shortcut and main branch wrongly)."""
    source = moved_off_init(timm.create_model("regnetx_004_tv", pretrained=False))
    torch.save(source.state_dict(), tmp_path / "timm.pth")
    target = torchvision.models.regnet_x_400mf().eval()
    report = weightport.load_weights(target, tmp_path / "timm.pth")
    assert report.missing == [] and report.unexpected == []
    assert all("layout inverse of timm filter timm.models.regnet._filter_fn" in r.ops for r in report.loaded)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-5, atol=1e-5)
    held = TvHolder(num_classes=10).eval()
    report = weightport.load_weights(held, tmp_path / "timm.pth")
    assert {r.key for r in report.reinitialized} == {"backbone.fc.weight", "backbone.fc.bias"}
    assert report.missing == [] and report.unexpected == []
    with torch.no_grad():
        features = torch.flatten(held.backbone.avgpool(held.backbone.trunk_output(held.backbone.stem(x))), 1)
        torch.testing.assert_close(features, source.forward_head(source.forward_features(x), pre_logits=True),
                                   rtol=1e-5, atol=1e-5)
