"""The fitters as a user meets them: through ``load_weights``, recorded in the report."""

from __future__ import annotations

import timm
import torch
from timm.models.vision_transformer import VisionTransformer

import weightport
from weightport.registry.source import Source


def test_grey_model_from_an_rgb_checkpoint(tmp_path):
    torch.manual_seed(0)
    rgb = timm.create_model("resnet18", num_classes=5).eval()
    torch.save(rgb.state_dict(), tmp_path / "rgb.pt")
    grey = timm.create_model("resnet18", num_classes=5, in_chans=1).eval()
    report = weightport.load_weights(grey, tmp_path / "rgb.pt")
    (record,) = [r for r in report.loaded if r.target_key == "conv1.weight"]
    assert "channels 3->1 (sum)" in record.ops
    image = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey(image), rgb(image.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


def test_channels_adapter_can_be_turned_off(tmp_path):
    torch.save(timm.create_model("resnet18", num_classes=5).state_dict(), tmp_path / "rgb.pt")
    plan = weightport.plan(
        timm.create_model("resnet18", num_classes=5, in_chans=1), tmp_path / "rgb.pt", fitters={"channels": False}
    )
    assert [m.target_key for m in plan.mismatched] == ["conv1.weight"]


def test_vit_at_another_image_size(tmp_path):
    small = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=5)
    torch.save(small.state_dict(), tmp_path / "vit.pt")
    large = VisionTransformer(img_size=48, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=5)
    report = weightport.load_weights(large, tmp_path / "vit.pt")
    (record,) = [r for r in report.loaded if r.target_key == "pos_embed"]
    assert record.ops == ["pos_embed 4x4->6x6 (bicubic, 1 prefix token(s) kept)"]
    torch.testing.assert_close(large.pos_embed[:, 0], small.pos_embed[:, 0])


def test_class_subset_by_name(tmp_path):
    full = torch.nn.Sequential(torch.nn.Linear(4, 7))
    torch.save(full.state_dict(), tmp_path / "head.pt")
    source = Source(
        uri=f"file:{tmp_path / 'head.pt'}",
        scheme="file",
        location=str(tmp_path / "head.pt"),
        classes=tuple("abcdefg"),
        head=("0",),
    )
    subset = torch.nn.Sequential(torch.nn.Linear(4, 2))
    report = weightport.load_weights(subset, source, classes=("g", "b"))
    assert all(r.ops == ["classes 7->2 by name (g, b)"] for r in report.loaded)
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(subset(x), full(x)[:, [6, 1]])
